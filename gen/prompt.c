/* vargen generate's prompts (prompt.h): --prompt options checked against
 * the spec and the run before anything is made, their files read once,
 * and the questions asked on the terminal naming the machine. */
#include "prompt.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "base/secmem.h"
#include "base/term.h"
#include "generate.h"

#define SHARED "shared" /* the owner of a shared generator's values */
#define SYNTAX "expected [MACHINE:][GEN/]NAME=@FILE"

int vg_prompt_add(struct vg_prompts *ps, const char *arg)
{
	const char *at = strstr(arg, "=@");
	if (!at || at == arg || !at[2])
		return vg_error("--prompt %s: %s", arg, SYNTAX);
	struct vg_prompt_arg *grown = realloc(ps->args, (ps->n + 1) * sizeof(*grown));
	if (!grown)
		return vg_error("out of memory");
	ps->args = grown;
	struct vg_prompt_arg *a = &ps->args[ps->n];
	*a = (struct vg_prompt_arg){.arg = arg, .file = at + 2};
	if (!(a->key = strndup(arg, (size_t)(at - arg))))
		return vg_error("out of memory");
	ps->n++;
	return 0;
}

static const char *owner_of(const struct vg_item *it)
{
	return it->machine ? it->machine : SHARED;
}

static bool has_prompt(const struct vf_spec_generator *g, const char *name)
{
	for (size_t p = 0; p < g->n_prompts; p++)
		if (!strcmp(g->prompts[p].name, name))
			return true;
	return false;
}

/* Whether owner (NULL: any) makes generator g's values itself. */
static bool owner_asks(const struct vf_spec *spec, const char *owner,
		       const struct vf_spec_generator *g)
{
	if (!owner)
		return true;
	if (!strcmp(owner, SHARED))
		return g->share;
	const struct vf_spec_machine *m = vf_spec_machine(spec, owner);
	return m && !g->share && vf_vars_machine_uses(spec, m, g);
}

/* Levenshtein distance, for "did you mean"; names are at most 255 bytes
 * (the spec's limit), longer ones are not compared. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 255 || lb > 255)
		return SIZE_MAX;
	size_t row[256];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* " (did you mean X?)" for the closest prompt name of g (NULL: of every
 * generator) within two edits, else "". */
static void suggest(const struct vf_spec *spec, const struct vf_spec_generator *only,
		    const char *name, char *out, size_t cap)
{
	const char *best = NULL;
	size_t best_d = 3;
	for (size_t i = 0; i < spec->n_generators; i++) {
		const struct vf_spec_generator *g = &spec->generators[i];
		for (size_t p = 0; (!only || g == only) && p < g->n_prompts; p++) {
			size_t d = distance(name, g->prompts[p].name);
			if (d < best_d && d < strlen(name)) {
				best = g->prompts[p].name;
				best_d = d;
			}
		}
	}
	if (best)
		snprintf(out, cap, " (did you mean %s?)", best);
	else if (cap)
		out[0] = '\0';
}

/* Why a --prompt naming machine (or NULL), generator (or NULL) and name
 * matches no prompt of the spec, into why; false when it can match. */
static bool target_problem(const struct vf_spec *spec, const char *machine, const char *gen,
			   const char *name, char *why, size_t cap)
{
	char hint[300];
	if (gen) {
		const struct vf_spec_generator *g = vf_spec_generator(spec, gen);
		if (!g)
			return snprintf(why, cap, "no generator named %s", gen), true;
		if (!has_prompt(g, name)) {
			suggest(spec, g, name, hint, sizeof(hint));
			return snprintf(why, cap, "generator %s has no prompt %s%s", gen, name, hint),
			       true;
		}
		if (!machine || owner_asks(spec, machine, g))
			return false;
		if (!strcmp(machine, SHARED))
			snprintf(why, cap, "generator %s is not shared: its prompts are asked per "
					   "machine (MACHINE:%s/%s)", gen, gen, name);
		else if (g->share)
			snprintf(why, cap, "generator %s is shared: its prompts are answered with "
					   "shared:%s/%s", gen, gen, name);
		else
			snprintf(why, cap, "machine %s does not use generator %s", machine, gen);
		return true;
	}
	bool anywhere = false, shared_has = false;
	for (size_t i = 0; i < spec->n_generators; i++) {
		const struct vf_spec_generator *g = &spec->generators[i];
		if (!has_prompt(g, name))
			continue;
		if (owner_asks(spec, machine, g))
			return false;
		anywhere = true;
		shared_has |= g->share;
	}
	if (!anywhere) {
		suggest(spec, NULL, name, hint, sizeof(hint));
		snprintf(why, cap, "no generator has a prompt %s%s", name, hint);
	} else if (!strcmp(machine, SHARED)) {
		snprintf(why, cap, "no shared generator has a prompt %s", name);
	} else {
		snprintf(why, cap, "machine %s has no prompt %s of its own%s", machine, name,
			 shared_has ? " (a shared generator's prompt is answered with shared:NAME or "
				      "shared:GEN/NAME)"
				    : "");
	}
	return true;
}

