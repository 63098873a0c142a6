/* vargen import clan, the reading half: a clan repository's sops/ and vars/
 * trees into a model of the new spec and the files to import, without any
 * key (the plan is made from this alone).
 *
 * The repository is someone else's (a clone, a colleague's branch): every
 * directory beneath DIR is opened with O_NOFOLLOW from its parent's
 * descriptor, every file read with O_NOFOLLOW, and the links clan keeps
 * beside each secret (machines/<m>, users/<u>, groups/<g>) are read as
 * what they name, never followed: a link's target (readlinkat, or the text
 * of the plain file git writes for a link when it checks out without
 * symlinks) must lead, within DIR, to sops/machines/<m> (users, groups
 * alike) for the link named <m>. Layout: ../docs/import.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "import.h"

struct reader {
	const char *dir;
	int dfd; /* DIR */
	int sfd; /* DIR/sops */
	struct vg_clan *c;
};

/* ---- paths and messages --------------------------------------------------- */

/* "a/b" (a may be empty): malloc'd, or NULL. */
static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s%s%s", a, *a ? "/" : "", b);
	return p;
}

/* DIR/rel as messages show it (a static buffer per call site is enough:
 * each message is printed before the next is made). */
static const char *shown(const struct reader *r, const char *rel)
{
	static char buf[4][4096];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, sizeof(buf[0]), "%s/%s", r->dir, rel);
	return p;
}

static int nomem(void)
{
	return vg_error("out of memory");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The directory rel/name beneath parent, never through a symlink: *fd,
 * or -1 when it is absent and optional. */
static int open_dir(const struct reader *r, int parent, const char *rel, bool optional, int *fd)
{
	const char *name = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	*fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd >= 0)
		return 0;
	int e = errno;
	struct stat st;
	if (e == ENOENT && optional)
		return 0;
	if ((e == ELOOP || e == ENOTDIR) && fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return vg_error("%s: a symlink where clan keeps a directory; not followed",
				shown(r, rel));
	if (e == ENOTDIR)
		return vg_error("%s: not a directory (expected clan's layout)", shown(r, rel));
	return vg_error("%s: %s", shown(r, rel), strerror(e));
}

/* The names in the directory fd, sorted. A hidden name is refused: nothing
 * of a clan store has one, and nothing is skipped unsaid. */
static int list_dir(const struct reader *r, int fd, const char *rel, struct vf_strings *names)
{
	int copy = dup(fd);
	DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
	if (!d) {
		if (copy >= 0)
			close(copy);
		return vg_error("%s: %s", shown(r, rel), strerror(errno));
	}
	rewinddir(d);
	int status = 0;
	struct dirent *e;
	while (!status && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (e->d_name[0] == '.') {
			char *p = join(rel, e->d_name);
			status = p ? vg_error("%s: a hidden entry where clan keeps none (not imported, "
					      "so nothing is)",
					      shown(r, p))
				   : nomem();
			free(p);
		} else if (vf_strings_add(names, e->d_name, NULL) != VF_OK) {
			status = nomem();
		}
	}
	closedir(d);
	if (!status && names->n)
		qsort(names->items, names->n, sizeof(*names->items), cmp_str);
	return status;
}

/* A name that becomes a machine's, generator's, file's or admin's. */
static int check_name(const struct reader *r, const char *rel, const char *name, const char *what)
{
	const char *problem = vf_spec_name_problem(name);
	if (!problem)
		return 0;
	return vg_error("%s: %s name '%s' %s (expected printable ASCII without spaces or '/', not "
			"starting with '.')",
			shown(r, rel), what, name, problem);
}

/* A machine's name: as any name, and not "shared", which the new spec
 * keeps for shared generators. */
static int check_machine(const struct reader *r, const char *rel, const char *name)
{
	int status = check_name(r, rel, name, "machine");
	if (!status && !strcmp(name, "shared"))
		status = vg_error("%s: a machine called shared, a name the new spec reserves for "
				  "shared generators",
				  shown(r, rel));
	return status;
}

/* A directory of clan's layout, opened beneath its parent and listed. */
struct listing {
	char *rel;		 /* its path in DIR */
	int fd;			 /* -1: absent, and that was allowed */
	struct vf_strings names; /* its entries, sorted */
};

static void listing_free(struct listing *l)
{
	vf_strings_free(&l->names);
	if (l->fd >= 0)
		close(l->fd);
	free(l->rel);
	*l = (struct listing){.fd = -1};
}

/* prel/name, a directory beneath pfd, opened and listed into *l; with
 * check, its name is checked first (check_name's what, or check_machine
 * for "machine"). *l is for listing_free whatever this returns. */
static int listing_open(const struct reader *r, int pfd, const char *prel, const char *name,
			const char *check, bool optional, struct listing *l)
{
	*l = (struct listing){.fd = -1, .rel = join(prel, name)};
	int status = l->rel ? 0 : nomem();
	if (!status && check)
		status = !strcmp(check, "machine") ? check_machine(r, l->rel, name)
						   : check_name(r, l->rel, name, check);
	if (!status)
		status = open_dir(r, pfd, l->rel, optional, &l->fd);
	if (!status && l->fd >= 0)
		status = list_dir(r, l->fd, l->rel, &l->names);
	return status;
}

/* Each entry of prel/name beneath pfd, through each (an absent directory
 * has none). */
typedef int (*entry_reader)(struct reader *r, const struct listing *dir, const char *name);
static int read_entries(struct reader *r, int pfd, const char *prel, const char *name,
			entry_reader each)
{
	struct listing dir;
	int status = listing_open(r, pfd, prel, name, NULL, true, &dir);
	for (size_t i = 0; !status && i < dir.names.n; i++)
		status = each(r, &dir, dir.names.items[i]);
	listing_free(&dir);
	return status;
}

/* Adds each name of from to set (a set: no name twice). */
static int add_names(struct vf_strings *set, const struct vf_strings *from)
{
	for (size_t i = 0; i < from->n; i++)
		if (!vf_strings_has(set, from->items[i]) &&
		    vf_strings_add(set, from->items[i], NULL) != VF_OK)
			return nomem();
	return 0;
}

/* What is at name beneath fd, not followed. */
static int kind_of(const struct reader *r, int fd, const char *rel, const char *name, mode_t *mode)
{
	struct stat st;
	if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		char *p = join(rel, name);
		int status = p ? vg_error("%s: %s", shown(r, p), strerror(errno)) : nomem();
		free(p);
		return status;
	}
	*mode = st.st_mode;
	return 0;
}

