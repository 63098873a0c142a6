/* Checks the vars spec parser (format/vars/spec.h):
 *  1. the seed scenario parses with every field and default as expected;
 *  2. built-in file kinds, key-pair generators, shared generators,
 *     dependencies and prompts parse with the right values;
 *  3. the generator hash follows what decides the values (script, kind
 *     parameters, prompts, ...) and ignores install attributes, key order
 *     and defaults written out;
 *  4. bad specs fail with VF_E_ARG and a message "PATH:LINE:COLUMN: ..."
 *     at the exact position, naming the reason;
 *  5. hostile specs (issue 8) are refused quickly: credential names systemd
 *     would split, nesting deeper than 64 levels, specs above 1 MiB, FIFOs
 *     and devices in place of the file; the dependency walks stay linear
 *     on 1,000 chained diamonds; a spec parses from memory as from a file;
 *  6. a script generator's `timeout:` is read, checked and left out of the
 *     hash.
 * Specs are written to a mkdtemp directory under /tmp, removed afterwards.
 * Recipients are generated at start with the library itself. Prints one
 * line per check and a final "spec: N passed, M failed"; exit status 0
 * only when nothing failed. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/secmem.h"
#include "age/recipient.h"
#include "vars/oem.h"
#include "vars/spec.h"
#include "vars/vars.h"

static int passed, failed;
static char dir[64];
static unsigned n_written;
static char *alice, *bob, *machine;

__attribute__((format(printf, 2, 3))) static void check(bool ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s ", ok ? "ok  " : "FAIL");
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout); /* a watchdog's _exit must not lose what was printed */
	va_end(ap);
	if (ok)
		passed++;
	else
		failed++;
}

static bool str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static char *new_recipient(void)
{
	struct vf_identity *id = NULL;
	struct vf_error err;
	char *r = NULL;
	if (vf_x25519_identity_generate(&id, &err) != VF_OK ||
	    vf_x25519_identity_recipient(id, &r, &err) != VF_OK) {
		fprintf(stderr, "spec_test: cannot make a recipient: %s\n", err.msg);
		exit(2);
	}
	vf_identity_free(id);
	return r;
}

/* tmpl with @A, @B and @M replaced by alice's, bob's and the machine's
 * recipients. */
static char *expand(const char *tmpl)
{
	size_t cap = strlen(tmpl) * 2 + 3 * 80 + 1, n = 0;
	char *out = malloc(cap);
	for (const char *p = tmpl; *p && out; p++) {
		const char *r = NULL;
		if (p[0] == '@' && p[1] == 'A')
			r = alice;
		else if (p[0] == '@' && p[1] == 'B')
			r = bob;
		else if (p[0] == '@' && p[1] == 'M')
			r = machine;
		if (r) {
			size_t len = strlen(r);
			if (n + len + 1 > cap)
				cap = (n + len + 1) * 2, out = realloc(out, cap);
			memcpy(out + n, r, len);
			n += len;
			p++;
		} else {
			if (n + 2 > cap)
				cap *= 2, out = realloc(out, cap);
			out[n++] = *p;
		}
	}
	if (!out)
		exit(2);
	out[n] = '\0';
	return out;
}

/* Writes the expanded template to a fresh file, loads it, removes it.
 * path receives the file's name (for checking message prefixes). */
static enum vf_code load(const char *tmpl, struct vf_spec *spec, struct vf_error *err,
			 char *path, size_t path_size)
{
	snprintf(path, path_size, "%s/spec%u.yaml", dir, n_written++);
	char *text = expand(tmpl);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0) {
		fprintf(stderr, "spec_test: cannot write %s\n", path);
		exit(2);
	}
	free(text);
	memset(err, 0, sizeof(*err));
	enum vf_code rc = vf_spec_load(path, spec, err);
	unlink(path);
	return rc;
}

/* Loads a spec that must be valid; false (and a failed check) if not. */
static bool load_ok(const char *label, const char *tmpl, struct vf_spec *spec)
{
	struct vf_error err;
	char path[128];
	enum vf_code rc = load(tmpl, spec, &err, path, sizeof(path));
	check(rc == VF_OK, "%s: loads%s%s", label, rc == VF_OK ? "" : ": ",
	      rc == VF_OK ? "" : err.msg);
	return rc == VF_OK;
}

/* ---- 1. the seed scenario ---------------------------------------------- */

static const char seed[] =
	"admins:\n"
	"  alice: @A\n"
	"  bob: @B\n"
	"machines:\n"
	"  test-vm:\n"
	"    key: @M\n"
	"    generators: [test-vm-secrets]\n"
	"    credentials:\n"
	"      HOST-API-KEY: test-vm-secrets/api-key\n"
	"      HOST-DB-PASSWORD: test-vm-secrets/db-password\n"
	"      HOST-JWT-SECRET: test-vm-secrets/jwt-secret\n"
	"generators:\n"
	"  test-vm-secrets:\n"
	"    files:\n"
	"      api-key: {mode: \"0400\"}\n"
	"      db-password: {mode: \"0400\"}\n"
	"      jwt-secret: {mode: \"0400\"}\n"
	"    script: |\n"
	"      openssl rand -base64 32 | tr -d '\\n' > \"$out/api-key\"\n"
	"      openssl rand -base64 32 | tr -d '\\n' > \"$out/db-password\"\n"
	"      openssl rand -base64 64 | tr -d '\\n' > \"$out/jwt-secret\"\n";

static const char seed_script[] =
	"openssl rand -base64 32 | tr -d '\\n' > \"$out/api-key\"\n"
	"openssl rand -base64 32 | tr -d '\\n' > \"$out/db-password\"\n"
	"openssl rand -base64 64 | tr -d '\\n' > \"$out/jwt-secret\"\n";

static bool is_hex64(const char *h)
{
	if (strlen(h) != 64)
		return false;
	for (const char *p = h; *p; p++)
		if (!strchr("0123456789abcdef", *p))
			return false;
	return true;
}

static void seed_admins(const struct vf_spec *s)
{
	check(s->n_admins == 2, "seed: 2 admins");
	if (s->n_admins != 2)
		return;
	check(str_eq(s->admins[0].name, "alice") && str_eq(s->admins[0].recipient, alice),
	      "seed: admin alice and her recipient");
	check(str_eq(s->admins[1].name, "bob") && str_eq(s->admins[1].recipient, bob),
	      "seed: admin bob and his recipient");
	check(s->admins[1].pos.line == 3 && s->admins[1].pos.column == 3, "seed: bob at 3:3");
}

static void seed_machine(const struct vf_spec *s)
{
	const struct vf_spec_machine *m = vf_spec_machine(s, "test-vm");
	check(s->n_machines == 1 && m, "seed: machine test-vm");
	if (!m)
		return;
	check(str_eq(m->key, machine), "seed: machine key");
	check(m->pos.line == 5 && m->pos.column == 3, "seed: machine at 5:3");
	check(m->key_pos.line == 6 && m->key_pos.column == 10, "seed: key value at 6:10 (got %u:%u)",
	      m->key_pos.line, m->key_pos.column);
	check(m->n_generators == 1 && str_eq(m->generators[0], "test-vm-secrets"),
	      "seed: machine generators [test-vm-secrets]");
	static const char *const names[] = {"HOST-API-KEY", "HOST-DB-PASSWORD", "HOST-JWT-SECRET"};
	static const char *const files[] = {"api-key", "db-password", "jwt-secret"};
	check(m->n_credentials == 3, "seed: 3 credentials");
	for (size_t i = 0; i < 3 && i < m->n_credentials; i++) {
		const struct vf_spec_credential *c = &m->credentials[i];
		check(str_eq(c->name, names[i]) && str_eq(c->generator, "test-vm-secrets") &&
			      str_eq(c->file, files[i]) && c->pos.line == 9 + i,
		      "seed: credential %s -> test-vm-secrets/%s", names[i], files[i]);
	}
	check(vf_spec_machine(s, "other-vm") == NULL, "seed: no machine other-vm");
}

