/* Options given before a tool's verb ("vargen -f SPEC check"). A tool's
 * global options are options its verbs take anyway: main() finds the
 * verb behind them and hands them to it as if they came after it, so the
 * verb's own getopt_long reads them, in one place, with one meaning. */
#ifndef VF_ARGS_H
#define VF_ARGS_H

#include <getopt.h>

#include "base/error.h"

/* Reads argv[1], argv[2]... while they are options of opts (a getopt_long
 * table, {0}-terminated; an option's short form is its val when that is a
 * letter), each with its argument when it takes one, in the forms
 * getopt_long reads: "-f SPEC", "-fSPEC", "--file SPEC", "--file=SPEC" and
 * an unambiguous prefix ("--fi SPEC"); an optional argument only glued on.
 * "--" ends them. *verb is the index of the first other word (argc when
 * there is none). An option not in opts, an ambiguous prefix, a missing
 * argument or one given to an option that takes none is VF_E_ARG naming
 * it ("unknown option '-x'"), with *verb the index of that word. */
enum vf_code vf_args_leading(int argc, char *const *argv, const struct option *opts, int *verb,
			     struct vf_error *err);

/* The argv the verb at argv[verb] is run with: argv[verb], the keep words
 * after it (a sub-verb: "machine key"), the leading options
 * argv[1..verb-1] (less the "--" that ended them), then the rest. A new
 * array (free it; the words are argv's), NULL-terminated, of *n words;
 * NULL when out of memory. */
char **vf_args_hoist(int argc, char **argv, int verb, int keep, int *n);

#endif
