/* vargen import: what its parts share. import_clan.c reads a clan
 * repository (metadata and public values only, no key needed); import.c
 * plans, decrypts, seals and commits it with a new spec. */
#ifndef VARGEN_IMPORT_H
#define VARGEN_IMPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "sops/sops.h"
#include "vargen.h"

/* Bounds against a hostile repository (a clan store's files are small). */
#define VG_IMPORT_MAX_KEY_JSON (64u << 10) /* bytes of one key.json */
#define VG_IMPORT_MAX_LINK 4096		   /* bytes of one link's target */
#define VG_IMPORT_MAX_VALUE (16u << 20)	   /* bytes of one public value, as varseal set */

/* One file to import: a secret (a SOPS file) or a public value. */
struct vg_imp_file {
	char *owner;	 /* the machine; NULL for a shared generator's */
	char *generator;
	char *name;
	bool secret;
	char *path;			/* where it is, for messages and the plan */
	struct vf_sops_file *sops;	/* a secret, parsed without a key */
	struct vf_sops_plain plain;	/* a secret, decrypted (guarded) */
	uint8_t *value;			/* a public value's bytes */
	size_t value_len;
};

/* A machine's own age key, kept by clan in sops/secrets/<m>-age.key. */
struct vg_imp_key {
	char *machine;
	char *path;
	struct vf_sops_file *sops;
	struct vf_sops_plain plain;
	struct vf_identities ids; /* the key, once open: it opens M's files too */
};

struct vg_imp_machine {
	char *name;
	char *key;	/* its recipient from sops/machines/<m>/key.json, or NULL */
	char *key_path; /* that key.json */
	struct vf_strings keys; /* every age key it lists */
	struct vf_strings generators;
	struct vg_imp_key *kept; /* NULL when clan keeps no key for it */
};

struct vg_imp_admin {
	char *name;
	char *recipient;
	char *path; /* its key.json */
};

/* A generator of the new spec: a clan vars generator, or a secret of the
 * older `clan secrets` layout (legacy: generator NAME, one file "secret"). */
struct vg_imp_gen {
	char *name;
	bool share;
	bool legacy;
	struct vf_strings files; /* names, in order */
	bool *secret;		 /* per file */
	struct vf_strings machines; /* that use it */
	char *from;		    /* where it was found, for the plan */
};

struct vg_clan {
	const char *dir;
	struct vg_imp_admin *admins;
	size_t n_admins;
	struct vg_imp_machine *machines;
	size_t n_machines;
	struct vg_imp_gen *gens;
	size_t n_gens;
	struct vg_imp_file *files; /* in the order they are decrypted */
	size_t n_files;
	struct vg_imp_key *keys;
	size_t n_keys;
	/* Found while reading, said on standard error before the plan or the
	 * import (not errors: what the new store does differently). */
	struct vf_strings notes;
};

/* Reads DIR's sops/ and vars/ trees: every directory opened beneath DIR
 * with O_NOFOLLOW, links read as names (never followed), every SOPS file
 * parsed without a key. 0, or the exit status after an error said. */
int vg_clan_read(const char *dir, struct vg_clan *c);
void vg_clan_free(struct vg_clan *c);

struct vg_imp_machine *vg_clan_machine(struct vg_clan *c, const char *name);
struct vg_imp_gen *vg_clan_gen(struct vg_clan *c, const char *name);

#endif