static void seed_generator(const struct vf_spec *s)
{
	const struct vf_spec_generator *g = vf_spec_generator(s, "test-vm-secrets");
	check(s->n_generators == 1 && g, "seed: generator test-vm-secrets");
	if (!g)
		return;
	check(g->kind == VF_KIND_SCRIPT && str_eq(g->script, seed_script), "seed: script text");
	check(!g->share && g->n_dependencies == 0 && g->n_prompts == 0,
	      "seed: share false, no dependencies, no prompts");
	check(g->pos.line == 13 && g->pos.column == 3, "seed: generator at 13:3");
	check(is_hex64(g->hash), "seed: hash is 64 hex digits (%s)", g->hash);
	static const char *const files[] = {"api-key", "db-password", "jwt-secret"};
	check(g->n_files == 3, "seed: 3 files");
	for (size_t i = 0; i < 3 && i < g->n_files; i++) {
		const struct vf_spec_file *f = &g->files[i];
		check(str_eq(f->name, files[i]) && f->secret && f->mode == 0400 &&
			      str_eq(f->owner, "root") && str_eq(f->group, "root") &&
			      f->kind == VF_KIND_SCRIPT && f->alphabet == NULL &&
			      f->pos.line == 15 + i && f->pos.column == 7,
		      "seed: file %s secret, 0400, root:root, script", files[i]);
	}
	check(vf_spec_generator(s, "nope") == NULL, "seed: no generator nope");
}

static void test_seed(void)
{
	struct vf_spec s;
	if (!load_ok("seed", seed, &s))
		return;
	seed_admins(&s);
	seed_machine(&s);
	seed_generator(&s);
	vf_spec_free(&s);
}

/* ---- 2. kinds, key pairs, sharing, dependencies, prompts ---------------- */

static const char kinds[] =
	"generators:\n"
	"  tokens:\n"
	"    files:\n"
	"      raw-key: {kind: random}\n"
	"      hex-key: {kind: random, length: 16, encoding: hex}\n"
	"      pw: {kind: password}\n"
	"      pin: {kind: password, length: 6, alphabet: \"0123456789\"}\n"
	"      id: {kind: uuid, secret: no, mode: 0444}\n"
	"  age-id:\n"
	"    kind: age-keypair\n"
	"    share: true\n"
	"    files:\n"
	"      recipient: {mode: \"0444\", owner: nobody}\n"
	"  wg:\n"
	"    kind: wireguard\n"
	"  app:\n"
	"    dependencies: [tokens, age-id]\n"
	"    prompts:\n"
	"      note: {type: line, description: A note}\n"
	"      pass:\n"
	"      story: {type: multiline}\n"
	"    files:\n"
	"      config: {secret: false, mode: 640, owner: app, group: '1000'}\n"
	"    script: |\n"
	"      cat \"$in/tokens/pw\" > \"$out/config\"\n"
	"machines:\n"
	"  empty-vm:\n"
	"  vm2:\n"
	"    key:\n"
	"    generators: [wg, app]\n"
	"    credentials:\n"
	"      WG-KEY: wg/private\n"
	"      WG.pub: wg/public\n";

static const struct vf_spec_file *file_of(const struct vf_spec_generator *g, const char *name)
{
	for (size_t i = 0; g && i < g->n_files; i++)
		if (str_eq(g->files[i].name, name))
			return &g->files[i];
	return NULL;
}

