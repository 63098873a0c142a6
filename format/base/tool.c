/* vargen's and varseal's dispatch (base/tool.h). */
#include "base/tool.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/args.h"
#include "base/error.h"
#include "base/secmem.h"

struct dispatch {
	const struct vf_tool *t;
	FILE *out, *err;
};

int vf_tool_verror(FILE *out, const char *tool, const char *fmt, va_list ap)
{
	char raw[8192], safe[8192];
	vsnprintf(raw, sizeof(raw), fmt, ap);
	vf_escape_controls(raw, safe, sizeof(safe));
	fprintf(out, "%s: error: %s\n", tool, safe);
	return VF_EXIT_ERROR;
}

__attribute__((format(printf, 2, 3))) static int tool_error(const struct dispatch *d,
							    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int status = vf_tool_verror(d->err, d->t->name, fmt, ap);
	va_end(ap);
	return status;
}

static bool is_help(const char *word)
{
	return !strcmp(word, "--help") || !strcmp(word, "-h");
}

static const struct vf_command *find_command(const struct vf_tool *t, const char *name)
{
	for (size_t i = 0; i < t->n_commands; i++)
		if (!strcmp(name, t->commands[i].name))
			return &t->commands[i];
	return NULL;
}

static int unknown_command(const struct dispatch *d, const char *name)
{
	tool_error(d, "unknown command '%s'", name);
	d->t->usage(d->err);
	return VF_EXIT_USAGE;
}

void vf_tool_global_commands(const struct vf_tool *t, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < t->n_commands; i++)
		if ((t->commands[i].flags & VF_COMMAND_GLOBAL) && len < cap)
			len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "",
						t->commands[i].name);
}

/* "TOOL help COMMAND [SUBCOMMAND]" is "TOOL COMMAND [SUBCOMMAND] --help":
 * the command prints its own help, as it knows its options. */
static int help_command(const struct dispatch *d, int argc, char **argv)
{
	static char help_flag[] = "--help";
	if (argc > d->t->help_words) {
		fprintf(d->err, "%s: usage: %s\n", d->t->name, d->t->help_usage);
		return VF_EXIT_USAGE;
	}
	char *args[4] = {argv[0]};
	int n = 1;
	if (argc > 1)
		args[n++] = argv[1];
	args[n++] = help_flag;
	const struct vf_command *c = find_command(d->t, argv[0]);
	return c ? c->run(n, args) : unknown_command(d, argv[0]);
}

/* The command c at argv[verb], run with the global options before it
 * handed over after its name (and after a sub-verb). */
static int run_command(const struct dispatch *d, const struct vf_command *c, int argc,
		       char **argv, int verb)
{
	const struct vf_tool *t = d->t;
	if (verb > 1 && !(c->flags & VF_COMMAND_GLOBAL)) {
		char list[128];
		vf_tool_global_commands(t, list, sizeof(list));
		fprintf(d->err,
			"%s: usage: the options before the command are %s (%s); give %s's options "
			"after it (%s %s --help)\n",
			t->name, t->global_commands, list, c->name, t->name, c->name);
		return VF_EXIT_USAGE;
	}
	int keep = (c->flags & VF_COMMAND_SUBVERB) && verb + 1 < argc &&
		   (argv[verb + 1][0] != '-' || is_help(argv[verb + 1]));
	int n;
	char **args = vf_args_hoist(argc, argv, verb, keep, &n);
	if (!args)
		return tool_error(d, "out of memory");
	int status = c->run(n, args);
	free(args);
	return status;
}

/* The command after the global options. */
static int run_after_options(const struct dispatch *d, int argc, char **argv)
{
	const struct vf_tool *t = d->t;
	struct vf_error err;
	int verb;
	if (vf_args_leading(argc, argv, t->global_options, &verb, &err) != VF_OK) {
		if (is_help(argv[verb])) {
			t->usage(d->out);
			return 0;
		}
		/* The word is the user's: no control byte reaches the terminal. */
		char safe[sizeof(err.msg) * 4];
		vf_escape_controls(err.msg, safe, sizeof(safe));
		fprintf(d->err, "%s: usage: before the command: %s (%s)\n", t->name, safe,
			t->usage_line);
		return VF_EXIT_USAGE;
	}
	if (verb == argc) {
		fprintf(d->err, "%s: usage: no command after the options (%s)\n", t->name,
			t->usage_line);
		return VF_EXIT_USAGE;
	}
	if (!strcmp(argv[verb], "help")) {
		if (verb + 1 < argc)
			return help_command(d, argc - verb - 1, argv + verb + 1);
		t->usage(d->out);
		return 0;
	}
	const struct vf_command *c = find_command(t, argv[verb]);
	return c ? run_command(d, c, argc, argv, verb) : unknown_command(d, argv[verb]);
}

int vf_tool_main(const struct vf_tool *t, int argc, char **argv, FILE *out, FILE *err)
{
	const struct dispatch d = {t, out, err};
	if (vf_harden_process() != 0)
		return tool_error(&d, "cannot disable core dumps or initialise libsodium");
	if (argc < 2) {
		t->usage(err);
		return VF_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "help") && argc > 2)
		return help_command(&d, argc - 2, argv + 2);
	if (is_help(argv[1]) || !strcmp(argv[1], "help")) {
		t->usage(out);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		fprintf(out, "%s %s\n", t->name, t->version);
		return 0;
	}
	return run_after_options(&d, argc, argv);
}
