/* Spec text for imported generators (spec_add.c): one generator's YAML, a
 * name as YAML, and a generator added to the user's spec in place. */
#ifndef VF_SPEC_ADD_H
#define VF_SPEC_ADD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "base/io.h"
#include "vars/spec.h"

struct vf_spec_new_file {
	const char *name;
	bool secret;
};

/* An imported generator, as the spec will say it. */
struct vf_spec_new_generator {
	const char *name;
	bool share;
	enum vf_imported imported;
	const struct vf_spec_new_file *files;
	size_t n_files;
};

/* A name (vf_spec_name_problem finds none) as YAML: plain when that reads
 * back as the same text, else double-quoted. */
enum vf_code vf_spec_yaml_name(struct vf_buf *out, const char *name, struct vf_error *err);

/* The generator's entry of a generators: mapping, its name at column
 * indent, its keys below:
 *
 *   NAME:
 *     share: true          (when shared)
 *     imported: clan
 *     files:
 *       FILE: {secret: true}
 */
enum vf_code vf_spec_generator_yaml(const struct vf_spec_new_generator *g, unsigned indent,
				    struct vf_buf *out, struct vf_error *err);

/* The text of the spec at spec->path with generator g added at the end of
 * its generators: (made when there is none) and, unless machine is NULL,
 * g's name added to that machine's generators: list (made when absent),
 * every other byte kept. Block style is edited; a section written in
 * flow style (`generators: {...}`) is VF_E_ARG saying to add it by hand.
 * Checked in memory before it is returned: the text parses as spec with
 * only g added (and listed by machine), else VF_E_ARG; nothing is
 * written anywhere. */
enum vf_code vf_spec_edit_add_generator(const struct vf_spec *spec,
					const struct vf_spec_new_generator *g, const char *machine,
					char **text, size_t *len, struct vf_error *err);

#endif
