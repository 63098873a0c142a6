#include "age/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "base/secmem.h"
#include "base/term.h"
#include "age/age.h"
#include "age/recipient_internal.h"

#define MAX_KEY_FILE (1u << 20)

static enum vf_code parse_by_type(const char *s, struct vf_recipient **out,
				   struct vf_error *err)
{
	/* "age1pq1" cannot begin an X25519 recipient: '1' is not a bech32
	 * data character, so it ends the human-readable part "age1pq". */
	if (strncmp(s, "age1pq1", 7) == 0)
		return vf_hybrid_recipient_parse(s, out, err);
	if (strncmp(s, "age1", 4) == 0)
		return vf_x25519_recipient_parse(s, out, err);
	/* An SSH public key line, possibly with authorized_keys options. */
	if (strstr(s, "ssh-ed25519") || strstr(s, "ssh-rsa") || strncmp(s, "ssh-", 4) == 0)
		return vf_ssh_recipient_parse(s, out, err);
	return vf_fail(err, VF_E_KEY,
		       "unknown recipient type (expected age1..., age1pq1..., ssh-ed25519 or "
		       "ssh-rsa)");
}

enum vf_code vf_native_identity_generate(bool pq, struct vf_identity **out,
					 struct vf_error *err)
{
	return pq ? vf_hybrid_identity_generate(out, err) : vf_x25519_identity_generate(out, err);
}

static bool is_x25519_identity(const struct vf_identity *id)
{
	return strcmp(id->ops->type, "X25519") == 0;
}

bool vf_is_native_identity(const struct vf_identity *id)
{
	return is_x25519_identity(id) || vf_is_hybrid_identity(id);
}

enum vf_code vf_native_identity_encode(const struct vf_identity *id, char **secret,
				       struct vf_error *err)
{
	if (vf_is_hybrid_identity(id))
		return vf_hybrid_identity_encode(id, secret, err);
	if (is_x25519_identity(id))
		return vf_x25519_identity_encode(id, secret, err);
	return vf_fail(err, VF_E_ARG, "a %s identity is no native age identity", id->ops->type);
}

enum vf_code vf_recipient_parse(const char *s, struct vf_recipient **out, struct vf_error *err)
{
	enum vf_code rc = parse_by_type(s, out, err);
	if (rc != VF_OK)
		return rc;
	if (!((*out)->name = strdup(s))) {
		vf_recipient_free(*out);
		*out = NULL;
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	}
	return VF_OK;
}

static enum vf_code grow(void **items, size_t n, struct vf_error *err)
{
	void **p = realloc(*items, (n + 1) * sizeof(void *));
	if (!p)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	*items = p;
	return VF_OK;
}

enum vf_code vf_identities_add(struct vf_identities *l, struct vf_identity *id,
			       struct vf_error *err)
{
	enum vf_code rc = grow((void **)&l->items, l->n, err);
	if (rc != VF_OK) {
		vf_identity_free(id);
		return rc;
	}
	l->items[l->n++] = id;
	return VF_OK;
}

enum vf_code vf_recipients_add(struct vf_recipients *l, struct vf_recipient *r,
			       struct vf_error *err)
{
	enum vf_code rc = grow((void **)&l->items, l->n, err);
	if (rc != VF_OK) {
		vf_recipient_free(r);
		return rc;
	}
	l->items[l->n++] = r;
	return VF_OK;
}