static void kinds_files(const struct vf_spec *s)
{
	const struct vf_spec_generator *g = vf_spec_generator(s, "tokens");
	check(g && g->kind == VF_KIND_SCRIPT && !g->script && g->n_files == 5,
	      "kinds: tokens has 5 built-in files, no script");
	const struct vf_spec_file *f = file_of(g, "raw-key");
	check(f && f->kind == VF_KIND_RANDOM && f->length == 32 && f->encoding == VF_ENC_BASE64 &&
		      f->secret,
	      "kinds: random defaults: 32 bytes, base64, secret");
	f = file_of(g, "hex-key");
	check(f && f->kind == VF_KIND_RANDOM && f->length == 16 && f->encoding == VF_ENC_HEX,
	      "kinds: random 16 bytes hex");
	f = file_of(g, "pw");
	check(f && f->kind == VF_KIND_PASSWORD && f->length == 32 &&
		      str_eq(f->alphabet, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
	      "kinds: password defaults: 32 characters of A-Z a-z 0-9");
	f = file_of(g, "pin");
	check(f && f->kind == VF_KIND_PASSWORD && f->length == 6 && str_eq(f->alphabet, "0123456789"),
	      "kinds: password 6 digits");
	f = file_of(g, "id");
	check(f && f->kind == VF_KIND_UUID && !f->secret && f->mode == 0444,
	      "kinds: uuid, secret: no, mode 0444 (unquoted)");
}

static void kinds_pairs(const struct vf_spec *s)
{
	const struct vf_spec_generator *g = vf_spec_generator(s, "age-id");
	check(g && g->kind == VF_KIND_AGE_KEYPAIR && g->share && !g->script && g->n_files == 2,
	      "kinds: age-keypair, shared, two files");
	const struct vf_spec_file *id = file_of(g, "identity"), *r = file_of(g, "recipient");
	check(id && id->secret && id->mode == 0400 && str_eq(id->owner, "root") &&
		      id->kind == VF_KIND_AGE_KEYPAIR,
	      "kinds: identity secret, defaults");
	check(r && !r->secret && r->mode == 0444 && str_eq(r->owner, "nobody") &&
		      str_eq(r->group, "root") && r->pos.line == 13,
	      "kinds: recipient public, mode and owner overridden");
	g = vf_spec_generator(s, "wg");
	check(g && g->kind == VF_KIND_WIREGUARD && !g->share && g->n_files == 2 &&
		      str_eq(g->files[0].name, "private") && g->files[0].secret &&
		      str_eq(g->files[1].name, "public") && !g->files[1].secret,
	      "kinds: wireguard private (secret) and public");
}

static void kinds_app(const struct vf_spec *s)
{
	const struct vf_spec_generator *g = vf_spec_generator(s, "app");
	check(g && g->n_dependencies == 2 && str_eq(g->dependencies[0], "tokens") &&
		      str_eq(g->dependencies[1], "age-id"),
	      "kinds: dependencies [tokens, age-id]");
	check(g && g->n_prompts == 3, "kinds: 3 prompts");
	if (!g || g->n_prompts != 3)
		return;
	const struct vf_spec_prompt *p = g->prompts;
	check(str_eq(p[0].name, "note") && p[0].type == VF_PROMPT_LINE &&
		      str_eq(p[0].description, "A note") && p[0].pos.line == 19,
	      "kinds: prompt note: line, described");
	check(str_eq(p[1].name, "pass") && p[1].type == VF_PROMPT_HIDDEN && !p[1].description,
	      "kinds: prompt pass: defaults (hidden, no description)");
	check(str_eq(p[2].name, "story") && p[2].type == VF_PROMPT_MULTILINE,
	      "kinds: prompt story: multiline");
	const struct vf_spec_file *f = file_of(g, "config");
	check(f && !f->secret && f->mode == 0640 && str_eq(f->owner, "app") &&
		      str_eq(f->group, "1000") && f->kind == VF_KIND_SCRIPT,
	      "kinds: config: public, mode 640 read as octal, app:1000");
}

static void kinds_machines(const struct vf_spec *s)
{
	const struct vf_spec_machine *m = vf_spec_machine(s, "empty-vm");
	check(m && !m->key && m->n_generators == 0 && m->n_credentials == 0,
	      "kinds: machine with an empty body");
	m = vf_spec_machine(s, "vm2");
	check(m && !m->key && m->key_pos.line == 29 && m->key_pos.column == 9,
	      "kinds: empty key: NULL, key_pos just after 'key:' (got %u:%u)",
	      m ? m->key_pos.line : 0, m ? m->key_pos.column : 0);
	check(m && m->n_credentials == 2 && str_eq(m->credentials[0].generator, "wg") &&
		      str_eq(m->credentials[0].file, "private") &&
		      str_eq(m->credentials[1].name, "WG.pub"),
	      "kinds: credentials on key-pair files");
}

static void test_kinds(void)
{
	struct vf_spec s;
	if (!load_ok("kinds", kinds, &s))
		return;
	check(s.n_admins == 0 && s.n_generators == 4 && s.n_machines == 2,
	      "kinds: no admins, 4 generators, 2 machines");
	kinds_files(&s);
	kinds_pairs(&s);
	kinds_app(&s);
	kinds_machines(&s);
	vf_spec_free(&s);
}

/* ---- 3. the generator hash ---------------------------------------------- */

static const char hash_base[] =
	"generators:\n"
	"  g:\n"
	"    prompts: {p: {type: line, description: one}}\n"
	"    files:\n"
	"      a: {mode: \"0400\"}\n"
	"      b: {secret: false}\n"
	"    script: echo hi\n"
	"  k:\n"
	"    files:\n"
	"      r: {kind: random, length: 16}\n"
	"      w: {kind: password}\n";

/* Hash of generator name in the spec, "" when it does not load. */
static void hash_of(const char *tmpl, const char *name, char out[65])
{
	struct vf_spec s;
	struct vf_error err;
	char path[128];
	out[0] = '\0';
	if (load(tmpl, &s, &err, path, sizeof(path)) != VF_OK) {
		fprintf(stderr, "spec_test: %s\n", err.msg);
		return;
	}
	const struct vf_spec_generator *g = vf_spec_generator(&s, name);
	if (g)
		memcpy(out, g->hash, 65);
	vf_spec_free(&s);
}

struct hash_case {
	const char *label, *spec, *generator;
	bool same;
};

static const struct hash_case hash_cases[] = {
	{"script changed", "generators:\n  g:\n    prompts: {p: {type: line}}\n    files:\n"
			   "      a: {}\n      b: {secret: false}\n    script: echo bye\n",
	 "g", false},
	{"length changed", "generators:\n  k:\n    files:\n      r: {kind: random, length: 17}\n"
			   "      w: {kind: password}\n",
	 "k", false},
	{"secret changed", "generators:\n  g:\n    prompts: {p: {type: line}}\n    files:\n"
			   "      a: {}\n      b: {secret: true}\n    script: echo hi\n",
	 "g", false},
	{"prompt type changed", "generators:\n  g:\n    prompts: {p: {type: hidden}}\n    files:\n"
				"      a: {}\n      b: {secret: false}\n    script: echo hi\n",
	 "g", false},
	{"share changed", "generators:\n  g:\n    share: true\n    prompts: {p: {type: line}}\n"
			  "    files:\n      a: {}\n      b: {secret: false}\n    script: echo hi\n",
	 "g", false},
	{"file renamed", "generators:\n  g:\n    prompts: {p: {type: line}}\n    files:\n"
			 "      a: {}\n      c: {secret: false}\n    script: echo hi\n",
	 "g", false},
	{"alphabet changed", "generators:\n  k:\n    files:\n      r: {kind: random, length: 16}\n"
			     "      w: {kind: password, alphabet: abc}\n",
	 "k", false},
	{"mode, owner, group and description changed",
	 "generators:\n  g:\n    prompts: {p: {type: line, description: two}}\n    files:\n"
	 "      a: {mode: \"0440\", owner: app, group: app}\n      b: {secret: false, mode: 644}\n"
	 "    script: echo hi\n",
	 "g", true},
	{"keys and files reordered",
	 "generators:\n  g:\n    script: echo hi\n    files:\n      b: {secret: false}\n"
	 "      a: {}\n    prompts: {p: {description: one, type: line}}\n",
	 "g", true},
	{"defaults written out",
	 "generators:\n  k:\n    files:\n      w: {kind: password, length: 32, alphabet: "
	 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789}\n"
	 "      r: {encoding: base64, length: 16, kind: random}\n",
	 "k", true},
	{"other generators changed", "generators:\n  g:\n    prompts: {p: {type: line}}\n"
				     "    files:\n      a: {}\n      b: {secret: false}\n"
				     "    script: echo hi\n  z: {kind: wireguard}\n",
	 "g", true},
};

static void test_hash(void)
{
	char base_g[65], base_k[65], h[65];
	hash_of(hash_base, "g", base_g);
	hash_of(hash_base, "k", base_k);
	check(base_g[0] && base_k[0] && strcmp(base_g, base_k) != 0,
	      "hash: base spec loads, generators differ");
	char d1[65], d2[65];
	hash_of("generators:\n  x: {kind: wireguard}\n  y: {kind: age-keypair}\n"
		"  g: {script: x, dependencies: [x, y], files: {a: null}}\n", "g", d1);
	hash_of("generators:\n  y: {kind: age-keypair}\n  x: {kind: wireguard}\n"
		"  g: {files: {a: null}, dependencies: [y, x], script: x}\n", "g", d2);
	check(d1[0] && strcmp(d1, d2) == 0, "hash: dependencies reordered: unchanged");
	for (size_t i = 0; i < sizeof(hash_cases) / sizeof(hash_cases[0]); i++) {
		const struct hash_case *hc = &hash_cases[i];
		hash_of(hc->spec, hc->generator, h);
		const char *base = hc->generator[0] == 'g' ? base_g : base_k;
		bool same = strcmp(h, base) == 0;
		check(h[0] && same == hc->same, "hash: %s: %s", hc->label,
		      hc->same ? "unchanged" : "changed");
	}
}

/* ---- 4. bad specs --------------------------------------------------------- */

/* A machine using a wireguard generator, up to its first credential's name. */
#define CRED_SPEC                                                                     \
	"generators:\n  g: {kind: wireguard}\nmachines:\n  m:\n    generators: [g]\n" \
	"    credentials:\n      "

struct bad {
	const char *label, *spec;
	const char *at;	  /* "LINE:COLUMN" */
	const char *word; /* a word of the reason */
};