/* A regular file beneath fd, whole (never through a symlink). */
static int read_small(const struct reader *r, int fd, const char *rel, const char *name,
		      size_t max, struct vf_file *out)
{
	const struct vf_read_opts o = {.max = max, .follow = VF_NOFOLLOW};
	struct vf_error err;
	if (vf_read_file(fd, name, &o, out, &err) == VF_OK)
		return 0;
	char *p = join(rel, name);
	int status;
	if (!p)
		status = nomem();
	else if (out->fail == VF_READ_OPEN && out->errnum == ELOOP)
		status = vg_error("%s: a symlink where clan keeps a file; not followed", shown(r, p));
	else if (out->fail == VF_READ_TYPE)
		status = vg_error("%s: not a regular file", shown(r, p));
	else if (out->fail == VF_READ_SIZE)
		status = vg_error("%s: larger than %zu bytes", shown(r, p), max);
	else
		status = vg_error("%s: %s", shown(r, p), strerror(out->errnum ? out->errnum : EIO));
	free(p);
	return status;
}

/* ---- links ------------------------------------------------------------------ */

/* Where target, a link in directory rel_dir (both within DIR), leads,
 * worked out from the names alone: NULL when it is absolute or leaves
 * DIR. */
static char *resolve(const char *rel_dir, const char *target)
{
	if (target[0] == '/')
		return NULL;
	size_t cap = strlen(rel_dir) + strlen(target) + 2;
	char *parts = malloc(cap), *out = malloc(cap);
	const char **stack = calloc(cap, sizeof(*stack));
	size_t n = 0;
	bool inside = parts && out && stack;
	if (inside)
		snprintf(parts, cap, "%s/%s", rel_dir, target);
	for (char *save, *tok = inside ? strtok_r(parts, "/", &save) : NULL; tok && inside;
	     tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, ".."))
			inside = n-- > 0;
		else
			stack[n++] = tok;
	}
	size_t used = 0;
	for (size_t i = 0; inside && i < n; i++)
		used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "/" : "", stack[i]);
	if (inside && n == 0)
		out[0] = '\0';
	free(parts);
	free(stack);
	if (!inside) {
		free(out);
		return NULL;
	}
	return out;
}

/* The link name in directory rel (open as fd) must lead to
 * sops/<kind>/<name>: what clan means by it, checked without following. */
static int read_link(const struct reader *r, int fd, const char *rel, const char *name,
		     const char *kind)
{
	char *p = join(rel, name);
	if (!p)
		return nomem();
	mode_t mode;
	int status = kind_of(r, fd, rel, name, &mode);
	char target[VG_IMPORT_MAX_LINK + 1];
	if (!status && S_ISLNK(mode)) {
		ssize_t n = readlinkat(fd, name, target, sizeof(target));
		if (n < 0 || (size_t)n >= sizeof(target))
			status = vg_error("%s: %s", shown(r, p),
					  n < 0 ? strerror(errno) : "link target too long");
		else
			target[n] = '\0';
	} else if (!status && S_ISREG(mode)) {
		/* git without symlinks checks a link out as a file of its target. */
		struct vf_file f;
		status = read_small(r, fd, rel, name, VG_IMPORT_MAX_LINK, &f);
		if (!status) {
			size_t len = f.len;
			if (len && f.data[len - 1] == '\n')
				len--;
			if (memchr(f.data, '\n', len) || memchr(f.data, '\0', len))
				status = vg_error("%s: not a link, nor a file holding one", shown(r, p));
			memcpy(target, f.data, len);
			target[len] = '\0';
			vf_file_free(&f, &(struct vf_read_opts){0});
		}
	} else if (!status) {
		status = vg_error("%s: not a link (expected clan's link to sops/%s/%s)", shown(r, p),
				  kind, name);
	}
	char *to = status ? NULL : resolve(rel, target);
	char want[4096];
	snprintf(want, sizeof(want), "sops/%s/%s", kind, name);
	if (!status && (!to || strcmp(to, want)))
		status = vg_error("%s: a link to %s, not to %s within %s (links are read, never "
				  "followed)",
				  shown(r, p), target, want, r->dir);
	free(to);
	free(p);
	return status;
}