static bool is_owner(const struct vf_spec *spec, const char *s, size_t len)
{
	if (len == strlen(SHARED) && !strncmp(s, SHARED, len))
		return true;
	for (size_t m = 0; m < spec->n_machines; m++)
		if (strlen(spec->machines[m].name) == len && !strncmp(spec->machines[m].name, s, len))
			return true;
	return false;
}

/* Splits a->key into machine, generator and name. Names may hold ':'
 * (only '/' is refused in them), so MACHINE is the part before the first
 * ':' that leaves a machine of the spec (or "shared"); without one the
 * key is read with no machine, and failing that the part before the first
 * ':' is the machine that does not exist. */
static int resolve(const struct vf_spec *spec, struct vg_prompt_arg *a)
{
	const char *key = a->key, *slash = strchr(key, '/');
	if (slash && strchr(slash + 1, '/'))
		return vg_error("--prompt %s: %s", a->arg, SYNTAX);
	const char *head_end = slash ? slash : key + strlen(key), *rest = key;
	const char *colon = memchr(key, ':', (size_t)(head_end - key));
	for (const char *c = colon; c; c = memchr(c + 1, ':', (size_t)(head_end - c - 1))) {
		if (is_owner(spec, key, (size_t)(c - key))) {
			a->machine = strndup(key, (size_t)(c - key));
			rest = c + 1;
			break;
		}
	}
	if (slash)
		a->generator = strndup(rest, (size_t)(slash - rest));
	a->name = strdup(slash ? slash + 1 : rest);
	if ((rest != key && !a->machine) || (slash && !a->generator) || !a->name)
		return vg_error("out of memory");
	if (!*a->name || (a->generator && !*a->generator))
		return vg_error("--prompt %s: %s", a->arg, SYNTAX);
	a->rank = (a->machine ? 2 : 0) + (a->generator ? 1 : 0);
	char why[1024];
	if (!target_problem(spec, a->machine, a->generator, a->name, why, sizeof(why)))
		return 0;
	if (!a->machine && colon)
		snprintf(why, sizeof(why), "no machine named %.*s", (int)(colon - key), key);
	return vg_error("--prompt %s: %s", a->arg, why);
}

static bool same(const char *x, const char *y)
{
	return x == y || (x && y && !strcmp(x, y));
}

int vg_prompts_check(struct vg_prompts *ps, const struct vf_spec *spec)
{
	for (size_t i = 0; i < ps->n; i++) {
		int status = resolve(spec, &ps->args[i]);
		if (status)
			return status;
	}
	for (size_t j = 0; j < ps->n; j++) {
		const struct vg_prompt_arg *b = &ps->args[j];
		for (size_t i = 0; i < j; i++) {
			const struct vg_prompt_arg *a = &ps->args[i];
			/* Equally specific and both matching one prompt: both
			 * name exactly the same prompts. */
			if (same(a->machine, b->machine) && same(a->generator, b->generator) &&
			    !strcmp(a->name, b->name))
				return vg_error("--prompt %s and --prompt %s answer the same prompts: "
						"give one of them", a->arg, b->arg);
			if (!strcmp(a->file, "-") && !strcmp(b->file, "-"))
				return vg_error("--prompt %s: standard input already answers "
						"--prompt %s", b->arg, a->arg);
		}
	}
	return 0;
}

static bool matches(const struct vg_prompt_arg *a, const char *owner,
		    const struct vf_spec_generator *g, const struct vf_spec_prompt *p)
{
	return !strcmp(a->name, p->name) && (!a->generator || !strcmp(a->generator, g->name)) &&
	       (!a->machine || !strcmp(a->machine, owner));
}

/* The most specific option matching the prompt, or NULL (the check made
 * sure no two matching ones are equally specific). */
static struct vg_prompt_arg *answer_of(const struct vg_prompts *ps, const char *owner,
				       const struct vf_spec_generator *g,
				       const struct vf_spec_prompt *p)
{
	struct vg_prompt_arg *best = NULL;
	for (size_t i = 0; i < ps->n; i++)
		if (matches(&ps->args[i], owner, g, p) && (!best || ps->args[i].rank > best->rank))
			best = &ps->args[i];
	return best;
}

/* Items whose script this run runs: theirs are the prompts asked. */
static bool asks(const struct run *r, size_t i)
{
	return vg_made(r, i) && r->items[i].g->script && r->items[i].g->n_prompts;
}

int vg_prompts_check_used(struct vg_prompts *ps, const struct run *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct vg_item *it = &r->items[i];
		for (size_t p = 0; asks(r, i) && p < it->g->n_prompts; p++) {
			const struct vf_spec_prompt *pr = &it->g->prompts[p];
			struct vg_prompt_arg *best = answer_of(ps, owner_of(it), it->g, pr);
			for (size_t k = 0; best && k < ps->n; k++)
				if (matches(&ps->args[k], owner_of(it), it->g, pr))
					ps->args[k].shadowed = true;
			if (best)
				best->used = true;
		}
	}
	for (size_t k = 0; k < ps->n; k++) {
		const struct vg_prompt_arg *a = &ps->args[k];
		if (a->used)
			continue;
		if (a->shadowed)
			return vg_error("--prompt %s answers no prompt of this run: each prompt it "
					"matches is answered by a more specific --prompt", a->arg);
		return vg_error("--prompt %s answers no prompt of this run: nothing this run "
				"makes asks it (vargen generate --plan lists what it makes)", a->arg);
	}
	return 0;
}