static const struct bad bads[] = {
	{"empty file", "", "1:1", "empty spec"},
	{"comments only", "# nothing\n", "1:1", "empty spec"},
	{"root is a sequence", "- admins\n", "1:1", "expected a mapping"},
	{"unknown top-level key", "admins: {}\nmachinez: {}\n", "2:1", "unknown key 'machinez'"},
	{"unknown key in file",
	 "generators:\n  g:\n    script: x\n    files:\n      api-key:\n        modee: \"0400\"\n",
	 "6:9",
	 "unknown key 'modee' in file 'api-key' (expected one of: secret, mode, owner, group, "
	 "kind, length, encoding, alphabet)"},
	{"unknown key in generator", "generators:\n  g:\n    scripts: x\n", "3:5",
	 "unknown key 'scripts'"},
	{"unknown key in machine", "machines:\n  m:\n    keys: x\n", "3:5", "unknown key 'keys'"},
	{"unknown key in prompt",
	 "generators:\n  g:\n    script: x\n    files: {a: null}\n    prompts:\n      p: {typ: line}\n",
	 "6:11", "unknown key 'typ' in prompt 'p'"},
	{"sequence for machines", "machines:\n  - m\n", "2:3", "is a sequence (expected a mapping)"},
	{"machine named shared", "machines:\n  web1: {}\n  shared: {}\n", "3:3",
	 "machine name 'shared' is reserved"},
	{"scalar for files", "generators:\n  g:\n    script: x\n    files: abc\n", "4:12",
	 "files of generator 'g' is a scalar (expected a mapping)"},
	{"scalar for a machine's generators",
	 "generators:\n  g: {kind: wireguard}\nmachines:\n  m:\n    generators: g\n", "5:17",
	 "expected a sequence"},
	{"mapping for a script", "generators:\n  g:\n    script: {a: b}\n    files: {a: null}\n",
	 "3:13", "expected a string"},
	{"mode not octal",
	 "generators:\n  g:\n    script: x\n    files:\n      a: {mode: \"0999\"}\n", "5:17",
	 "bad mode '0999'"},
	{"mode with setuid", "generators:\n  g:\n    script: x\n    files:\n      a: {mode: 04755}\n",
	 "5:17", "setuid"},
	{"secret not a bool", "generators:\n  g:\n    script: x\n    files:\n      a: {secret: maybe}\n",
	 "5:19", "is 'maybe' (expected true or false)"},
	{"unknown file kind", "generators:\n  g:\n    files:\n      a: {kind: rand}\n", "4:17",
	 "unknown kind 'rand'"},
	{"file kind at generator level", "generators:\n  g:\n    kind: random\n", "3:11",
	 "file kind"},
	{"unknown generator kind", "generators:\n  g:\n    kind: ssh-key\n", "3:11",
	 "unknown kind 'ssh-key'"},
	{"missing script", "generators:\n  g:\n    files:\n      a:\n", "2:3", "no script"},
	{"missing script for one file",
	 "generators:\n  g:\n    files:\n      a: {kind: uuid}\n      b: {mode: '0400'}\n", "5:7",
	 "no kind"},
	{"script without files", "generators:\n  g:\n    script: x\n", "2:3", "no files"},
	{"empty script", "generators:\n  g:\n    script: ''\n    files: {a: null}\n", "3:13",
	 "is empty"},
	{"script and generator kind", "generators:\n  g:\n    kind: wireguard\n    script: x\n",
	 "4:5", "both kind wireguard and a script"},
	{"script and file kind",
	 "generators:\n  g:\n    script: x\n    files:\n      a: {kind: random}\n", "5:11",
	 "has a script"},
	{"dependencies without a script",
	 "generators:\n  g: {kind: wireguard, dependencies: []}\n", "2:24", "no script"},
	{"foreign file in a key pair",
	 "generators:\n  g:\n    kind: age-keypair\n    files:\n      private: {mode: '0400'}\n",
	 "5:7", "has no file 'private'"},
	{"secret of a key-pair file",
	 "generators:\n  g:\n    kind: age-keypair\n    files:\n      recipient: {secret: true}\n",
	 "5:19", "'secret' cannot be set"},
	{"unknown generator in machine",
	 "generators:\n  g:\n    kind: wireguard\nmachines:\n  m:\n    generators: [g, h]\n", "6:21",
	 "unknown generator 'h'"},
	{"generator listed twice", "generators:\n  g: {kind: wireguard}\nmachines:\n"
				   "  m: {generators: [g, g]}\n",
	 "4:23", "twice"},
	{"unknown dependency",
	 "generators:\n  g:\n    script: x\n    dependencies: [nope]\n    files: {a: null}\n", "4:20",
	 "unknown generator 'nope'"},
	{"dependency cycle",
	 "generators:\n  a:\n    script: x\n    dependencies: [b]\n    files: {f: null}\n"
	 "  b:\n    script: x\n    dependencies: [a]\n    files: {f: null}\n",
	 "2:3", "dependency cycle: a -> b -> a"},
	{"longer dependency cycle",
	 "generators:\n  top:\n    script: x\n    dependencies: [a]\n    files: {f: null}\n"
	 "  a: {script: x, dependencies: [b], files: {f: null}}\n"
	 "  b: {script: x, dependencies: [c], files: {f: null}}\n"
	 "  c: {script: x, dependencies: [a], files: {f: null}}\n",
	 "6:3", "dependency cycle: a -> b -> c -> a"},
	{"self dependency", "generators:\n  a: {script: x, dependencies: [a], files: {f: null}}\n",
	 "2:3", "dependency cycle: a -> a"},
	{"bad admin recipient", "admins:\n  alice: age1notvalid\n", "2:10", "not a valid recipient"},
	{"admin without recipient", "admins:\n  alice:\n", "2:9", "expected a string"},
	{"bad machine key", "machines:\n  m:\n    key: ssh-ed25519 AAAA\n", "3:10",
	 "not a valid recipient"},
	{"name '../x'", "generators:\n  ../x: {kind: wireguard}\n", "2:3", "starts with '.'"},
	{"name '.hidden'", "machines:\n  .hidden:\n", "2:3", "starts with '.'"},
	{"name 'a/b'", "admins:\n  \"a/b\": @A\n", "2:3", "contains '/'"},
	{"name with a space", "machines:\n  \"my vm\":\n", "2:3", "contains a space"},
	{"name with a tab", "machines:\n  \"a\\tb\":\n", "2:3", "not printable ASCII"},
	{"credential name with ':'",
	 "generators:\n  g: {kind: wireguard}\nmachines:\n  m:\n    generators: [g]\n"
	 "    credentials:\n      \"A:B\": g/private\n",
	 "7:7", "contains ':'"},
	{"credential from an unused generator",
	 "generators:\n  g: {kind: wireguard}\n  h: {kind: wireguard}\nmachines:\n  m:\n"
	 "    generators: [g]\n    credentials:\n      K: h/private\n",
	 "8:10", "does not use"},
	{"credential from a missing file",
	 "generators:\n  g: {kind: wireguard}\nmachines:\n  m:\n    generators: [g]\n"
	 "    credentials:\n      K: g/secret\n",
	 "7:10", "does not have"},
	{"credential without a file",
	 "generators:\n  g: {kind: wireguard}\nmachines:\n  m:\n    generators: [g]\n"
	 "    credentials:\n      K: g\n",
	 "7:10", "expected generator/file"},
	{"duplicate key", "generators:\n  g:\n    script: x\n    files:\n      a:\n"
			  "        mode: '0400'\n        mode: '0440'\n",
	 "7:9", "duplicate key 'mode'"},
	{"duplicate generator", "generators:\n  g: {kind: wireguard}\n  g: {kind: age-keypair}\n",
	 "3:3", "duplicate generator 'g'"},
	{"duplicate admin", "admins:\n  alice: @A\n  bob: @B\n  alice: @B\n", "4:3",
	 "duplicate admin 'alice'"},
	{"duplicate file", "generators:\n  g:\n    script: x\n    files:\n      a: null\n"
			   "      b: null\n      a: {mode: '0440'}\n",
	 "7:7", "duplicate file 'a'"},
	{"duplicate key-pair file",
	 "generators:\n  g:\n    kind: wireguard\n    files:\n      public: null\n"
	 "      public: {mode: '0444'}\n",
	 "6:7", "duplicate file 'public'"},
	{"duplicate dependency",
	 "generators:\n  d: {kind: wireguard}\n  g:\n    script: x\n"
	 "    dependencies: [d, d]\n    files: {a: null}\n",
	 "5:23", "lists 'd' twice"},
	{"duplicate credential",
	 "generators:\n  g: {kind: wireguard}\nmachines:\n  m:\n    generators: [g]\n"
	 "    credentials:\n      K: g/private\n      K: g/public\n",
	 "8:7", "duplicate credential 'K'"},
	{"YAML syntax error", "admins:\n  alice: x: y\n", "2:11", "YAML syntax error"},
	{"unclosed flow sequence", "machines:\n  m: {generators: [g\n", "3:1", "YAML syntax error"},
	{"control character", "admins:\n  a\001: x\n", "2:4", "YAML syntax error"},
	{"two documents", "admins: {}\n---\nmachines: {}\n", "3:1", "second YAML document"},
	{"random length 0", "generators:\n  g:\n    files:\n      a: {kind: random, length: 0}\n",
	 "4:33", "out of range (expected 1..65536 bytes)"},
	{"random length too long",
	 "generators:\n  g:\n    files:\n      a: {kind: random, length: 65537}\n", "4:33",
	 "out of range"},
	{"password length too long",
	 "generators:\n  g:\n    files:\n      a: {kind: password, length: 4097}\n", "4:35",
	 "out of range (expected 1..4096 characters)"},
	{"length not a number",
	 "generators:\n  g:\n    files:\n      a: {kind: password, length: 0x10}\n", "4:35",
	 "not a number"},
	{"encoding on a password",
	 "generators:\n  g:\n    files:\n      a: {kind: password, encoding: hex}\n", "4:27",
	 "'encoding' does not apply to kind password"},
	{"length without a kind",
	 "generators:\n  g:\n    script: x\n    files:\n      a: {length: 8}\n", "5:11",
	 "'length' given in file 'a', which has no kind"},
	{"unknown encoding",
	 "generators:\n  g:\n    files:\n      a: {kind: random, encoding: base32}\n", "4:35",
	 "unknown encoding 'base32'"},
	{"alphabet with repeats",
	 "generators:\n  g:\n    files:\n      a: {kind: password, alphabet: abca}\n", "4:37",
	 "repeats 'a'"},
	{"alphabet too short",
	 "generators:\n  g:\n    files:\n      a: {kind: password, alphabet: x}\n", "4:37",
	 "too short"},
	{"unknown prompt type",
	 "generators:\n  g:\n    script: x\n    files: {a: null}\n    prompts: {p: {type: secret}}\n",
	 "5:25", "unknown type 'secret'"},
	{"bad owner", "generators:\n  g:\n    script: x\n    files: {a: {owner: 'root:root'}}\n",
	 "4:24", "contains ':'"},
	{"NUL inside a string", "generators:\n  g:\n    script: \"a\\0b\"\n    files: {a: null}\n",
	 "3:13", "NUL"},
	/* Issue 8, item 3: systemd splits "io.systemd.credential:DB=HOST=..." at
	 * the first '=': the guest would get credential DB holding "HOST=...". */
	{"credential name with '='", CRED_SPEC "\"DB=HOST\": g/private\n", "7:7", "contains '='"},
	{"credential name ending in '='", CRED_SPEC "\"DB=\": g/private\n", "7:7", "contains '='"},
	{"credential name '.'", CRED_SPEC "\".\": g/private\n", "7:7", "starts with '.'"},
	{"credential name '..'", CRED_SPEC "\"..\": g/private\n", "7:7", "starts with '.'"},
	{"empty credential name", CRED_SPEC "\"\": g/private\n", "7:7", "is empty"},
	{"credential name with a control character", CRED_SPEC "\"A\\x01B\": g/private\n", "7:7",
	 "not printable ASCII"},
	{"credential name with DEL", CRED_SPEC "\"A\\x7fB\": g/private\n", "7:7",
	 "not printable ASCII"},
	/* Issue 8, item 4: the script time limit. */
	{"timeout 0", "generators:\n  g: {script: x, files: {a: null}, timeout: 0}\n", "2:45",
	 "timeout 0 of generator 'g' is out of range (expected 1..86400 seconds)"},
	{"timeout above a day",
	 "generators:\n  g: {script: x, files: {a: null}, timeout: 86401}\n", "2:45",
	 "out of range (expected 1..86400 seconds)"},
	{"huge timeout",
	 "generators:\n  g: {script: x, files: {a: null}, timeout: 99999999999999999999999}\n",
	 "2:45", "out of range"},
	{"timeout not a number", "generators:\n  g: {script: x, files: {a: null}, timeout: 5m}\n",
	 "2:45", "timeout '5m' of generator 'g' is not a number (expected 1..86400 seconds)"},
	{"negative timeout", "generators:\n  g: {script: x, files: {a: null}, timeout: -1}\n",
	 "2:45", "not a number"},
	{"timeout as a mapping",
	 "generators:\n  g: {script: x, files: {a: null}, timeout: {s: 1}}\n", "2:45",
	 "is a mapping (expected 1..86400 seconds)"},
	{"timeout on a key-pair generator", "generators:\n  g: {kind: wireguard, timeout: 60}\n",
	 "2:24", "timeout given in generator 'g', which has no script"},
	{"timeout on built-in files",
	 "generators:\n  g:\n    timeout: 60\n    files: {a: {kind: uuid}}\n", "3:5",
	 "which has no script"},
};