/* The links in rel/sub (machines, users or groups), each checked, their
 * names added to out (NULL: only checked). */
static int read_links(const struct reader *r, int fd, const char *rel, const char *sub,
		      struct vf_strings *out)
{
	struct listing links;
	int status = listing_open(r, fd, rel, sub, NULL, true, &links);
	for (size_t i = 0; !status && i < links.names.n; i++)
		status = read_link(r, links.fd, links.rel, links.names.items[i], sub);
	if (!status && out)
		status = add_names(out, &links.names);
	listing_free(&links);
	return status;
}

/* ---- key.json -------------------------------------------------------------- */

static const char *scalar(yaml_document_t *doc, const yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		if (k && v && k->type == YAML_SCALAR_NODE && v->type == YAML_SCALAR_NODE &&
		    !strcmp((const char *)k->data.scalar.value, key))
			return (const char *)v->data.scalar.value;
	}
	return NULL;
}

/* One entry {"publickey": ..., "type": "age"}: its age recipient added to
 * keys; other key types are noted and left (they open no age file). */
static int key_entry(struct reader *r, yaml_document_t *doc, const yaml_node_t *n,
		     const char *rel, struct vf_strings *keys)
{
	const char *pub = n->type == YAML_MAPPING_NODE ? scalar(doc, n, "publickey") : NULL;
	const char *type = n->type == YAML_MAPPING_NODE ? scalar(doc, n, "type") : NULL;
	if (!pub)
		return vg_error("%s: not clan's key list (expected [{\"publickey\": \"age1...\", "
				"\"type\": \"age\"}])",
				shown(r, rel));
	if (type && strcmp(type, "age")) {
		char note[4200];
		snprintf(note, sizeof(note), "%s: a %s key, which opens no age file: left out",
			 shown(r, rel), type);
		return vf_strings_add(&r->c->notes, note, NULL) == VF_OK ? 0 : nomem();
	}
	struct vf_recipient *rc = NULL;
	struct vf_error err;
	if (strncmp(pub, "age1", 4) || vf_recipient_parse(pub, &rc, &err) != VF_OK)
		return vg_error("%s: '%.80s' is not an age recipient", shown(r, rel), pub);
	vf_recipient_free(rc);
	if (!vf_strings_has(keys, pub) && vf_strings_add(keys, pub, NULL) != VF_OK)
		return nomem();
	return 0;
}

/* The age recipients of rel/key.json (fd: rel's directory): clan writes a
 * list of {"publickey", "type"} objects, older versions one object. */
static int read_key_json(struct reader *r, int fd, const char *rel, struct vf_strings *keys)
{
	char *p = join(rel, "key.json");
	if (!p)
		return nomem();
	struct vf_file f;
	int status = read_small(r, fd, rel, "key.json", VG_IMPORT_MAX_KEY_JSON, &f);
	yaml_parser_t parser;
	yaml_document_t doc;
	bool parsed = false;
	if (!status && !yaml_parser_initialize(&parser))
		status = nomem();
	else if (!status) {
		yaml_parser_set_input_string(&parser, f.data, f.len);
		parsed = yaml_parser_load(&parser, &doc);
		yaml_parser_delete(&parser);
	}
	const yaml_node_t *root = parsed ? yaml_document_get_root_node(&doc) : NULL;
	if (!status && !root)
		status = vg_error("%s: not JSON (expected clan's key list)", shown(r, p));
	if (!status && root->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *i = root->data.sequence.items.start;
		     !status && i < root->data.sequence.items.top; i++)
			status = key_entry(r, &doc, yaml_document_get_node(&doc, *i), p, keys);
	} else if (!status) {
		status = key_entry(r, &doc, root, p, keys);
	}
	if (parsed)
		yaml_document_delete(&doc);
	vf_file_free(&f, &(struct vf_read_opts){0});
	free(p);
	return status;
}

/* ---- the model -------------------------------------------------------------- */

struct vg_imp_machine *vg_clan_machine(struct vg_clan *c, const char *name)
{
	for (size_t i = 0; i < c->n_machines; i++)
		if (!strcmp(c->machines[i].name, name))
			return &c->machines[i];
	return NULL;
}

