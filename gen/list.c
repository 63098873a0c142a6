/* vargen list: every file with its state; vargen check: only problems,
 * and a non-zero exit when there is any. With --json, the same rows as one
 * JSON document (docs/store.md, "Machine-readable output"). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "vargen.h"

static const char list_usage[] = "vargen list [-f SPEC] [--store DIR] [--machine M]... "
				 "[--generator G]... [--json]";
static const char check_usage[] = "vargen check [-f SPEC] [--store DIR] [--machine M]... "
				  "[--generator G]... [--json]\n"
				  "             [-i IDENTITY]... [--passphrase-file FILE]";
static const struct vf_help_row help_rows[] = {
	VG_SPEC_HELP,
	VG_SELECT_HELP,
	{"--json", NULL, "one JSON object: {\"rows\": [...], \"problems\": N, \"total\": M}"},
	VF_HELP_OPTION,
};
static const struct vf_help_row check_rows[] = {
	VG_SPEC_HELP,
	VG_SELECT_HELP,
	{"--json", NULL, "one JSON object: {\"rows\": [...], \"problems\": N, \"total\": M}"},
	{"-i, --identity", "FILE", "an admin's identity: verify key pairs' private halves; "
				   "repeatable"},
	{"--insecure-permissions", NULL, "read identity files that group or others may read"},
	{"--passphrase-file", "FILE", "the passphrase of passphrase-protected identity files, "
				      "read from FILE"},
	VF_HELP_OPTION,
};
static const struct vf_help list_help = {
	list_usage,
	"Lists the selected generators' files, kept machine keys and (nothing selected)\n"
	"orphans, one NAME<TAB>KIND<TAB>STATE line each.",
	VF_HELP_ROWS(help_rows),
	NULL,
};
static const struct vf_help check_help = {
	check_usage,
	"Lists what needs attention, as list does, and exits 4 when anything does,\n"
	"saying on standard error the command that fixes each state. With -i, each key\n"
	"pair's private half is opened and its public key compared with the public half.",
	VF_HELP_ROWS(check_rows),
	NULL,
};

/* ---- --json ---------------------------------------------------------------- */

/* Where a row is, as far as it is one generator's file, machine or key:
 * NULL (JSON null) for what it is not. */
struct where {
	const char *machine, *generator, *file;
	int secret; /* 1, 0, or -1 for null */
	char parts[3][256];
};

/* An orphan's place, from its path in the store (unambiguous, unlike its
 * name: a machine may be called like a generator): vars/per-machine/M/G/F,
 * vars/shared/G/F, vars/machine-keys/M; a leftover of a killed prune is
 * none of them. */
static void orphan_where(const struct vf_orphan *o, struct where *w)
{
	if (!strcmp(o->kind, "leftover"))
		return;
	char copy[1024];
	snprintf(copy, sizeof(copy), "%s", o->rel);
	char *part[6] = {0};
	size_t n = 0;
	for (char *save, *tok = strtok_r(copy, "/", &save); tok && n < 6;
	     tok = strtok_r(NULL, "/", &save))
		part[n++] = tok;
	const char **slots[3] = {&w->machine, &w->generator, &w->file};
	/* part[2] onwards fill the slots from the first that applies: a
	 * machine's, a shared generator's, or a kept key's machine. */
	size_t first = 0;
	bool placed = n >= 3 && (!strcmp(part[1], "per-machine") || !strcmp(part[1], "shared") ||
				 !strcmp(part[1], "machine-keys"));
	if (placed && !strcmp(part[1], "shared"))
		first = 1;
	for (size_t i = 2, slot = first; placed && i < n && slot < 3; i++, slot++) {
		snprintf(w->parts[slot], sizeof(w->parts[slot]), "%s", part[i]);
		*slots[slot] = w->parts[slot];
	}
	w->secret = !strcmp(o->kind, "secret") ? 1 : !strcmp(o->kind, "value") ? 0 : -1;
}

static void row_where(const struct vg_context *ctx, const struct vg_survey *s,
		      const struct vg_row *r, struct where *w)
{
	memset(w, 0, sizeof(*w));
	w->secret = -1;
	if (r->item != SIZE_MAX) {
		const struct vg_item *it = &s->items[r->item];
		w->machine = it->machine;
		w->generator = it->g->name;
		w->file = it->g->files[r->file].name;
		w->secret = it->g->files[r->file].secret;
	} else if (r->st == VF_STATE_ORPHAN) {
		orphan_where(&s->orphans.items[r->file], w);
	} else {
		w->machine = ctx->spec.machines[r->file].name; /* a kept key */
	}
}

struct json {
	struct vf_buf b;
	bool ok;
};

static void put(struct json *j, const char *s)
{
	j->ok &= vf_buf_append_str(&j->b, s, NULL) == VF_OK;
}

static void member(struct json *j, const char *key, const char *value)
{
	put(j, key);
	if (value)
		j->ok &= vf_json_string(&j->b, value, strlen(value), VF_JSON_REPLACE, NULL) == VF_OK;
	else
		put(j, "null");
}

/* The fixes by state, of files and of kept keys: worked out once per
 * state present, then shared by its rows. */
struct fixes {
	char text[2][VG_STATE_LAST + 1][1024];
	bool known[2][VG_STATE_LAST + 1];
};

