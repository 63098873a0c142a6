#include "base/args.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The option named by the long word's name (len bytes): an exact match,
 * else the only option it is a prefix of. NULL with *ambiguous set when
 * several are. */
static const struct option *find_long(const struct option *opts, const char *name, size_t len,
				      bool *ambiguous)
{
	const struct option *found = NULL;
	*ambiguous = false;
	for (const struct option *o = opts; o->name; o++) {
		if (strncmp(o->name, name, len))
			continue;
		if (strlen(o->name) == len)
			return o;
		if (found)
			*ambiguous = true;
		found = o;
	}
	return *ambiguous ? NULL : found;
}

static const struct option *find_short(const struct option *opts, char c)
{
	for (const struct option *o = opts; o->name; o++)
		if (!o->flag && o->val == (unsigned char)c && c != '-' && c != ':')
			return o;
	return NULL;
}

/* "--name[=value]" at argv[*i]; *i moves past its argument. */
static enum vf_code long_option(int argc, char *const *argv, const struct option *opts, int *i,
				struct vf_error *err)
{
	const char *word = argv[*i] + 2;
	const char *eq = strchr(word, '=');
	size_t len = eq ? (size_t)(eq - word) : strlen(word);
	bool ambiguous;
	const struct option *o = find_long(opts, word, len, &ambiguous);
	if (ambiguous)
		return vf_fail(err, VF_E_ARG, "ambiguous option '--%.*s'", (int)len, word);
	if (!o)
		return vf_fail(err, VF_E_ARG, "unknown option '--%.*s'", (int)len, word);
	if (eq && o->has_arg == no_argument)
		return vf_fail(err, VF_E_ARG, "option '--%s' takes no argument", o->name);
	if (!eq && o->has_arg == required_argument) {
		if (*i + 1 >= argc)
			return vf_fail(err, VF_E_ARG, "option '--%s' needs an argument", o->name);
		++*i;
	}
	return VF_OK;
}

/* "-abc", "-fSPEC" or "-f SPEC" at argv[*i]. */
static enum vf_code short_options(int argc, char *const *argv, const struct option *opts,
				  int *i, struct vf_error *err)
{
	for (const char *p = argv[*i] + 1; *p; p++) {
		const struct option *o = find_short(opts, *p);
		if (!o)
			return vf_fail(err, VF_E_ARG, "unknown option '-%c'", *p);
		if (o->has_arg == no_argument)
			continue;
		/* The rest of the word is the argument, else the next word. */
		if (!p[1] && o->has_arg == required_argument) {
			if (*i + 1 >= argc)
				return vf_fail(err, VF_E_ARG, "option '-%c' needs an argument", *p);
			++*i;
		}
		break;
	}
	return VF_OK;
}

enum vf_code vf_args_leading(int argc, char *const *argv, const struct option *opts, int *verb,
			     struct vf_error *err)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *w = argv[i];
		if (w[0] != '-' || !w[1])
			break;
		if (!strcmp(w, "--")) {
			i++;
			break;
		}
		int at = i;
		enum vf_code rc = w[1] == '-' ? long_option(argc, argv, opts, &i, err)
					      : short_options(argc, argv, opts, &i, err);
		if (rc != VF_OK) {
			*verb = at;
			return rc;
		}
	}
	*verb = i;
	return VF_OK;
}

char **vf_args_hoist(int argc, char **argv, int verb, int keep, int *n)
{
	if (keep > argc - verb - 1)
		keep = argc - verb - 1;
	int options = verb - 1;
	if (options > 0 && !strcmp(argv[verb - 1], "--"))
		options--;
	char **out = calloc((size_t)argc + 1, sizeof(*out));
	if (!out)
		return NULL;
	int k = 0;
	for (int i = verb; i <= verb + keep; i++)
		out[k++] = argv[i];
	for (int i = 1; i <= options; i++)
		out[k++] = argv[i];
	for (int i = verb + keep + 1; i < argc; i++)
		out[k++] = argv[i];
	out[k] = NULL;
	*n = k;
	return out;
}