struct vg_imp_gen *vg_clan_gen(struct vg_clan *c, const char *name)
{
	for (size_t i = 0; i < c->n_gens; i++)
		if (!strcmp(c->gens[i].name, name))
			return &c->gens[i];
	return NULL;
}

/* Grows an array by one zeroed element; NULL when out of memory. */
static void *grow(void *items, size_t *n, size_t size)
{
	char *p = realloc(items, (*n + 1) * size);
	if (!p)
		return NULL;
	memset(p + *n * size, 0, size);
	(*n)++;
	return p;
}

static struct vg_imp_machine *add_machine(struct vg_clan *c, const char *name)
{
	struct vg_imp_machine *m = vg_clan_machine(c, name);
	if (m)
		return m;
	size_t n = c->n_machines;
	struct vg_imp_machine *grown = grow(c->machines, &n, sizeof(*grown));
	if (!grown)
		return NULL;
	c->machines = grown;
	c->n_machines = n;
	m = &grown[n - 1];
	if (!(m->name = strdup(name))) {
		c->n_machines--;
		return NULL;
	}
	return m;
}

static int add_admin(struct reader *r, const char *name, const char *recipient, const char *rel)
{
	struct vg_clan *c = r->c;
	for (size_t i = 0; i < c->n_admins; i++)
		if (!strcmp(c->admins[i].name, name))
			return vg_error("%s: admin name %s is taken by %s (a user's further keys are "
					"named U-2, U-3...): rename one of the users",
					shown(r, rel), name, shown(r, c->admins[i].path));
	size_t n = c->n_admins;
	struct vg_imp_admin *grown = grow(c->admins, &n, sizeof(*grown));
	if (!grown)
		return nomem();
	c->admins = grown;
	struct vg_imp_admin *a = &grown[n - 1];
	a->name = strdup(name);
	a->recipient = strdup(recipient);
	a->path = strdup(rel);
	c->n_admins = n;
	return a->name && a->recipient && a->path ? 0 : nomem();
}

/* Generator gen (of owner's, NULL: shared), made when first seen: one
 * name is one generator, per machine, shared or of the older layout. */
static int add_to_gen(struct reader *r, const char *rel, const char *owner, const char *gen,
		      bool legacy)
{
	struct vg_clan *c = r->c;
	struct vg_imp_gen *g = vg_clan_gen(c, gen);
	if (g && (g->share != !owner || g->legacy != legacy))
		return vg_error("%s: generator %s is also %s in %s (expected one generator of that "
				"name)",
				shown(r, rel), gen, g->legacy ? "a secret of sops/secrets"
						   : g->share ? "shared"
							      : "per machine",
				shown(r, g->from));
	if (!g) {
		size_t n = c->n_gens;
		struct vg_imp_gen *grown = grow(c->gens, &n, sizeof(*grown));
		if (!grown)
			return nomem();
		c->gens = grown;
		g = &grown[n - 1];
		c->n_gens = n;
		g->share = !owner;
		g->legacy = legacy;
		if (!(g->name = strdup(gen)) || !(g->from = strdup(rel)))
			return nomem();
	}
	return 0;
}

/* The files a machine's directory of generator gen holds, compared with
 * those the generator has from another machine. */
static int gen_files(struct reader *r, struct vg_imp_gen *g, const char *rel,
		     const struct vf_strings *names, const bool *secret)
{
	if (!g->files.n && !g->secret) {
		g->secret = calloc(names->n + 1, sizeof(bool));
		if (!g->secret)
			return nomem();
		for (size_t i = 0; i < names->n; i++) {
			if (vf_strings_add(&g->files, names->items[i], NULL) != VF_OK)
				return nomem();
			g->secret[i] = secret[i];
		}
		return 0;
	}
	bool same = g->files.n == names->n;
	for (size_t i = 0; same && i < names->n; i++)
		same = !strcmp(g->files.items[i], names->items[i]) && g->secret[i] == secret[i];
	if (!same)
		return vg_error("%s: generator %s has other files here than in %s (expected the "
				"same files, secret or public alike, on every machine)",
				shown(r, rel), g->name, shown(r, g->from));
	return 0;
}

static int use_gen(struct vg_imp_machine *m, const char *gen)
{
	if (vf_strings_has(&m->generators, gen))
		return 0;
	return vf_strings_add(&m->generators, gen, NULL) == VF_OK ? 0 : nomem();
}

/* ---- sops/ ---------------------------------------------------------------------- */

/* A SOPS file name in directory rel (fd), parsed without a key: clan's
 * secrets are in sops's binary form. */