void vf_identities_free(struct vf_identities *l)
{
	for (size_t i = 0; i < l->n; i++)
		vf_identity_free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

void vf_recipients_free(struct vf_recipients *l)
{
	for (size_t i = 0; i < l->n; i++)
		vf_recipient_free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* Calls fn on each meaningful line (comments, blank lines and CR
 * stripped); stops at the first error, which is prefixed "name:line: ". */
typedef enum vf_code (*line_fn)(void *ctx, const char *line, size_t len, struct vf_error *err);

static enum vf_code each_line(const char *text, size_t len, const char *name, line_fn fn,
			      void *ctx, struct vf_error *err)
{
	size_t pos = 0, lineno = 0;
	while (pos < len) {
		const char *start = text + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - start) : len - pos;
		pos += n + (nl ? 1 : 0);
		lineno++;
		if (n && start[n - 1] == '\r')
			n--;
		while (n && (start[n - 1] == ' ' || start[n - 1] == '\t'))
			n--;
		size_t skip = 0;
		while (skip < n && (start[skip] == ' ' || start[skip] == '\t'))
			skip++;
		if (skip == n || start[skip] == '#')
			continue;
		struct vf_error e;
		enum vf_code rc = fn(ctx, start + skip, n - skip, &e);
		if (rc != VF_OK)
			return vf_fail(err, rc, "%s:%zu: %s", name, lineno, e.msg);
	}
	return VF_OK;
}

static enum vf_code add_identity_line(void *ctx, const char *line, size_t len,
				      struct vf_error *err)
{
	struct vf_identity *id;
	enum vf_code rc;
	if (len > 15 && strncmp(line, "AGE-SECRET-KEY-1", 16) == 0)
		rc = vf_x25519_identity_parse(line, len, &id, err);
	else if (len > 18 && strncmp(line, "AGE-SECRET-KEY-PQ-", 18) == 0)
		rc = vf_hybrid_identity_parse(line, len, &id, err);
	else
		rc = vf_fail(err, VF_E_KEY, "not an identity (expected AGE-SECRET-KEY-1... or "
					    "AGE-SECRET-KEY-PQ-1...)");
	if (rc == VF_OK)
		rc = vf_identities_add(ctx, id, err);
	return rc;
}

enum vf_code vf_identities_parse(const char *text, size_t len, const char *name,
				 struct vf_identities *out, struct vf_error *err)
{
	/* An OpenSSH private key file (ssh-keygen's, or a host key) is one
	 * identity spanning the whole file. */
	if (vf_ssh_is_private_key(text, len)) {
		struct vf_identity *id;
		struct vf_error e;
		if (vf_ssh_identity_parse(text, len, &id, &e) != VF_OK)
			return vf_fail(err, e.code, "%s: %s", name, e.msg);
		return vf_identities_add(out, id, err);
	}
	size_t before = out->n;
	enum vf_code rc = each_line(text, len, name, add_identity_line, out, err);
	if (rc == VF_OK && out->n == before)
		rc = vf_fail(err, VF_E_KEY, "%s: no identities found", name);
	return rc;
}

static enum vf_code add_recipient_line(void *ctx, const char *line, size_t len,
				       struct vf_error *err)
{
	char *s = strndup(line, len);
	if (!s)
		return vf_fail(err, VF_E_NOMEM, "out of memory");
	struct vf_recipient *r;
	enum vf_code rc = vf_recipient_parse(s, &r, err);
	free(s);
	if (rc == VF_OK)
		rc = vf_recipients_add(ctx, r, err);
	return rc;
}

enum vf_code vf_recipients_parse(const char *text, size_t len, const char *name,
				 struct vf_recipients *out, struct vf_error *err)
{
	size_t before = out->n;
	enum vf_code rc = each_line(text, len, name, add_recipient_line, out, err);
	if (rc == VF_OK && out->n == before)
		rc = vf_fail(err, VF_E_KEY, "%s: no recipients found", name);
	return rc;
}

/* On the scratch stack: the text is parsed and freed at once, and a
 * guarded block of its own cost a short run an mmap, four mprotects, an
 * mlock and their undoing. */
static const struct vf_read_opts key_read_opts = {
	.max = MAX_KEY_FILE, .follow = VF_FOLLOW, .any_type = true, .scratch = true};

void vf_key_text_free(struct vf_file *f)
{
	vf_file_free(f, &key_read_opts);
}

/* A key file's own wording of why it could not be read. */
static enum vf_code key_read_failed(const struct vf_file *f, const char *path, enum vf_code rc,
				    struct vf_error *err)
{
	switch (f->fail) {
	case VF_READ_TYPE: return vf_fail(err, VF_E_KEY, "%s: is a directory", path);
	case VF_READ_SIZE:
		return vf_fail(err, VF_E_KEY, "%s: larger than 1 MiB, not a key file", path);
	case VF_READ_OPEN:
	case VF_READ_IO: return vf_fail_errno(err, f->errnum, "%s", path);
	default: return rc;
	}
}

/* Whether a would-be identity file holds a public key instead: its first
 * line that is not blank or a comment is a recipient (age1..., or an SSH
 * public key line as in a .pub file). Said before any permission check,
 * since that is the mistake to name (a .pub file is rightly 0644). */
static bool holds_public_key(const char *text, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && text[end] != '\n')
			end++;
		size_t s = i;
		while (s < end && (text[s] == ' ' || text[s] == '\t' || text[s] == '\r'))
			s++;
		if (s < end && text[s] != '#') {
			size_t n = end - s;
			return (n > 4 && !memcmp(text + s, "age1", 4)) ||
			       (n > 4 && !memcmp(text + s, "ssh-", 4)) ||
			       (n > 6 && !memcmp(text + s, "ecdsa-", 6));
		}
		i = end + 1;
	}
	return false;
}