static void test_bad(const struct bad *b)
{
	struct vf_spec s;
	struct vf_error err;
	char path[128], prefix[160];
	enum vf_code rc = load(b->spec, &s, &err, path, sizeof(path));
	if (rc == VF_OK)
		vf_spec_free(&s);
	snprintf(prefix, sizeof(prefix), "%s:%s: ", path, b->at);
	bool ok = rc == VF_E_ARG && strncmp(err.msg, prefix, strlen(prefix)) == 0 &&
		  strstr(err.msg, b->word) != NULL;
	check(ok, "bad: %s: at %s, '%s': %s", b->label, b->at, b->word,
	      rc == VF_OK ? "(loaded)" : err.msg);
}

/* ---- 5. hostile specs (issue 8) ------------------------------------------ */

/* Turns a hang into a failed check: the old code took 2^N steps on N
 * chained diamonds and blocked forever opening a FIFO. */
#define WATCHDOG_S 60
static const char *watching;

static void watchdog_fired(int sig)
{
	(void)sig;
	static const char tail[] = ": did not finish within 60 s (a hang)\n";
	if (write(STDOUT_FILENO, "FAIL ", 5) < 0 ||
	    write(STDOUT_FILENO, watching, strlen(watching)) < 0 ||
	    write(STDOUT_FILENO, tail, sizeof(tail) - 1) < 0)
		_exit(1);
	_exit(1);
}

static void watch(const char *label)
{
	fflush(stdout);
	watching = label;
	alarm(label ? WATCHDOG_S : 0);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A generous bound on what takes microseconds once fixed: the check
 * catches the blow-ups, not a slow machine. */
#define QUICK_S 5.0

/* Writes len bytes of text to a fresh file in dir; path gets its name. */
static void write_file(const char *text, size_t len, char *path, size_t path_size)
{
	snprintf(path, path_size, "%s/spec%u.yaml", dir, n_written++);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "spec_test: cannot write %s\n", path);
		exit(2);
	}
}

/* Loads the file at path (removing it afterwards); *seconds gets the
 * time vf_spec_load took. */
static enum vf_code load_path(const char *label, const char *path, struct vf_spec *spec,
			      struct vf_error *err, double *seconds)
{
	memset(err, 0, sizeof(*err));
	watch(label);
	double t0 = now_s();
	enum vf_code rc = vf_spec_load(path, spec, err);
	*seconds = now_s() - t0;
	watch(NULL);
	unlink(path);
	return rc;
}