static int read_sops(struct reader *r, int fd, const char *rel, const char *name,
		     struct vf_sops_file **out, char **path)
{
	char *p = join(rel, name);
	*path = p ? strdup(shown(r, p)) : NULL;
	if (!p || !*path) {
		free(p);
		return nomem();
	}
	struct vf_file f;
	int status = read_small(r, fd, rel, name, VF_SOPS_MAX_FILE, &f);
	struct vf_error err;
	if (!status && vf_sops_parse(*path, f.data, f.len, VF_SOPS_BINARY, out, &err) != VF_OK)
		status = vg_fail(&err);
	vf_file_free(&f, &(struct vf_read_opts){0});
	free(p);
	return status;
}

/* The age keys in users' directory name (its key.json), as admins. */
static int read_user(struct reader *r, const struct listing *users, const char *name)
{
	struct vf_strings keys = {0};
	char *rel = join(users->rel, name);
	char *json = rel ? join(rel, "key.json") : NULL;
	int fd = -1;
	int status = json ? check_name(r, rel, name, "admin") : nomem();
	if (!status)
		status = open_dir(r, users->fd, rel, false, &fd);
	if (!status)
		status = read_key_json(r, fd, rel, &keys);
	for (size_t k = 0; !status && k < keys.n; k++) {
		char admin[300];
		if (k == 0)
			snprintf(admin, sizeof(admin), "%s", name);
		else
			snprintf(admin, sizeof(admin), "%s-%zu", name, k + 1);
		status = add_admin(r, admin, keys.items[k], json);
	}
	vf_strings_free(&keys);
	if (fd >= 0)
		close(fd);
	free(json);
	free(rel);
	return status;
}

/* sops/users/<u>/key.json: the admins. A user with several age keys is
 * admins u, u-2, u-3... (the spec names one recipient per admin). */
static int read_users(struct reader *r, int sfd)
{
	struct listing users;
	int status = listing_open(r, sfd, "sops", "users", NULL, true, &users);
	if (!status && users.fd < 0)
		status = vg_error("%s: no admins (expected clan's users, each with a key.json)",
				  shown(r, users.rel));
	for (size_t i = 0; !status && i < users.names.n; i++)
		status = read_user(r, &users, users.names.items[i]);
	listing_free(&users);
	if (!status && r->c->n_admins == 0)
		status = vg_error("%s: no admin has an age key (the new store's secrets would be "
				  "sealed to no admin)",
				  shown(r, "sops/users"));
	return status;
}

/* sops/machines/<m>/key.json: machine m and its recipients (the one age
 * key; with several, the machine's kept key decides, later). */
static int read_machine(struct reader *r, const struct listing *machines, const char *name)
{
	struct vf_strings keys = {0};
	char *rel = join(machines->rel, name);
	int fd = -1;
	int status = rel ? check_machine(r, rel, name) : nomem();
	if (!status)
		status = open_dir(r, machines->fd, rel, false, &fd);
	if (!status)
		status = read_key_json(r, fd, rel, &keys);
	struct vg_imp_machine *m = status ? NULL : add_machine(r->c, name);
	if (!status && !m)
		status = nomem();
	if (!status && !(m->key_path = join(rel, "key.json")))
		status = nomem();
	/* With several, the kept key picks one once it is open. */
	if (!status && keys.n == 1 && !(m->key = strdup(keys.items[0])))
		status = nomem();
	if (!status) {
		m->keys = keys;
		keys = (struct vf_strings){0};
	}
	vf_strings_free(&keys);
	if (fd >= 0)
		close(fd);
	free(rel);
	return status;
}

/* sops/groups/<g>/machines/<m>: the machines of a group (older layout). */
static int group_machines(struct reader *r, int sfd, const char *group, struct vf_strings *out)
{
	int gfd = -1, fd = -1;
	char *rel = join("sops/groups", group);
	int status = rel ? open_dir(r, sfd, "sops/groups", false, &gfd) : nomem();
	if (!status)
		status = open_dir(r, gfd, rel, false, &fd);
	if (!status)
		status = read_links(r, fd, rel, "machines", out);
	if (!status)
		status = read_links(r, fd, rel, "users", NULL);
	if (fd >= 0)
		close(fd);
	if (gfd >= 0)
		close(gfd);
	free(rel);
	return status;
}

/* The entries a secret's directory may hold; anything else is refused,
 * so that nothing is left behind unsaid. */
static int expect_entries(const struct reader *r, const char *rel, const struct vf_strings *names,
			  const char *const *allowed, size_t n_allowed)
{
	for (size_t i = 0; i < names->n; i++) {
		bool ok = false;
		for (size_t k = 0; k < n_allowed && !ok; k++)
			ok = !strcmp(names->items[i], allowed[k]);
		if (!ok) {
			char *p = join(rel, names->items[i]);
			int status = p ? vg_error("%s: not part of clan's layout (expected only secret, "
						  "value, machines, users, groups): not imported, so "
						  "nothing is",
						  shown(r, p))
				       : nomem();
			free(p);
			return status;
		}
	}
	return 0;
}