static const char *fix_for(struct fixes *f, const struct vg_survey *s,
			   const struct vg_context *ctx, const struct vg_row *r)
{
	if (vf_state_sound(r->st))
		return NULL;
	bool keys = vg_row_is_kept_key(r);
	if (!f->known[keys][r->st]) {
		vg_survey_fix(s, ctx, r->st, keys, f->text[keys][r->st], sizeof(f->text[0][0]));
		f->known[keys][r->st] = true;
	}
	return f->text[keys][r->st];
}

static void json_row(struct json *j, const struct vg_context *ctx, const struct vg_survey *s,
		     const struct vg_row *r, const char *reason)
{
	struct where w;
	row_where(ctx, s, r, &w);
	member(j, "{\"machine\":", w.machine);
	member(j, ",\"generator\":", w.generator);
	member(j, ",\"file\":", w.file);
	put(j, w.secret < 0 ? ",\"secret\":null" : w.secret ? ",\"secret\":true"
							    : ",\"secret\":false");
	member(j, ",\"kind\":", r->kind);
	member(j, ",\"name\":", r->name);
	member(j, ",\"state\":", vf_state_name(r->st));
	member(j, ",\"reason\":", reason);
	put(j, "}");
}

/* {"rows": [...], "problems": N, "total": M}: the rows shown (every one,
 * or only the problems), how many of all the rows need attention, and how
 * many rows there are. */
static int print_json(const struct vg_context *ctx, const struct vg_survey *s,
		      bool problems_only, size_t problems)
{
	struct json j = {.ok = true};
	struct fixes *f = calloc(1, sizeof(*f));
	vf_buf_init(&j.b);
	put(&j, "{\"rows\":[");
	size_t shown = 0;
	for (size_t i = 0; f && i < s->n_rows; i++) {
		const struct vg_row *r = &s->rows[i];
		if (problems_only && vf_state_sound(r->st))
			continue;
		put(&j, shown++ ? ",\n" : "\n");
		json_row(&j, ctx, s, r, fix_for(f, s, ctx, r));
	}
	char tail[128];
	snprintf(tail, sizeof(tail), "%s],\"problems\":%zu,\"total\":%zu}\n", shown ? "\n" : "",
		 problems, s->n_rows);
	put(&j, tail);
	int status = 0;
	if (!f || !j.ok)
		status = vg_error("out of memory");
	else if (fwrite(j.b.data, 1, j.b.len, stdout) != j.b.len || fflush(stdout) != 0)
		status = vg_error("standard output: write failed");
	free(f);
	vf_buf_free(&j.b);
	return status;
}

/* ---- the commands ---------------------------------------------------------- */

/* Prints the rows (only the problems with problems_only); returns the
 * number of problems, or -1 on error (reported), its exit status in
 * *failed (3 when no identity of check -i opens a key pair's private
 * half: vf_exit_status). */
static int report(const struct vg_context *ctx, bool problems_only, bool json,
		  struct vg_survey *s, int *failed)
{
	*failed = VF_EXIT_ERROR;
	int status = vg_survey(ctx, s);
	if (status != 0) {
		*failed = status;
		return -1;
	}
	size_t problems = vg_survey_problems(s);
	if (json)
		return print_json(ctx, s, problems_only, problems) ? -1 : (int)problems;
	for (size_t i = 0; i < s->n_rows; i++)
		if (!problems_only || !vf_state_sound(s->rows[i].st))
			vg_print_row(&s->rows[i]);
	return (int)problems;
}

int cmd_list(int argc, char **argv)
{
	struct vg_context ctx = {0};
	struct vg_survey s = {0};
	struct vg_flags flags = {.takes_json = true};
	int status = vg_parse(argc, argv, &ctx, &list_help, &flags);
	int failed;
	if (status == 0 && report(&ctx, false, flags.json, &s, &failed) < 0)
		status = failed;
	vg_survey_free(&s);
	vg_context_free(&ctx);
	return status < 0 ? 0 : status;
}

/* check -i: the identities the key pairs are verified with. */
static int load_identities(const struct vg_identity_args *a, struct vf_identities *ids)
{
	struct vf_error err;
	for (size_t i = 0; i < a->files.n; i++)
		if (vf_load_identities(a->files.items[i], true, a->insecure, a->passphrase_file, ids,
				       &err) != VF_OK)
			return vg_fail(&err);
	return 0;
}

int cmd_check(int argc, char **argv)
{
	struct vg_context ctx = {0};
	struct vg_survey s = {0};
	struct vg_identity_args id_args = {0};
	struct vf_identities ids = {0};
	struct vg_flags flags = {.takes_json = true, .identities = &id_args};
	int status = vg_parse(argc, argv, &ctx, &check_help, &flags);
	if (status == 0 && id_args.files.n) {
		status = load_identities(&id_args, &ids);
		ctx.verify_ids = &ids;
	}
	if (status == 0) {
		int failed;
		int bad = report(&ctx, true, flags.json, &s, &failed);
		if (bad < 0) {
			status = failed;
		} else if (bad > 0) {
			/* The JSON's rows carry their reasons: nothing more to say. */
			if (!flags.json) {
				fflush(stdout); /* the list first, then the verdict */
				fprintf(stderr, "vargen: check: %d of %zu need attention\n", bad,
					s.n_rows);
				vg_survey_hints(&s, &ctx);
			}
			status = VF_EXIT_ATTENTION;
		} else if (!flags.json) {
			printf("check: all %zu ok\n", s.n_rows);
		}
	}
	vg_survey_free(&s);
	vg_context_free(&ctx);
	vf_identities_free(&ids);
	vf_strings_free(&id_args.files);
	return status < 0 ? 0 : status;
}