/* Refused with VF_E_ARG, a message starting with prefix and naming word,
 * and when timed (seconds >= 0) within QUICK_S. */
static void check_refused(const char *label, enum vf_code rc, const struct vf_error *err,
			  const char *prefix, const char *word, double seconds)
{
	bool ok = rc == VF_E_ARG && strncmp(err->msg, prefix, strlen(prefix)) == 0 &&
		  strstr(err->msg, word) != NULL;
	check(ok, "%s: refused with '%s': %s", label, word, rc == VF_OK ? "(loaded)" : err->msg);
	if (seconds >= 0)
		check(seconds < QUICK_S, "%s: refused in %.1f ms (bound %.0f s)", label,
		      seconds * 1e3, QUICK_S);
}

static void test_credential_names(void)
{
	char name[300], spec[512];
	memset(name, 'N', sizeof(name));
	name[255] = '\0';
	snprintf(spec, sizeof(spec), CRED_SPEC "%s: g/private\n", name);
	struct vf_spec s;
	if (load_ok("credential name of 255 bytes", spec, &s))
		vf_spec_free(&s);
	name[255] = 'N';
	name[256] = '\0';
	snprintf(spec, sizeof(spec), CRED_SPEC "%s: g/private\n", name);
	struct vf_error err;
	char path[128], prefix[160];
	enum vf_code rc = load(spec, &s, &err, path, sizeof(path));
	if (rc == VF_OK)
		vf_spec_free(&s);
	snprintf(prefix, sizeof(prefix), "%s:7:7: ", path);
	check_refused("credential name of 256 bytes", rc, &err, prefix, "longer than 255 bytes",
		      -1);
	if (load_ok("credential names with '.', '-', '_', '@' inside",
		    CRED_SPEC "a.b-c_d@E: g/private\n", &s))
		vf_spec_free(&s);
	/* The transports' own check, for names that come from elsewhere (file
	 * names with --name-style, a credentials directory). */
	const char *why = NULL;
	check(!vf_credential_name_valid("DB=HOST", &why) && why && strchr(why, '='),
	      "credential name 'DB=HOST' refused by the transports' check too (%s)",
	      why ? why : "accepted");
}

/* "admins: " then depth nested sequences on one line. */
static char *nested_flow(size_t depth, size_t *len)
{
	*len = 8 + 2 * depth + 1;
	char *t = malloc(*len + 1);
	if (!t)
		exit(2);
	memcpy(t, "admins: ", 8);
	memset(t + 8, '[', depth);
	memset(t + 8 + depth, ']', depth);
	t[*len - 1] = '\n';
	t[*len] = '\0';
	return t;
}

static void test_nesting(void)
{
	struct vf_spec s;
	struct vf_error err;
	char path[128], prefix[160], label[96];
	double took;
	size_t len;
	/* The root mapping is level 1: 63 sequences make 64, the limit, and
	 * fail for what they are; 64 make 65, refused at the 64th '['. */
	char *t = nested_flow(63, &len);
	write_file(t, len, path, sizeof(path));
	free(t);
	enum vf_code rc = load_path("nesting of 64 levels", path, &s, &err, &took);
	check(rc == VF_E_ARG && strstr(err.msg, "admins is a sequence") != NULL,
	      "nesting of 64 levels: within the limit (%s)", err.msg);
	const size_t depths[] = {64, 80000};
	for (size_t i = 0; i < 2; i++) {
		t = nested_flow(depths[i], &len);
		write_file(t, len, path, sizeof(path));
		free(t);
		snprintf(label, sizeof(label), "nesting of %zu levels (%zu bytes)", depths[i] + 1,
			 len);
		rc = load_path(label, path, &s, &err, &took);
		if (rc == VF_OK)
			vf_spec_free(&s);
		snprintf(prefix, sizeof(prefix), "%s:1:72: ", path);
		check_refused(label, rc, &err, prefix,
			      "nesting deeper than 64 levels (expected at most 64", took);
	}
	/* Block mappings count the same. */
	char block[8192];
	size_t n = 0;
	for (int i = 0; i < 70; i++)
		n += (size_t)snprintf(block + n, sizeof(block) - n, "%*sk:\n", i, "");
	write_file(block, n, path, sizeof(path));
	rc = load_path("nested block mappings", path, &s, &err, &took);
	if (rc == VF_OK)
		vf_spec_free(&s);
	snprintf(prefix, sizeof(prefix), "%s:65:65: ", path);
	check_refused("65 nested block mappings", rc, &err, prefix, "nesting deeper than 64", took);
}

/* Aliases: libyaml searches its anchors linearly, and each alias stands
 * for a whole node that the checks walk again (a few KB could stand for
 * billions of nodes). Ordinary use still works. */
static void test_aliases(void)
{
	struct vf_spec s;
	if (load_ok("aliases: shared files mapping",
		    "generators:\n  a: {script: x, files: &std {f: {mode: '0440'}, g: null}}\n"
		    "  b: {script: y, files: *std}\n",
		    &s)) {
		const struct vf_spec_generator *b = vf_spec_generator(&s, "b");
		check(b && b->n_files == 2 && b->files[0].mode == 0440,
		      "aliases: the alias gives b the same files");
		vf_spec_free(&s);
	}
	/* 257 anchors: refused at the 257th. */
	size_t cap = 16 * 1024, n = 0;
	char *t = malloc(cap);
	if (!t)
		exit(2);
	n += (size_t)snprintf(t + n, cap - n, "admins: [");
	for (int i = 0; i < 257; i++)
		n += (size_t)snprintf(t + n, cap - n, "&a%03d x, ", i);
	n += (size_t)snprintf(t + n, cap - n, "]\n");
	char path[128], prefix[160];
	struct vf_error err;
	double took;
	write_file(t, n, path, sizeof(path));
	enum vf_code rc = load_path("257 anchors", path, &s, &err, &took);
	if (rc == VF_OK)
		vf_spec_free(&s);
	snprintf(prefix, sizeof(prefix), "%s:1:%zu: ", path, 10 + 256 * strlen("&a000 x, "));
	check_refused("257 anchors", rc, &err, prefix, "more than 256 anchors", took);
	free(t);
	/* 20,000 generators standing for one of 100 files: 2 million nodes
	 * from 300 KB. */
	cap = 512 * 1024;
	n = 0;
	if (!(t = malloc(cap)))
		exit(2);
	n += (size_t)snprintf(t + n, cap - n, "generators:\n  g0: &g\n    script: x\n    files:\n");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(t + n, cap - n, "      f%d: null\n", i);
	for (int i = 1; i < 20000; i++)
		n += (size_t)snprintf(t + n, cap - n, "  g%d: *g\n", i);
	write_file(t, n, path, sizeof(path));
	free(t);
	rc = load_path("aliases expanding to 2 million nodes", path, &s, &err, &took);
	if (rc == VF_OK)
		vf_spec_free(&s);
	snprintf(prefix, sizeof(prefix), "%s:", path);
	check_refused("aliases expanding to 2 million nodes", rc, &err, prefix,
		      "aliases expand the spec beyond 1048576 nodes", took);
	rc = vf_spec_parse("<memory>", "admins: &a {x: *a}\n", 19, &s, &err);
	if (rc == VF_OK)
		vf_spec_free(&s);
	check_refused("alias inside its own node", rc, &err, "<memory>:1:16: ",
		      "alias to a node that contains it", -1);
}