static struct vg_imp_file *new_file(struct vg_clan *c)
{
	size_t n = c->n_files;
	struct vg_imp_file *grown = grow(c->files, &n, sizeof(*grown));
	if (!grown)
		return NULL;
	c->files = grown;
	c->n_files = n;
	return &grown[n - 1];
}

/* sops/secrets/<name>: a machine's own key (<m>-age.key for a machine m),
 * or a secret of the older `clan secrets` layout, which becomes shared
 * generator <name> with the one file "secret", used by the machines its
 * links name (directly, or through groups). */
static int read_secret(struct reader *r, const struct listing *secrets, const char *name)
{
	static const char *const allowed[] = {"secret", "machines", "users", "groups"};
	struct vf_strings machines = {0}, groups = {0};
	struct listing entries;
	int status = listing_open(r, secrets->fd, secrets->rel, name, NULL, false, &entries);
	const char *rel = entries.rel;
	int fd = entries.fd;
	if (!status)
		status = expect_entries(r, rel, &entries.names, allowed, 4);
	if (!status && !vf_strings_has(&entries.names, "secret"))
		status = vg_error("%s: no secret (expected clan's sops/secrets/<name>/secret)",
				  shown(r, rel));
	if (!status)
		status = read_links(r, fd, rel, "machines", &machines);
	if (!status)
		status = read_links(r, fd, rel, "users", NULL);
	if (!status)
		status = read_links(r, fd, rel, "groups", &groups);
	for (size_t i = 0; !status && i < groups.n; i++)
		status = group_machines(r, r->sfd, groups.items[i], &machines);
	size_t len = strlen(name);
	char machine[300] = "";
	if (len > 8 && len - 8 < sizeof(machine) && !strcmp(name + len - 8, "-age.key"))
		snprintf(machine, sizeof(machine), "%.*s", (int)(len - 8), name);
	struct vg_imp_machine *m = machine[0] ? vg_clan_machine(r->c, machine) : NULL;
	if (!status && m) {
		size_t n = r->c->n_keys;
		struct vg_imp_key *grown = grow(r->c->keys, &n, sizeof(*grown));
		if (!grown)
			status = nomem();
		else {
			r->c->keys = grown;
			r->c->n_keys = n;
			struct vg_imp_key *k = &grown[n - 1];
			status = (k->machine = strdup(machine)) ? read_sops(r, fd, rel, "secret", &k->sops,
									    &k->path)
								: nomem();
		}
	} else if (!status) {
		status = check_name(r, rel, name, "generator");
		struct vg_imp_file *f = status ? NULL : new_file(r->c);
		if (!status && !f)
			status = nomem();
		if (!status) {
			f->secret = true;
			f->generator = strdup(name);
			f->name = strdup("secret");
			status = f->generator && f->name ? read_sops(r, fd, rel, "secret", &f->sops,
								   &f->path)
							 : nomem();
		}
		if (!status)
			status = add_to_gen(r, rel, NULL, name, true);
		struct vg_imp_gen *g = status ? NULL : vg_clan_gen(r->c, name);
		bool secret = true;
		struct vf_strings one = {0};
		if (g && vf_strings_add(&one, "secret", NULL) != VF_OK)
			status = nomem();
		if (g && !status)
			status = gen_files(r, g, rel, &one, &secret);
		vf_strings_free(&one);
		if (g && !status)
			status = add_names(&g->machines, &machines);
	}
	vf_strings_free(&machines);
	vf_strings_free(&groups);
	listing_free(&entries);
	return status;
}

/* The kept keys pick each machine's recipient among several, and every
 * machine named by a link exists. */
static int settle_machines(struct reader *r)
{
	for (size_t i = 0; i < r->c->n_machines; i++) {
		const struct vg_imp_machine *m = &r->c->machines[i];
		/* Several: decided once its kept key is open; without one, refused. */
		if (m->keys.n > 1 && !m->kept)
			return vg_error("%s: %zu age keys, and no kept key in sops/secrets to tell "
					"which is the machine's (the spec names one)",
					shown(r, m->key_path), m->keys.n);
	}
	for (size_t g = 0; g < r->c->n_gens; g++)
		for (size_t i = 0; i < r->c->gens[g].machines.n; i++)
			if (!vg_clan_machine(r->c, r->c->gens[g].machines.items[i]))
				return vg_error("%s: names machine %s, which has no sops/machines/%s",
						shown(r, r->c->gens[g].from),
						r->c->gens[g].machines.items[i],
						r->c->gens[g].machines.items[i]);
	return 0;
}

/* ---- vars/ ------------------------------------------------------------------------ */

