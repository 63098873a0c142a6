/* age's ASCII armor: strict PEM with the label AGE ENCRYPTED FILE. */
#ifndef VF_ARMOR_H
#define VF_ARMOR_H

#include "base/io.h"

#define VF_ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define VF_ARMOR_END "-----END AGE ENCRYPTED FILE-----"

/* A source that decodes armored input read from br. Errors carry
 * VF_E_ARMOR. Leading and trailing whitespace (up to 1 KiB) is tolerated. */
struct vf_armor_reader {
	struct vf_src base;
	struct vf_bufreader *in;
	struct vf_error pending; /* error to report once buffered data is out */
	uint8_t line[48];
	size_t pos, len;
	bool started, finished, failed, after_short;
};
void vf_armor_reader_init(struct vf_armor_reader *r, struct vf_bufreader *in);

/* True if the input, after leading whitespace, starts like armor. */
enum vf_code vf_armor_detect(struct vf_bufreader *in, bool *armored, struct vf_error *err);

/* A sink that armors what it is given and passes it to out. */
struct vf_armor_writer {
	struct vf_sink base;
	struct vf_sink *out;
	uint8_t pending[48];
	size_t pending_len;
	size_t total;
	char *text; /* encoded lines waiting to be written */
	size_t text_len, text_cap;
	bool started;
};
enum vf_code vf_armor_writer_init(struct vf_armor_writer *w, struct vf_sink *out,
				  struct vf_error *err);
void vf_armor_writer_free(struct vf_armor_writer *w);

#endif