/* A valid spec of exactly size bytes: comment lines, then admins: {}. */
static char *spec_of_size(size_t size)
{
	static const char tail[] = "admins: {}\n";
	char *t = malloc(size + 1);
	if (!t)
		exit(2);
	size_t body = size - strlen(tail);
	memset(t, 'x', body);
	for (size_t i = 0; i < body; i += 64) {
		t[i] = '#';
		if (i >= 1)
			t[i - 1] = '\n';
	}
	t[body - 1] = '\n';
	memcpy(t + body, tail, sizeof(tail));
	return t;
}

static void test_size(void)
{
	struct vf_spec s;
	struct vf_error err;
	char path[128], prefix[160];
	double took;
	char *t = spec_of_size(8u << 20);
	write_file(t, 8u << 20, path, sizeof(path));
	enum vf_code rc = load_path("spec of 8 MiB", path, &s, &err, &took);
	check(rc == VF_OK, "spec of exactly 8 MiB: loads (%s)", rc == VF_OK ? "" : err.msg);
	if (rc == VF_OK)
		vf_spec_free(&s);
	free(t);
	t = spec_of_size((8u << 20) + 1);
	write_file(t, (8u << 20) + 1, path, sizeof(path));
	free(t);
	rc = load_path("spec of 8 MiB + 1", path, &s, &err, &took);
	if (rc == VF_OK)
		vf_spec_free(&s);
	snprintf(prefix, sizeof(prefix), "%s: ", path);
	check_refused("spec of 8 MiB + 1 byte", rc, &err, prefix,
		      "spec is larger than 8 MiB (expected at most 8388608 bytes)", took);
	/* 16 MiB was accepted before: refused from its size, unread. */
	snprintf(path, sizeof(path), "%s/big.yaml", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 16 << 20) != 0 || close(fd) != 0)
		exit(2);
	rc = load_path("spec of 16 MiB", path, &s, &err, &took);
	if (rc == VF_OK)
		vf_spec_free(&s);
	snprintf(prefix, sizeof(prefix), "%s: ", path);
	check_refused("spec of 16 MiB", rc, &err, prefix, "spec is larger than 8 MiB", took);
}

/* varinject loads the spec as root: a FIFO must not hang it, a device or
 * a directory must not be read; a symlink to a spec is how users give it. */
static void test_special_files(void)
{
	struct vf_spec s;
	struct vf_error err;
	char path[128], prefix[160];
	double took;
	snprintf(path, sizeof(path), "%s/fifo.yaml", dir);
	if (mkfifo(path, 0600) != 0)
		exit(2);
	enum vf_code rc = load_path("spec that is a FIFO", path, &s, &err, &took);
	if (rc == VF_OK)
		vf_spec_free(&s);
	snprintf(prefix, sizeof(prefix), "%s: ", path);
	check_refused("spec that is a FIFO", rc, &err, prefix, "not a regular file", took);
	memset(&err, 0, sizeof(err));
	rc = vf_spec_load("/dev/zero", &s, &err);
	if (rc == VF_OK)
		vf_spec_free(&s);
	check_refused("spec that is /dev/zero", rc, &err, "/dev/zero: ", "not a regular file", -1);
	rc = vf_spec_load(dir, &s, &err);
	if (rc == VF_OK)
		vf_spec_free(&s);
	check_refused("spec that is a directory", rc, &err, dir, "not a regular file", -1);
	char target[128], link[140];
	write_file("admins: {}\n", 11, target, sizeof(target));
	snprintf(link, sizeof(link), "%s/link.yaml", dir);
	if (symlink(target, link) != 0)
		exit(2);
	rc = load_path("spec through a symlink", link, &s, &err, &took);
	check(rc == VF_OK, "spec through a symlink: loads (%s)", rc == VF_OK ? "" : err.msg);
	if (rc == VF_OK)
		vf_spec_free(&s);
	unlink(target);
}

/* vf_spec_parse: the same spec from memory (not NUL-terminated) as from a
 * file, messages under the given name, the same limits. */
static void test_memory(void)
{
	char *text = expand(seed);
	size_t len = strlen(text);
	char *exact = malloc(len);
	if (!exact)
		exit(2);
	memcpy(exact, text, len);
	struct vf_spec from_mem, from_file;
	struct vf_error err;
	enum vf_code rc = vf_spec_parse("<memory>", exact, len, &from_mem, &err);
	check(rc == VF_OK, "memory: seed parses (%s)", rc == VF_OK ? "" : err.msg);
	bool same = false;
	if (rc == VF_OK && load_ok("memory: seed from a file", seed, &from_file)) {
		same = from_mem.n_generators == 1 && from_file.n_generators == 1 &&
		       strcmp(from_mem.generators[0].hash, from_file.generators[0].hash) == 0 &&
		       str_eq(from_mem.path, "<memory>");
		vf_spec_free(&from_file);
	}
	if (rc == VF_OK)
		vf_spec_free(&from_mem);
	check(same, "memory: same generator hash as from a file, path is the given name");
	free(exact);
	free(text);
	rc = vf_spec_parse("<memory>", "admins:\n  - x\n", 14, &from_mem, &err);
	check_refused("memory: bad spec", rc, &err, "<memory>:2:3: ", "expected a mapping", -1);
	size_t n;
	text = nested_flow(100, &n);
	rc = vf_spec_parse("<memory>", text, n, &from_mem, &err);
	check_refused("memory: deep nesting", rc, &err, "<memory>:1:72: ", "nesting deeper", -1);
	free(text);
	text = spec_of_size((8u << 20) + 1);
	rc = vf_spec_parse("<memory>", text, (8u << 20) + 1, &from_mem, &err);
	check_refused("memory: 8 MiB + 1", rc, &err, "<memory>: ", "larger than 8 MiB", -1);
	free(text);
}

/* N chained diamonds: t_i depends on l_i and r_i, which both depend on
 * t_{i+1}; the last pair depends on one shared generator. A walk that
 * follows every path takes 2^N steps. Machine m lists t0; machine other
 * lists an unrelated generator. */
static char *diamonds(size_t n)
{
	size_t cap = 256 * n + 1024, len = 0;
	char *t = malloc(cap);
	if (!t)
		exit(2);
	len += (size_t)snprintf(t + len, cap - len,
				"admins:\n  alice: %s\nmachines:\n"
				"  m: {key: %s, generators: [t0]}\n"
				"  other: {generators: [lonely]}\ngenerators:\n"
				"  base: {kind: wireguard, share: true}\n"
				"  lonely: {files: {id: {kind: uuid}}}\n",
				alice, machine);
	for (size_t i = 0; i < n; i++) {
		char below[32];
		if (i + 1 < n)
			snprintf(below, sizeof(below), "t%zu", i + 1);
		else
			snprintf(below, sizeof(below), "base");
		len += (size_t)snprintf(
			t + len, cap - len,
			"  t%zu: {script: x, dependencies: [l%zu, r%zu], files: {f: null}}\n"
			"  l%zu: {script: x, dependencies: [%s], files: {f: null}}\n"
			"  r%zu: {script: x, dependencies: [%s], files: {f: null}}\n",
			i, i, i, i, below, i, below);
	}
	return t;
}

/* Every generator comes after its dependencies. */
static bool in_dependency_order(const struct vf_spec_generator *const *gens, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t d = 0; d < gens[i]->n_dependencies; d++) {
			size_t j = 0;
			while (j < i && strcmp(gens[j]->name, gens[i]->dependencies[d]) != 0)
				j++;
			if (j == i)
				return false;
		}
	return true;
}