static bool have_terminal(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* "for web1", or "(shared)": whose prompt it is, in messages. */
static const char *whose(const char *owner, char *buf, size_t cap)
{
	if (!strcmp(owner, SHARED))
		return "(shared)";
	snprintf(buf, cap, "for %s", owner);
	return buf;
}

/* Not vf_tty_read's "use --passphrase-file": what answers a prompt is
 * --prompt, named exactly for this one. */
static int no_terminal(const char *owner, const struct vf_spec_generator *g,
		       const struct vf_spec_prompt *p)
{
	char buf[300];
	return vg_error("generator %s needs prompt %s %s and there is no terminal: give "
			"--prompt %s:%s/%s=@FILE",
			g->name, p->name, whose(owner, buf, sizeof(buf)), owner, g->name, p->name);
}

int vg_prompts_prepare(struct vg_prompts *ps, const struct run *r)
{
	struct vf_error err;
	for (size_t k = 0; k < ps->n; k++) {
		struct vg_prompt_arg *a = &ps->args[k];
		if (vf_read_prompt_file(a->file, &a->data, &a->len, &err) != VF_OK)
			return vg_error("--prompt %s: %s", a->arg, err.msg);
	}
	bool tty = have_terminal();
	for (size_t i = 0; !tty && i < r->n; i++) {
		const struct vg_item *it = &r->items[i];
		for (size_t p = 0; asks(r, i) && p < it->g->n_prompts; p++)
			if (!answer_of(ps, owner_of(it), it->g, &it->g->prompts[p]))
				return no_terminal(owner_of(it), it->g, &it->g->prompts[p]);
	}
	return 0;
}

/* "web1: root-password/password - root password for this machine: ",
 * the description with its control bytes escaped (it is written to the
 * terminal). A multiline answer ends with Ctrl-D, which the question says. */
static char *question(const char *owner, const struct vf_spec_generator *g,
		      const struct vf_spec_prompt *p, bool again)
{
	char desc[1024] = "";
	if (p->description && !again)
		vf_escape_controls(p->description, desc, sizeof(desc));
	char *q = NULL;
	if (asprintf(&q, "%s: %s/%s%s%s%s", owner, g->name, p->name, *desc ? " - " : "", desc,
		     again				    ? " (again): "
		     : p->type == VF_PROMPT_MULTILINE ? " (several lines, end with Ctrl-D):\n"
						      : ": ") < 0)
		return NULL;
	return q;
}

static int ask_terminal(const char *owner, const struct vf_spec_generator *g,
			const struct vf_spec_prompt *p, struct vf_value *v)
{
	if (!have_terminal())
		return no_terminal(owner, g, p);
	char *q = question(owner, g, p, false), *again = question(owner, g, p, true);
	struct vf_error err;
	uint8_t *secret = NULL;
	size_t len = 0;
	enum vf_code rc = VF_E_NOMEM;
	if (!q || !again)
		snprintf(err.msg, sizeof(err.msg), "out of memory");
	else if (p->type == VF_PROMPT_HIDDEN) /* a typo here could lock a machine out */
		rc = vf_tty_read_confirmed(q, again, false, false, &secret, &len, &err);
	else
		rc = vf_tty_read(q, true, p->type == VF_PROMPT_MULTILINE, &secret, &len, &err);
	free(q);
	free(again);
	if (rc != VF_OK) {
		char buf[300];
		return vg_error("generator %s needs prompt %s %s: %s", g->name, p->name,
				whose(owner, buf, sizeof(buf)), err.msg);
	}
	rc = vf_value_set(v, secret, len, &err);
	vf_secure_free(secret);
	return rc == VF_OK ? 0 : vg_fail(&err);
}

int vg_prompt_answer(const struct vg_prompts *ps, const struct vg_item *it,
		     const struct vf_spec_prompt *p, struct vf_value *v)
{
	const struct vg_prompt_arg *a = answer_of(ps, owner_of(it), it->g, p);
	if (!a)
		return ask_terminal(owner_of(it), it->g, p, v);
	/* `echo x > f` writes a newline that a line is not made of; hidden
	 * and multiline answers are taken byte for byte (a secret file is
	 * what it is: printf '%s' makes one without). */
	size_t len = a->len;
	if (p->type == VF_PROMPT_LINE && len && a->data[len - 1] == '\n')
		len--;
	struct vf_error err;
	return vf_value_set(v, a->data, len, &err) == VF_OK ? 0 : vg_fail(&err);
}

void vg_prompts_free(struct vg_prompts *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		struct vg_prompt_arg *a = &ps->args[i];
		free(a->key);
		free(a->machine);
		free(a->generator);
		free(a->name);
		vf_secure_free(a->data);
	}
	free(ps->args);
	*ps = (struct vg_prompts){0};
}
