/* Key files: identity files (age-keygen's format) and recipient lists,
 * and the dispatch from a recipient string to its type. */
#ifndef VF_KEYS_H
#define VF_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "age/recipient.h"
#include "base/io.h"

struct vf_identities {
	struct vf_identity **items;
	size_t n;
};

struct vf_recipients {
	struct vf_recipient **items;
	size_t n;
};

/* A fresh native age identity: a hybrid post-quantum one (age 1.3's
 * mlkem768x25519, AGE-SECRET-KEY-PQ-1...) when pq, else X25519
 * (AGE-SECRET-KEY-1...). */
enum vf_code vf_native_identity_generate(bool pq, struct vf_identity **out,
					 struct vf_error *err);
/* Whether id is a native age identity (X25519 or hybrid), the kinds that
 * age-keygen makes and vf_native_identity_encode writes. */
bool vf_is_native_identity(const struct vf_identity *id);
/* A native identity's secret key string, as age-keygen writes it (guarded
 * memory: free with vf_secure_free); VF_E_ARG for any other identity. */
enum vf_code vf_native_identity_encode(const struct vf_identity *id, char **secret,
				       struct vf_error *err);

/* Parses one recipient string of any supported type. */
enum vf_code vf_recipient_parse(const char *s, struct vf_recipient **out, struct vf_error *err);

/* Parses identity file text: one key per line, '#' comments and blank
 * lines ignored, CRLF accepted. Errors name "name:line". Appends to out. */
enum vf_code vf_identities_parse(const char *text, size_t len, const char *name,
				 struct vf_identities *out, struct vf_error *err);
/* Same for a recipients file (age1... lines). */
enum vf_code vf_recipients_parse(const char *text, size_t len, const char *name,
				 struct vf_recipients *out, struct vf_error *err);

enum vf_code vf_identities_add(struct vf_identities *l, struct vf_identity *id,
			       struct vf_error *err);
enum vf_code vf_recipients_add(struct vf_recipients *l, struct vf_recipient *r,
			       struct vf_error *err);
void vf_identities_free(struct vf_identities *l);
void vf_recipients_free(struct vf_recipients *l);

/* Reads a whole key file into guarded memory: its text is f->data,
 * NUL-terminated, f->len bytes (free with vf_key_text_free). "-" is
 * standard input. Unless insecure_ok, a regular file that group or others
 * can read is refused, as ssh refuses such keys. Files over 1 MiB are
 * refused. */
enum vf_code vf_read_key_file(const char *path, bool check_perms, bool insecure_ok,
			      struct vf_file *f, struct vf_error *err);

/* Wipes and releases a key file's text from vf_read_key_file. It lives on
 * the calling thread's scratch stack (no mmap of its own): free it before
 * anything taken from the stack after it, or its room is only wiped. */
void vf_key_text_free(struct vf_file *f);

/* Reads an identity file (vf_read_key_file) and parses it; an identity file
 * that is itself an age file sealed with a passphrase (what `age -p` or
 * `varseal encrypt -p` makes of a key file) is decrypted first, get being
 * asked for the passphrase once. get may be NULL: such files are refused. */
enum vf_code vf_load_identity_file(const char *path, bool check_perms, bool insecure_ok,
				   vf_passphrase_fn get, void *ctx, struct vf_identities *out,
				   struct vf_error *err);

/* vf_load_identity_file with the passphrase of a protected file read from
 * passphrase_file when given, else asked on the terminal, naming path. */
enum vf_code vf_load_identities(const char *path, bool check_perms, bool insecure_ok,
				const char *passphrase_file, struct vf_identities *out,
				struct vf_error *err);

#endif
