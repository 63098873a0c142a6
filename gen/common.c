/* What the subcommands share: messages, the spec, the list of work. */
#include <getopt.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/secmem.h"
#include "base/term.h"
#include "base/tool.h"

#include "vargen.h"

int vg_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int status = vf_tool_verror(stderr, "vargen", fmt, ap);
	va_end(ap);
	return status;
}

int vg_fail(const struct vf_error *err)
{
	vg_error("%s", err->msg);
	return vf_exit_status(err->code);
}

int vg_usage(const char *usage)
{
	fprintf(stderr, "vargen: usage: %s\n", usage);
	return VF_EXIT_USAGE;
}

int vg_parse(int argc, char **argv, struct vg_context *ctx, const struct vf_help *help,
	     struct vg_flags *flags)
{
	const char *usage = help->usage;
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{"store", required_argument, NULL, OPT_STORE},
		{"machine", required_argument, NULL, 'm'},
		{"generator", required_argument, NULL, 'g'},
		{"all", no_argument, NULL, OPT_ALL},
		{"plan", no_argument, NULL, OPT_PLAN},
		{"yes", no_argument, NULL, OPT_YES},
		{"json", no_argument, NULL, OPT_JSON},
		{"identity", required_argument, NULL, 'i'},
		{"insecure-permissions", no_argument, NULL, OPT_INSECURE_PERMISSIONS},
		{"passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	struct vf_error err;
	struct vg_identity_args *ids = flags ? flags->identities : NULL;
	while ((c = getopt_long(argc, argv, "f:m:g:i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': ctx->spec_path = optarg; break;
		case OPT_STORE: ctx->store_opt = optarg; break;
		case 'm':
			if (vf_strings_add(&ctx->machines, optarg, &err) != VF_OK)
				return vg_fail(&err);
			break;
		case 'g':
			if (vf_strings_add(&ctx->generators, optarg, &err) != VF_OK)
				return vg_fail(&err);
			break;
		case OPT_ALL:
		case OPT_PLAN:
		case OPT_YES:
			if (!flags || flags->takes_json)
				return vg_usage(usage);
			*(c == OPT_ALL ? &flags->all : c == OPT_PLAN ? &flags->plan : &flags->yes) = true;
			break;
		case OPT_JSON:
			if (!flags || !flags->takes_json)
				return vg_usage(usage);
			flags->json = true;
			break;
		case 'i':
		case OPT_INSECURE_PERMISSIONS:
		case OPT_PASSPHRASE_FILE:
			if (!ids)
				return vg_usage(usage);
			if (c == OPT_INSECURE_PERMISSIONS)
				ids->insecure = true;
			else if (c == OPT_PASSPHRASE_FILE)
				ids->passphrase_file = optarg;
			else if (vf_strings_add(&ids->files, optarg, &err) != VF_OK)
				return vg_fail(&err);
			break;
		case 'h': vf_help_print(stdout, help); return -1;
		default: return vg_usage(usage);
		}
	}
	if (optind != argc)
		return vg_usage(usage);
	return vg_load(ctx);
}

/* Asks once on the terminal (default no); without one, refuses unless
 * --yes: removing or replacing what exists is never a surprise. */
int vg_confirm(const char *question, size_t n, const char *what, bool yes)
{
	if (n == 0 || yes)
		return 0;
	int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tty < 0)
		return vg_error("this would %s (--plan lists them); not on a terminal, so give "
				"--yes to confirm",
				what);
	close(tty);
	uint8_t *answer = NULL;
	size_t len = 0;
	struct vf_error err;
	enum vf_code rc = vf_tty_read(question, true, false, &answer, &len, &err);
	/* Just Enter is the default, no (the reader calls an empty line an
	 * error, VF_E_ARG, as it must for passphrases). */
	if (rc == VF_E_ARG)
		return vg_error("not confirmed: nothing was written");
	if (rc != VF_OK)
		return vg_fail(&err);
	bool ok = (len == 1 || (len == 3 && !strncasecmp((char *)answer, "yes", 3))) &&
		  (answer[0] == 'y' || answer[0] == 'Y');
	vf_secure_free(answer);
	return ok ? 0 : vg_error("not confirmed: nothing was written");
}

int vg_load(struct vg_context *ctx)
{
	struct vf_error err;
	if (vf_vars_open(ctx->spec_path, ctx->store_opt, &ctx->spec, &ctx->root, &err) != VF_OK)
		return vg_fail(&err);
	ctx->spec_path = ctx->spec.path; /* the default filled in, for messages */
	for (size_t i = 0; i < ctx->machines.n; i++)
		if (!vf_spec_machine(&ctx->spec, ctx->machines.items[i]))
			return vg_error("%s: no machine named %s", ctx->spec_path,
					ctx->machines.items[i]);
	for (size_t i = 0; i < ctx->generators.n; i++)
		if (!vf_spec_generator(&ctx->spec, ctx->generators.items[i]))
			return vg_error("%s: no generator named %s", ctx->spec_path,
					ctx->generators.items[i]);
	/* A mistyped --store must not read as an empty store (everything
	 * "missing") or start a new one unannounced. */
	bool present;
	if (vf_vars_store_present(ctx->root, &present, &err) != VF_OK)
		return vg_fail(&err);
	ctx->new_store = !present;
	if (!ctx->may_create && vf_vars_require_store(ctx->root, &err) != VF_OK)
		return vg_fail(&err);
	return 0;
}

void vg_context_free(struct vg_context *ctx)
{
	vf_spec_free(&ctx->spec);
	free(ctx->root);
	vf_strings_free(&ctx->machines);
	vf_strings_free(&ctx->generators);
}

bool vg_selected_machine(const struct vg_context *ctx, const char *name)
{
	return ctx->machines.n == 0 || vf_strings_has(&ctx->machines, name);
}

bool vg_selected_generator(const struct vg_context *ctx, const char *name)
{
	return ctx->generators.n == 0 || vf_strings_has(&ctx->generators, name);
}

int vg_items(const struct vg_context *ctx, struct vg_item **out, size_t *n_out)
{
	const struct vf_spec *spec = &ctx->spec;
	size_t cap = spec->n_machines * spec->n_generators + spec->n_generators + 1;
	struct vg_item *items = calloc(cap, sizeof(*items));
	/* Shared items come once, where the first machine uses them. */
	bool *shared_seen = calloc(spec->n_generators + 1, sizeof(bool));
	if (!items || !shared_seen) {
		free(items);
		free(shared_seen);
		return vg_error("out of memory");
	}
	size_t n = 0;
	for (size_t m = 0; m < spec->n_machines; m++) {
		const struct vf_spec_machine *machine = &spec->machines[m];
		if (!vg_selected_machine(ctx, machine->name))
			continue;
		const struct vf_spec_generator **gens;
		size_t n_gens;
		struct vf_error err;
		if (vf_vars_machine_generators(spec, machine, &gens, &n_gens, &err) != VF_OK) {
			free(items);
			free(shared_seen);
			return vg_fail(&err);
		}
		for (size_t i = 0; i < n_gens; i++) {
			const char *owner = gens[i]->share ? NULL : machine->name;
			size_t gi = (size_t)(gens[i] - spec->generators);
			if (owner == NULL && shared_seen[gi])
				continue;
			if (owner == NULL)
				shared_seen[gi] = true;
			items[n].machine = owner;
			items[n].g = gens[i];
			n++;
		}
		free(gens);
	}
	/* Imported shared generators no machine uses yet are kept for the
	 * admins: theirs, not any machine's. */
	for (size_t i = 0; ctx->machines.n == 0 && i < spec->n_generators; i++)
		if (vf_vars_kept_unused(spec, &spec->generators[i]))
			items[n++] = (struct vg_item){NULL, &spec->generators[i]};
	free(shared_seen);
	*out = items;
	*n_out = n;
	return 0;
}

static void progress_draw(const char *line, void *ctx)
{
	(void)ctx;
	fputs(line, stderr);
	fflush(stderr);
}

void vg_progress_begin(struct vf_progress *p, const char *label, uint64_t total, bool show)
{
	vf_progress_begin(p, label, total, false,
			  show && isatty(STDERR_FILENO) ? progress_draw : NULL, NULL);
}