/* vars/.../<gen>/<file>: its secret or value, and the links beside it. */
static int read_vars_file(struct reader *r, const struct listing *gen_dir, const char *owner,
			  const char *gen, const char *name, bool *secret)
{
	static const char *const allowed[] = {"secret", "value", "machines", "users", "groups"};
	struct vf_strings machines = {0};
	struct listing entries;
	int status = listing_open(r, gen_dir->fd, gen_dir->rel, name, "file", false, &entries);
	const char *rel = entries.rel;
	int fd = entries.fd;
	if (!status)
		status = expect_entries(r, rel, &entries.names, allowed, 5);
	bool has_secret = vf_strings_has(&entries.names, "secret");
	bool has_value = vf_strings_has(&entries.names, "value");
	if (!status && has_secret == has_value)
		status = vg_error("%s: %s (expected a secret or a value)", shown(r, rel),
				  has_secret ? "both a secret and a value" : "neither a secret nor a value");
	if (!status)
		status = read_links(r, fd, rel, "machines", &machines);
	if (!status)
		status = read_links(r, fd, rel, "users", NULL);
	if (!status)
		status = read_links(r, fd, rel, "groups", NULL);
	struct vg_imp_file *f = status ? NULL : new_file(r->c);
	if (!status && !f)
		status = nomem();
	if (!status) {
		f->secret = *secret = has_secret;
		f->owner = owner ? strdup(owner) : NULL;
		f->generator = strdup(gen);
		f->name = strdup(name);
		if ((owner && !f->owner) || !f->generator || !f->name)
			status = nomem();
	}
	if (!status && has_secret) {
		status = read_sops(r, fd, rel, "secret", &f->sops, &f->path);
	} else if (!status) {
		struct vf_file v;
		char *p = join(rel, "value");
		status = p ? read_small(r, fd, rel, "value", VG_IMPORT_MAX_VALUE, &v) : nomem();
		if (!status) {
			f->value = v.data;
			f->value_len = v.len;
			f->path = strdup(shown(r, p));
			status = f->path ? 0 : nomem();
		}
		free(p);
	}
	/* A shared generator is used by the machines its secrets name. */
	struct vg_imp_gen *g = owner || status ? NULL : vg_clan_gen(r->c, gen);
	if (g)
		status = add_names(&g->machines, &machines);
	vf_strings_free(&machines);
	listing_free(&entries);
	return status;
}

/* vars/per-machine/<m>/<gen> or vars/shared/<gen>. */
static int read_vars_gen(struct reader *r, const struct listing *owner_dir, const char *owner,
			 const char *gen)
{
	struct listing files;
	int status = listing_open(r, owner_dir->fd, owner_dir->rel, gen, "generator", false, &files);
	if (!status && files.names.n == 0)
		status = vg_error("%s: a generator without files", shown(r, files.rel));
	if (!status)
		status = add_to_gen(r, files.rel, owner, gen, false);
	bool *secret = status ? NULL : calloc(files.names.n + 1, sizeof(bool));
	if (!status && !secret)
		status = nomem();
	for (size_t i = 0; !status && i < files.names.n; i++)
		status = read_vars_file(r, &files, owner, gen, files.names.items[i], &secret[i]);
	struct vg_imp_gen *g = status ? NULL : vg_clan_gen(r->c, gen);
	if (g)
		status = gen_files(r, g, files.rel, &files.names, secret);
	struct vg_imp_machine *m = owner && !status ? vg_clan_machine(r->c, owner) : NULL;
	if (m)
		status = use_gen(m, gen);
	free(secret);
	listing_free(&files);
	return status;
}

/* vars/per-machine/<m>: the machine, and its generators. */
static int read_machine_vars(struct reader *r, const struct listing *machines, const char *name)
{
	struct listing gens;
	int status = listing_open(r, machines->fd, machines->rel, name, "machine", false, &gens);
	if (!status && !add_machine(r->c, name))
		status = nomem();
	for (size_t g = 0; !status && g < gens.names.n; g++)
		status = read_vars_gen(r, &gens, name, gens.names.items[g]);
	listing_free(&gens);
	return status;
}

/* vars/shared/<gen>. */
static int read_shared_gen(struct reader *r, const struct listing *shared, const char *gen)
{
	return read_vars_gen(r, shared, NULL, gen);
}

/* Each machine lists the shared generators that name it, and every
 * machine that has secrets has a key to seal them to. */
static int link_shared(struct reader *r)
{
	struct vg_clan *c = r->c;
	for (size_t i = 0; i < c->n_gens; i++) {
		struct vg_imp_gen *g = &c->gens[i];
		for (size_t k = 0; g->share && k < g->machines.n; k++) {
			struct vg_imp_machine *m = vg_clan_machine(c, g->machines.items[k]);
			int status = m ? use_gen(m, g->name) : 0;
			if (status)
				return status;
		}
		if (g->share && g->machines.n == 0) {
			char note[4200];
			snprintf(note, sizeof(note), "shared generator %s: no machine is named beside "
				 "its secrets; kept for the admins until a machine lists it",
				 g->name);
			if (vf_strings_add(&c->notes, note, NULL) != VF_OK)
				return nomem();
		}
	}
	for (size_t i = 0; i < c->n_files; i++) {
		const struct vg_imp_file *f = &c->files[i];
		const struct vg_imp_machine *m = f->owner ? vg_clan_machine(c, f->owner) : NULL;
		if (f->secret && m && !m->key && !m->kept)
			return vg_error("%s: machine %s has secrets but no key in sops/machines/%s/"
					"key.json to seal them to",
					f->path, m->name, m->name);
	}
	return 0;
}

