/* Where credentials come from: the vars store (decrypted with the
 * machine's identity) or a directory of already-decrypted files. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/secmem.h"
#include "base/term.h"
#include "age/keys.h"
#include "vars/spec.h"
#include "vars/store.h"
#include "varinject.h"

struct vf_arena vi_arena;

bool vi_name_valid(const char *name, const char **why)
{
	if (!vf_credential_name_valid(name, why))
		return false;
	if (strchr(name, '=')) {
		if (why)
			*why = "contains '=' (systemd takes the name up to the first '=', the rest "
			       "as value)";
		return false;
	}
	return true;
}

int vi_creds_add(struct vi_creds *c, const char *name, struct vf_value *value)
{
	const char *why;
	if (!vi_name_valid(name, &why))
		return vi_error("credential name '%s': %s", name, why);
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->items[i].name, name))
			return vi_error("two credentials named %s: pick names with the spec's "
					"credentials mapping or --name-style",
					name);
	struct vi_cred *grown = realloc(c->items, (c->n + 1) * sizeof(*grown));
	char *copy = strdup(name);
	if (!grown || !copy) {
		if (grown)
			c->items = grown;
		free(copy);
		return vi_error("out of memory");
	}
	c->items = grown;
	c->items[c->n].name = copy;
	c->items[c->n].value = *value;
	memset(value, 0, sizeof(*value));
	c->n++;
	return 0;
}

void vi_creds_wipe(struct vi_creds *c)
{
	for (size_t i = 0; i < c->n; i++) {
		vf_value_free(&c->items[i].value);
		free(c->items[i].name);
	}
	free(c->items);
	c->items = NULL;
	c->n = 0;
}

static char *upper(const char *prefix, const char *name)
{
	size_t p = strlen(prefix), n = strlen(name);
	char *s = malloc(p + n + 1);
	if (!s)
		return NULL;
	memcpy(s, prefix, p);
	for (size_t i = 0; i <= n; i++)
		s[p + i] = (char)toupper((unsigned char)name[i]);
	return s;
}

int vi_identity_from(const struct vi_store_source *src, struct vf_identities *ids)
{
	struct vf_error err;
	char path[4096];
	const char *file = src->identity_file;
	bool check = true;
	if (src->identity_credential) {
		const char *dir = getenv("CREDENTIALS_DIRECTORY");
		if (!dir)
			return vi_error("--identity-credential %s: $CREDENTIALS_DIRECTORY is not set "
					"(run under systemd with LoadCredential=%s:PATH)",
					src->identity_credential, src->identity_credential);
		int n = snprintf(path, sizeof(path), "%s/%s", dir, src->identity_credential);
		if (n < 0 || (size_t)n >= sizeof(path))
			return vi_error("credential path too long");
		file = path;
		check = false; /* systemd owns those files and their modes */
	}
	if (!file)
		return vi_error("no machine identity: give -i FILE or --identity-credential NAME");
	if (vf_load_identities(file, check, src->insecure, src->passphrase_file, ids, &err) != VF_OK)
		return vi_fail(&err);
	return 0;
}

int vi_read_var(const char *root, const char *owner, const struct vf_spec_generator *g,
		const struct vf_spec_file *f, const struct vf_identities *ids,
		struct vf_value *out)
{
	struct vf_error err;
	return vf_vars_read(root, owner, g, f, ids, out, &err) == VF_OK ? 0 : vi_fail(&err);
}

static int by_mapping(const struct vf_spec *spec, const char *root,
		      const struct vf_spec_machine *m, const struct vf_identities *ids,
		      struct vi_creds *out)
{
	for (size_t i = 0; i < m->n_credentials; i++) {
		const struct vf_spec_credential *c = &m->credentials[i];
		const struct vf_spec_generator *g = vf_spec_generator(spec, c->generator);
		const struct vf_spec_file *f = g ? vf_spec_file(g, c->file) : NULL;
		if (!f)
			return vi_error("credential %s: no %s/%s", c->name, c->generator, c->file);
		struct vf_value v = {0};
		int status = vi_read_var(root, g->share ? NULL : m->name, g, f, ids, &v);
		if (!status)
			status = vi_creds_add(out, c->name, &v);
		vf_value_free(&v);
		if (status)
			return status;
	}
	return 0;
}

static int by_convention(const struct vf_spec *spec, const char *root,
			 const struct vf_spec_machine *m, const struct vf_identities *ids,
			 enum vi_style style, struct vi_creds *out)
{
	const struct vf_spec_generator **gens;
	size_t n;
	struct vf_error err;
	if (vf_vars_machine_generators(spec, m, &gens, &n, &err) != VF_OK)
		return vi_fail(&err);
	int status = 0;
	for (size_t i = 0; !status && i < n; i++) {
		for (size_t k = 0; !status && k < gens[i]->n_files; k++) {
			const struct vf_spec_file *f = &gens[i]->files[k];
			char *name = style == VI_STYLE_SEED ? upper("HOST-", f->name) : strdup(f->name);
			struct vf_value v = {0};
			status = name ? vi_read_var(root, gens[i]->share ? NULL : m->name, gens[i], f, ids,
						 &v)
				      : vi_error("out of memory");
			if (!status)
				status = vi_creds_add(out, name, &v);
			vf_value_free(&v);
			free(name);
		}
	}
	free(gens);
	return status;
}