static void diamond_walks(const struct vf_spec *s, size_t n)
{
	const struct vf_spec_machine *m = vf_spec_machine(s, "m"),
				     *other = vf_spec_machine(s, "other");
	const struct vf_spec_generator *base = vf_spec_generator(s, "base"),
				       *lonely = vf_spec_generator(s, "lonely"),
				       *top = vf_spec_generator(s, "t0");
	const struct vf_spec_generator **gens = NULL;
	size_t n_gens = 0;
	struct vf_error err = {0};
	struct vf_strings recipients = {0};
	/* The walks alone are timed; the checks below are quadratic. */
	watch("diamonds: dependency walks");
	double start = now_s();
	enum vf_code order_rc = vf_vars_machine_generators(s, m, &gens, &n_gens, &err);
	double order_took = now_s() - start;
	bool uses_base = vf_vars_machine_uses(s, m, base);
	double uses_took = now_s() - start - order_took;
	bool uses_lonely = vf_vars_machine_uses(s, m, lonely);
	bool other_uses_base = vf_vars_machine_uses(s, other, base);
	enum vf_code rc = vf_vars_recipients(s, NULL, base, &recipients, &err);
	double took = now_s() - start;
	watch(NULL);
	check(order_rc == VF_OK && n_gens == 3 * n + 1 && gens[0] == base &&
		      gens[n_gens - 1] == top,
	      "diamonds: machine m has all %zu generators, base first, t0 last%s%s", 3 * n + 1,
	      order_rc == VF_OK ? "" : ": ", order_rc == VF_OK ? "" : err.msg);
	check(order_rc == VF_OK && in_dependency_order(gens, n_gens),
	      "diamonds: every generator after its dependencies");
	free(gens);
	check(uses_base && !uses_lonely && !other_uses_base,
	      "diamonds: m uses base 2*%zu levels down, not lonely; other does not use base", n);
	check(rc == VF_OK && recipients.n == 2, "diamonds: shared base sealed to alice and m%s%s",
	      rc == VF_OK ? "" : ": ", rc == VF_OK ? "" : err.msg);
	vf_strings_free(&recipients);
	check(took < QUICK_S,
	      "diamonds: %zu chained diamonds walked in %.1f ms (bound %.0f s): dependency "
	      "order %.1f ms, one reachability query %.1f ms",
	      n, took * 1e3, QUICK_S, order_took * 1e3, uses_took * 1e3);
}

static void test_diamonds(void)
{
	const size_t n = 1000;
	char *text = diamonds(n);
	char path[128];
	write_file(text, strlen(text), path, sizeof(path));
	free(text);
	struct vf_spec s;
	struct vf_error err;
	double took;
	enum vf_code rc = load_path("diamonds: load", path, &s, &err, &took);
	check(rc == VF_OK && s.n_generators == 3 * n + 2,
	      "diamonds: %zu chained diamonds load in %.1f ms%s%s", n, took * 1e3,
	      rc == VF_OK ? "" : ": ", rc == VF_OK ? "" : err.msg);
	if (rc != VF_OK)
		return;
	diamond_walks(&s, n);
	vf_spec_free(&s);
}

/* ---- 6. the script time limit -------------------------------------------- */

static void test_timeout(void)
{
	struct vf_spec s;
	if (load_ok("timeout", "generators:\n  g: {script: x, files: {a: null}, timeout: 600}\n"
			       "  h: {script: x, files: {a: null}, timeout: \"86400\"}\n"
			       "  i: {script: x, files: {a: null}}\n", &s)) {
		const struct vf_spec_generator *g = vf_spec_generator(&s, "g"),
					       *h = vf_spec_generator(&s, "h"),
					       *i = vf_spec_generator(&s, "i");
		check(g && g->timeout_seconds == 600 && h && h->timeout_seconds == 86400 && i &&
			      i->timeout_seconds == 0,
		      "timeout: 600, 86400, and 0 when not given");
		vf_spec_free(&s);
	}
	/* Not in the hash: adding or changing a time limit must not make
	 * the stored values stale. */
	char without[65], with[65], other[65];
	hash_of("generators:\n  g: {script: x, files: {a: null}}\n", "g", without);
	hash_of("generators:\n  g: {script: x, files: {a: null}, timeout: 30}\n", "g", with);
	hash_of("generators:\n  g: {script: x, files: {a: null}, timeout: 31}\n", "g", other);
	check(without[0] && strcmp(without, with) == 0 && strcmp(with, other) == 0,
	      "timeout: not part of the generator hash");
}

static void test_io(void)
{
	struct vf_spec s;
	struct vf_error err;
	char path[128];
	snprintf(path, sizeof(path), "%s/missing.yaml", dir);
	enum vf_code rc = vf_spec_load(path, &s, &err);
	check(rc == VF_E_IO && strstr(err.msg, "missing.yaml"), "missing file: VF_E_IO (%s)",
	      err.msg);
	if (rc == VF_OK)
		vf_spec_free(&s);
}

/* ---- 7. lookups by name ------------------------------------------------ */

/* vf_spec_machine and vf_spec_generator search an index sorted by name:
 * every element of a spec written out of order is found, at its own
 * place, and names before, between and after them are not. */
static void test_lookups(void)
{
	const size_t n = 257;
	size_t cap = n * 80 + 64, len = 0; /* both lines of an element fit in 80 */
	char *text = malloc(cap);
	if (!text) {
		check(false, "lookups: out of memory");
		return;
	}
	len += (size_t)snprintf(text + len, cap - len, "machines:\n");
	for (size_t i = 0; i < n; i++) /* descending, then interleaved */
		len += (size_t)snprintf(text + len, cap - len, "  m%03zu: {generators: [g%03zu]}\n",
				       (i * 7919) % n, (i * 7919) % n);
	len += (size_t)snprintf(text + len, cap - len, "generators:\n");
	for (size_t i = n; i-- > 0;)
		len += (size_t)snprintf(text + len, cap - len, "  g%03zu: {files: {a: {kind: uuid}}}\n", i);
	struct vf_spec s;
	bool ok = load_ok("lookups: 257 machines and generators out of order", text, &s);
	free(text);
	if (!ok)
		return;
	size_t found = 0, misplaced = 0, phantom = 0;
	for (size_t i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "m%03zu", i);
		const struct vf_spec_machine *m = vf_spec_machine(&s, name);
		found += m != NULL;
		misplaced += m && !str_eq(m->name, name);
		snprintf(name, sizeof(name), "g%03zu", i);
		const struct vf_spec_generator *g = vf_spec_generator(&s, name);
		found += g != NULL;
		misplaced += g && !str_eq(g->name, name);
	}
	static const char *const absent[] = {"", "m", "m00", "m0000", "m256x", "m257", "m999",
					     "a", "z", "g257", "g", "shared"};
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		phantom += (size_t)(vf_spec_machine(&s, absent[i]) != NULL) +
			   (size_t)(vf_spec_generator(&s, absent[i]) != NULL);
	check(found == 2 * n && !misplaced && !phantom,
	      "lookups: %zu of %zu found, %zu misplaced, %zu absent names found", found, 2 * n,
	      misplaced, phantom);
	vf_spec_free(&s);
}

int main(void)
{
	if (vf_init() != 0) {
		fprintf(stderr, "spec_test: vf_init failed\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "/tmp/spec_test.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("spec_test: mkdtemp");
		return 2;
	}
	signal(SIGALRM, watchdog_fired);
	alice = new_recipient();
	bob = new_recipient();
	machine = new_recipient();
	test_seed();
	test_kinds();
	test_hash();
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		test_bad(&bads[i]);
	test_io();
	test_credential_names();
	test_nesting();
	test_aliases();
	test_size();
	test_special_files();
	test_memory();
	test_diamonds();
	test_timeout();
	test_lookups();
	rmdir(dir);
	free(alice);
	free(bob);
	free(machine);
	printf("spec: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