/* Decrypting goes: the machines' keys, then per-machine files (machine,
 * generator, file, sorted), then shared ones, then the older layout's
 * secrets: the order of the plan. */
static int cmp_file(const void *a, const void *b)
{
	const struct vg_imp_file *x = a, *y = b;
	int rank_x = x->owner ? 0 : 1, rank_y = y->owner ? 0 : 1;
	if (rank_x != rank_y)
		return rank_x - rank_y;
	int r = x->owner ? strcmp(x->owner, y->owner) : 0;
	if (!r)
		r = strcmp(x->generator, y->generator);
	return r ? r : strcmp(x->name, y->name);
}

static void order_files(struct vg_clan *c)
{
	/* The older layout's secrets were read first (sops/ before vars/) and
	 * go last; each part is sorted by name. */
	size_t legacy = 0;
	while (legacy < c->n_files && !c->files[legacy].owner &&
	       vg_clan_gen(c, c->files[legacy].generator)->legacy)
		legacy++;
	struct vg_imp_file *sorted = malloc((c->n_files + 1) * sizeof(*sorted));
	if (!sorted)
		return; /* the order read stays: still complete */
	memcpy(sorted, c->files + legacy, (c->n_files - legacy) * sizeof(*sorted));
	qsort(sorted, c->n_files - legacy, sizeof(*sorted), cmp_file);
	memcpy(sorted + c->n_files - legacy, c->files, legacy * sizeof(*sorted));
	free(c->files);
	c->files = sorted;
}

int vg_clan_read(const char *dir, struct vg_clan *c)
{
	memset(c, 0, sizeof(*c));
	c->dir = dir;
	struct reader r = {dir, -1, -1, c};
	r.dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r.dfd < 0)
		return vg_error("%s: %s", dir, strerror(errno));
	int vfd = -1;
	int status = open_dir(&r, r.dfd, "sops", false, &r.sfd);
	if (!status)
		status = open_dir(&r, r.dfd, "vars", true, &vfd);
	if (!status)
		status = read_users(&r, r.sfd);
	if (!status)
		status = read_entries(&r, r.sfd, "sops", "machines", read_machine);
	if (!status)
		status = read_entries(&r, r.sfd, "sops", "secrets", read_secret);
	if (!status && vfd >= 0)
		status = read_entries(&r, vfd, "vars", "per-machine", read_machine_vars);
	if (!status && vfd >= 0)
		status = read_entries(&r, vfd, "vars", "shared", read_shared_gen);
	for (size_t k = 0; !status && k < c->n_keys; k++)
		vg_clan_machine(c, c->keys[k].machine)->kept = &c->keys[k];
	if (!status)
		status = settle_machines(&r);
	if (!status)
		status = link_shared(&r);
	if (!status)
		order_files(c);
	if (!status && c->n_files == 0 && c->n_keys == 0)
		status = vg_error("%s: nothing to import (no vars/ files, no sops/secrets)", dir);
	if (r.sfd >= 0)
		close(r.sfd);
	if (vfd >= 0)
		close(vfd);
	close(r.dfd);
	return status;
}

void vg_clan_free(struct vg_clan *c)
{
	for (size_t i = 0; i < c->n_admins; i++) {
		free(c->admins[i].name);
		free(c->admins[i].recipient);
		free(c->admins[i].path);
	}
	free(c->admins);
	for (size_t i = 0; i < c->n_machines; i++) {
		free(c->machines[i].name);
		free(c->machines[i].key);
		free(c->machines[i].key_path);
		vf_strings_free(&c->machines[i].keys);
		vf_strings_free(&c->machines[i].generators);
	}
	free(c->machines);
	for (size_t i = 0; i < c->n_gens; i++) {
		free(c->gens[i].name);
		vf_strings_free(&c->gens[i].files);
		free(c->gens[i].secret);
		vf_strings_free(&c->gens[i].machines);
		free(c->gens[i].from);
	}
	free(c->gens);
	for (size_t i = 0; i < c->n_files; i++) {
		struct vg_imp_file *f = &c->files[i];
		free(f->owner);
		free(f->generator);
		free(f->name);
		free(f->path);
		vf_sops_free(f->sops);
		vf_sops_plain_free(&f->plain);
		free(f->value);
	}
	free(c->files);
	for (size_t i = 0; i < c->n_keys; i++) {
		free(c->keys[i].machine);
		free(c->keys[i].path);
		vf_sops_free(c->keys[i].sops);
		vf_sops_plain_free(&c->keys[i].plain);
		vf_identities_free(&c->keys[i].ids);
	}
	free(c->keys);
	vf_strings_free(&c->notes);
	memset(c, 0, sizeof(*c));
}