enum vf_code vf_read_key_file(const char *path, bool check_perms, bool insecure_ok,
			      struct vf_file *f, struct vf_error *err)
{
	enum vf_code rc = strcmp(path, "-") == 0
				  ? vf_read_fd(STDIN_FILENO, "standard input", &key_read_opts, f, err)
				  : vf_read_file(AT_FDCWD, path, &key_read_opts, f, err);
	if (rc != VF_OK)
		return key_read_failed(f, strcmp(path, "-") == 0 ? "standard input" : path, rc,
				       err);
	if (check_perms && holds_public_key((const char *)f->data, f->len)) {
		vf_file_free(f, &key_read_opts);
		return vf_fail(err, VF_E_KEY,
			       "%s: is a public key; give the private key (the identity file "
			       "it was made from)",
			       strcmp(path, "-") == 0 ? "standard input" : path);
	}
	if (check_perms && !insecure_ok && strcmp(path, "-") != 0 && S_ISREG(f->mode) &&
	    (f->mode & 077)) {
		vf_file_free(f, &key_read_opts);
		return vf_fail(err, VF_E_KEY,
			       "%s: permissions %04o are too open: a key file must not be "
			       "accessible by group or others (chmod 600 it, or pass "
			       "--insecure-permissions)",
			       path, (unsigned)(f->mode & 07777));
	}
	return VF_OK;
}

static bool is_age_file(const char *text, size_t len)
{
	size_t i = 0;
	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
		i++;
	return (len - i >= strlen(VF_INTRO) && !memcmp(text + i, VF_INTRO, strlen(VF_INTRO))) ||
	       (len - i >= 34 && !memcmp(text + i, "-----BEGIN AGE ENCRYPTED FILE-----", 34));
}

/* The plaintext of a passphrase-protected identity file, guarded. */
static enum vf_code unlock(const char *path, const char *text, size_t len, vf_passphrase_fn get,
			   void *ctx, char **plain, size_t *plain_len, struct vf_error *err)
{
	if (!get)
		return vf_fail(err, VF_E_KEY, "%s: the identity file is passphrase-protected", path);
	struct vf_identity *scrypt;
	enum vf_code rc = vf_scrypt_identity_new(get, ctx, VF_SCRYPT_MAX_LOG_N, &scrypt, err);
	if (rc != VF_OK)
		return rc;
	struct vf_mem_src src;
	struct vf_secbuf out;
	vf_mem_src_init(&src, (const uint8_t *)text, len);
	vf_secbuf_init(&out);
	struct vf_error e;
	rc = vf_decrypt(&scrypt, 1, &src.base, VF_ARMOR_AUTO, &out.sink, &e);
	vf_identity_free(scrypt);
	if (rc != VF_OK)
		rc = vf_fail(err, rc, "%s: cannot unlock the identity file: %s", path, e.msg);
	else if (!out.data)
		rc = vf_secbuf_append(&out, "", 0, err); /* an empty file: still a string */
	if (rc == VF_OK)
		*plain = (char *)vf_secbuf_take(&out, plain_len); /* guarded, terminated */
	vf_secbuf_free(&out);
	return rc;
}

enum vf_code vf_load_identity_file(const char *path, bool check_perms, bool insecure_ok,
				   vf_passphrase_fn get, void *ctx, struct vf_identities *out,
				   struct vf_error *err)
{
	struct vf_file f;
	const char *name = strcmp(path, "-") ? path : "standard input";
	enum vf_code rc = vf_read_key_file(path, check_perms, insecure_ok, &f, err);
	if (rc != VF_OK)
		return rc;
	const char *text = (const char *)f.data;
	if (is_age_file(text, f.len)) {
		char *plain;
		size_t plain_len;
		rc = unlock(name, text, f.len, get, ctx, &plain, &plain_len, err);
		vf_key_text_free(&f);
		if (rc != VF_OK)
			return rc;
		rc = vf_identities_parse(plain, plain_len, name, out, err);
		vf_secure_free(plain); /* a buffer of the decryption's own */
		return rc;
	}
	rc = vf_identities_parse(text, f.len, name, out, err);
	vf_key_text_free(&f);
	return rc;
}

enum vf_code vf_load_identities(const char *path, bool check_perms, bool insecure_ok,
				const char *passphrase_file, struct vf_identities *out,
				struct vf_error *err)
{
	char prompt[4200];
	snprintf(prompt, sizeof(prompt), "Enter passphrase for identity file %s: ", path);
	struct vf_passphrase_source src = {passphrase_file, prompt};
	return vf_load_identity_file(path, check_perms, insecure_ok, vf_passphrase_ask, &src, out,
				     err);
}