int vi_load_from_store(const struct vi_store_source *src, struct vi_creds *out)
{
	struct vf_spec spec = {0};
	struct vf_identities ids = {0};
	struct vf_error err;
	char *root = NULL;
	if (!src->machine)
		return vi_error("no machine: give --machine M (or --from-credentials-dir)");
	if (vf_vars_open(src->spec_path, src->store_opt, &spec, &root, &err) != VF_OK)
		return vi_fail(&err);
	if (vf_vars_require_store(root, &err) != VF_OK) {
		vf_spec_free(&spec);
		free(root);
		return vi_fail(&err);
	}
	const char *spec_path = spec.path;
	const struct vf_spec_machine *m = vf_spec_machine(&spec, src->machine);
	int status = 0;
	if (!m)
		status = vi_error("%s: no machine named %s", spec_path, src->machine);
	if (!status)
		status = vi_identity_from(src, &ids);
	enum vi_style style = src->style;
	if (!status && style == VI_STYLE_DEFAULT)
		style = m->n_credentials ? VI_STYLE_SPEC : VI_STYLE_SEED;
	if (!status && style == VI_STYLE_SPEC && !m->n_credentials)
		status = vi_error("machine %s has no credentials mapping in %s (--name-style seed?)",
				  src->machine, spec_path);
	if (!status)
		status = style == VI_STYLE_SPEC ? by_mapping(&spec, root, m, &ids, out)
						: by_convention(&spec, root, m, &ids, style, out);
	vf_identities_free(&ids);
	free(root);
	vf_spec_free(&spec);
	return status;
}

/* One file of the directory: a regular file, opened without following a
 * link or blocking on a FIFO. */
static int read_cred_file(int dir_fd, const char *dir, const char *name, struct vf_value *out)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return vi_error("%s/%s: path too long", dir, name);
	/* Sized to the file, in the arena: guarded memory is locked, and a
	 * megabyte per credential would cost more than everything else. */
	const struct vf_read_opts opts = {
		.max = VF_CREDENTIAL_MAX, .follow = VF_NOFOLLOW, .arena = &vi_arena};
	struct vf_error err;
	struct vf_file f;
	if (vf_read_file(dir_fd, name, &opts, &f, &err) == VF_OK) {
		out->data = f.data;
		out->len = f.len;
		out->in_arena = true;
		return 0;
	}
	switch (f.fail) {
	case VF_READ_OPEN:
		if (f.errnum == ELOOP)
			return vi_error("%s: not a regular file (a symbolic link)", path);
		return vi_error("%s: %s", path, strerror(f.errnum));
	case VF_READ_TYPE: return vi_error("%s: not a regular file", path);
	case VF_READ_SIZE: return vi_error("%s: larger than systemd's 1 MiB credential limit", path);
	case VF_READ_IO: return vi_error("%s: %s", path, strerror(f.errnum));
	case VF_READ_CHANGED: return vi_error("%s: changed while read", path);
	case VF_READ_NOMEM:
	case VF_READ_NONE: break;
	}
	return vi_error("out of memory");
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every entry but hidden ones and directories, sorted; anything else that
 * is not a regular file is refused when read. */
static int list_dir(int dir_fd, const char *dir, struct vf_strings *names)
{
	int copy = dup(dir_fd);
	DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
	if (!d) {
		if (copy >= 0)
			close(copy);
		return vi_error("%s: %s", dir, strerror(errno));
	}
	struct vf_error err;
	struct dirent *e;
	int status = 0;
	while (!status && (e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			continue;
		if (vf_strings_add(names, e->d_name, &err) != VF_OK)
			status = vi_fail(&err);
	}
	closedir(d);
	qsort(names->items, names->n, sizeof(char *), cmp_names);
	return status;
}

int vi_load_from_dir(const char *dir, const struct vf_strings *pick, enum vi_style style,
		     struct vi_creds *out)
{
	if (!dir && !(dir = getenv("CREDENTIALS_DIRECTORY")))
		return vi_error("--from-credentials-dir without a directory, and "
				"$CREDENTIALS_DIRECTORY is not set");
	if (style == VI_STYLE_SPEC)
		return vi_error("--name-style spec needs the store (--machine), not a directory");
	struct vf_strings names = {0};
	struct vf_error err;
	int status = 0;
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return vi_error("%s: %s", dir, strerror(errno));
	if (pick->n) {
		for (size_t i = 0; !status && i < pick->n; i++)
			if (vf_strings_add(&names, pick->items[i], &err) != VF_OK)
				status = vi_fail(&err);
	} else {
		status = list_dir(dir_fd, dir, &names);
	}
	/* A file name is a credential name: never a path, nothing a transport
	 * would read differently. */
	for (size_t i = 0; !status && i < names.n; i++) {
		const char *why;
		if (!vi_name_valid(names.items[i], &why))
			status = vi_error("%s/%s: not a credential name: %s", dir, names.items[i], why);
	}
	for (size_t i = 0; !status && i < names.n; i++) {
		struct vf_value v = {0};
		char *name = style == VI_STYLE_VERBATIM ? strdup(names.items[i])
							: upper("", names.items[i]);
		status = name ? read_cred_file(dir_fd, dir, names.items[i], &v)
			      : vi_error("out of memory");
		if (!status)
			status = vi_creds_add(out, name, &v);
		vf_value_free(&v);
		free(name);
	}
	close(dir_fd);
	if (!status && !out->n)
		status = vi_error("%s: no credentials found", dir);
	vf_strings_free(&names);
	return status;
}
