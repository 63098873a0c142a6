#!/usr/bin/env python3
"""Shell completion (completion/): bash, by sourcing the files in a clean
bash and calling the completion functions with COMP_WORDS as readline
would split the line, then reading COMPREPLY; zsh, by typing the line and
a Tab into an interactive zsh on a pseudo-terminal with compadd wrapped to
record what it is given. Commands, options (read from the C getopt
tables), machine, generator and file names read from a spec in a
temporary directory (./vars.yaml, or -f FILE), and a hostile spec whose
names are shell code, which must be offered quoted and never run."""

import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testkit import ROOT  # noqa: E402

COMPLETION = os.path.join(ROOT, "completion")
BUILTIN_KINDS = os.path.join(ROOT, "examples", "builtin-kinds.yaml")  # web, worker
SEED = os.path.join(ROOT, "examples", "vars.yaml")  # test-vm
TIMEOUT = 60

# Splits the line as readline does for bash (words at blanks; '=' after an
# option is a word of its own), calls the completion function, prints
# COMPREPLY one per line.
BASH_DRIVER = r'''
set -u
. "$1/$2"
line=$3
read -ra w <<<"$line"
[[ $line == *" " || -z $line ]] && w+=("")
words=()
for x in "${w[@]}"; do
	if [[ $x == -*=* ]]; then
		words+=("${x%%=*}" "=")
		[[ -n ${x#*=} ]] && words+=("${x#*=}")
	else
		words+=("$x")
	fi
done
COMP_WORDS=("${words[@]}")
COMP_CWORD=$((${#words[@]} - 1))
COMP_LINE=$line
COMP_POINT=${#line}
"_${words[0]}" "${words[0]}" "${words[COMP_CWORD]}" "${words[COMP_CWORD - 1]:-}"
printf '%s\n' "${COMPREPLY[@]}"
'''


def dispatch_commands(folder):
    """The commands of a tool's dispatch table: {"name", cmd_name, "summary"}."""
    with open(os.path.join(ROOT, folder, "main.c")) as f:
        return re.findall(r'\{\s*"([a-z-]+)"\s*,\s*cmd_\w+\s*,', f.read())


def getopt_options(folder):
    """The long options of every getopt_long table in folder."""
    opts = set()
    d = os.path.join(ROOT, folder)
    for name in sorted(os.listdir(d)):
        if name.endswith((".c", ".h")):
            with open(os.path.join(d, name)) as f:
                opts.update("--" + o for o in re.findall(
                    r'\{\s*"([a-z][a-z0-9-]*)"\s*,\s*(?:no|required|optional)_argument', f.read()))
    return opts


def copy(src, dst):
    with open(src, "rb") as f, open(dst, "wb") as g:
        g.write(f.read())


class Workspace:
    """A directory with ./vars.yaml (builtin-kinds: machines web and
    worker; generators app, mesh and db-url) and other/spec.yaml (the
    seed's: test-vm, test-vm-secrets)."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="completion-")
        self.dir = self.tmp.name
        copy(BUILTIN_KINDS, os.path.join(self.dir, "vars.yaml"))
        os.mkdir(os.path.join(self.dir, "other"))
        copy(SEED, os.path.join(self.dir, "other", "spec.yaml"))


class Bash(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ws = Workspace()

    @classmethod
    def tearDownClass(cls):
        cls.ws.tmp.cleanup()

    def complete(self, line, cwd=None):
        tool = line.split(" ")[0]
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c", BASH_DRIVER, "driver",
                            COMPLETION, tool, line], cwd=cwd or self.ws.dir,
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual((p.returncode, p.stderr.decode()), (0, ""), line)
        return [w for w in p.stdout.decode().split("\n") if w]

    def assertOffers(self, line, expected, exact=True):
        got = self.complete(line)
        if exact:
            self.assertEqual(sorted(got), sorted(expected), "[%s]" % line)
        else:
            missing = sorted(set(expected) - set(got))
            self.assertEqual(missing, [], "[%s] offered %s" % (line, got))

    def test_commands(self):
        self.assertOffers("varseal ", dispatch_commands("seal") + ["--help", "--version", "help"])
        self.assertOffers("vargen ", dispatch_commands("gen") + ["--help", "--version", "help"])
        self.assertOffers("vargen ge", ["generate"])
        self.assertOffers("varseal machine ", ["keygen", "key", "--help"])
        self.assertOffers("varinject ", ["install"])

    def test_options_from_the_getopt_tables(self):
        """Every long option a command's own table has is offered after --."""
        cases = {
            "varseal keygen --": "seal/keygen.c", "varseal pubkey --": "seal/pubkey.c",
            "varseal encrypt --": "seal/encrypt.c", "varseal decrypt --": "seal/decrypt.c",
            "varseal rekey --": "seal/rekey.c", "varseal inspect --": "seal/inspect.c",
            "vargen generate --": "gen/generate.c",
            "varinject install --": "inject/install.c",
            "vargen import --": "gen/import.c", "varseal import-sops --": "seal/import_sops.c",
        }
        for line, source in cases.items():
            table = re.findall(r'\{"([a-z][a-z0-9-]*)", (?:no|required|optional)_argument',
                               open(os.path.join(ROOT, source)).read())
            self.assertTrue(table, source)
            self.assertOffers(line, ["--" + o for o in table if o != "rekey"], exact=False)
        self.assertOffers("varinject --", sorted(o for o in getopt_options("inject")
                                                 if o.startswith("--")), exact=False)
        self.assertOffers("varseal machine keygen --f", ["--file", "--force"])
        self.assertOffers("varseal machine key --f", ["--file", "--force"])
        self.assertOffers("varseal get --o", ["--output"])
        self.assertOffers("vargen list --", ["--file", "--store", "--machine", "--generator",
                                             "--json", "--help"])
        self.assertOffers("vargen prune --", ["--file", "--store", "--plan", "--yes", "--help"])
        self.assertOffers("vargen generate --re", ["--regenerate"])

    def test_names_from_the_spec(self):
        self.assertOffers("vargen list --machine ", ["web", "worker"])
        self.assertOffers("vargen check -m w", ["web", "worker"])
        self.assertOffers("vargen generate --generator ", ["app", "mesh", "db-url"])
        self.assertOffers("varinject --machine ", ["web", "worker"])
        self.assertOffers("varseal rekey --machine wo", ["worker"])
        self.assertOffers("varseal machine keygen ", ["web", "worker"])
        self.assertOffers("varseal get ", ["web", "worker", "shared"])
        self.assertOffers("varseal set web ", ["app/", "mesh/", "db-url/"])
        self.assertOffers("varseal get web app/", ["app/api-key", "app/session-secret",
                                                   "app/db-password", "app/instance-id"])
        # a key-pair kind's files are the kind's
        self.assertOffers("varseal get web mesh/", ["mesh/private", "mesh/public"])

    def test_spec_named_with_f(self):
        self.assertOffers("vargen check -f other/spec.yaml --machine ", ["test-vm"])
        self.assertOffers("vargen check --file other/spec.yaml -g ", ["test-vm-secrets"])
        self.assertOffers("vargen list --file=other/spec.yaml --machine ", ["test-vm"])
        self.assertOffers("varseal get -f other/spec.yaml shared test-vm-secrets/",
                          ["test-vm-secrets/api-key", "test-vm-secrets/db-password",
                           "test-vm-secrets/jwt-secret"])
        self.assertOffers("varinject -f other/spec.yaml --machine ", ["test-vm"])
        # The store options before the command (issue 12).
        self.assertOffers("varseal -f other/spec.yaml get shared test-vm-secrets/j",
                          ["test-vm-secrets/jwt-secret"])
        self.assertOffers("varseal --file=other/spec.yaml -i x machine ", ["keygen", "key", "--help"])
        self.assertOffers("varseal -f other/spec.yaml machine keygen web ", ["test-vm"])
        self.assertOffers("vargen -f other/spec.yaml ch", ["check"])
        self.assertOffers("vargen --store . -f other/spec.yaml check -m ", ["test-vm"])
        self.assertOffers("vargen -f oth", ["other"])
        # no spec, no names (and no error)
        self.assertOffers("vargen list -f nowhere.yaml --machine ", [])

    def test_values_after_equals(self):
        """--opt=<Tab>: bash completes the word after '='."""
        self.assertOffers("vargen list --machine=", ["web", "worker"])
        self.assertOffers("vargen list --machine=wo", ["worker"])
        self.assertOffers("varinject --name-style=", ["spec", "seed", "verbatim"])
        self.assertOffers("varinject --hypervisor=c", ["cloud-hypervisor"])
        self.assertOffers("varinject --name-style ", ["spec", "seed", "verbatim"])

    def test_files_and_directories(self):
        self.assertOffers("vargen list -f oth", ["other"])
        self.assertOffers("varseal decrypt -i va", ["vars.yaml"])
        self.assertOffers("varinject install -m web ", ["other"])  # DIR: directories

    def test_hostile_names_are_not_run(self):
        """Names are user text: compgen -W would expand $(...) in them."""
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "vars.yaml"), "w") as f:
                f.write("machines:\n  '$(touch${IFS}pwned)': {}\n  \"`touch${IFS}pwned2`\": {}\n"
                        "  '*': {}\n  a;b: {}\n  ok: {}\n")
            got = self.complete("vargen list --machine ", cwd=d)
            self.assertEqual(os.listdir(d), ["vars.yaml"])
            self.assertEqual(sorted(got), sorted([r"\$\(touch\$\{IFS\}pwned\)",
                                                  r"\`touch\$\{IFS\}pwned2\`",
                                                  r"\*", r"a\;b", "ok"]))

    def test_wrappers_source_the_shared_file(self):
        """completion/vargen and varinject are loaded by name by
        bash-completion; each must define its own command's function."""
        for tool in ("vargen", "varinject"):
            p = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                                '. "$1" && complete -p %s' % tool, "x",
                                os.path.join(COMPLETION, tool)],
                               capture_output=True, timeout=TIMEOUT, cwd="/")
            self.assertEqual(p.stdout.decode().strip(), "complete -F _%s %s" % (tool, tool))


class Zsh(unittest.TestCase):
    """The zsh functions, through an interactive zsh on a pty."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which("zsh"):
            raise unittest.SkipTest("zsh is not installed (scripts/deps.sh installs it)")
        cls.ws = Workspace()
        cls.out = tempfile.TemporaryDirectory(prefix="zsh-capture-")
        cls.n = 0
        pid, cls.fd = os.forkpty()
        if pid == 0:
            os.chdir(cls.ws.dir)
            os.execvpe("zsh", ["zsh", "-f", "-i"], dict(os.environ, TERM="dumb"))
        cls.pid = pid
        setup = [
            "PS1='%% '; RPS1=''",
            "fpath=(%s $fpath)" % COMPLETION,
            "autoload -Uz compinit && compinit -u -D",
            "LISTMAX=100000",
            "zstyle ':completion:*' list-prompt ''",
            # Every compadd that adds matches appends them to $VARS_OUT.
            "compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then"
            " builtin compadd \"$@\"; return; fi; local -a __hits;"
            " builtin compadd -A __hits \"$@\";"
            " (( $#__hits )) && print -rl -- \"${__hits[@]}\" >> $VARS_OUT;"
            " builtin compadd \"$@\"; }",
            # Says on the terminal when a completion is over (zsh empties
            # comppostfuncs after each one: set again for each line).
            "_vars_done() { print -rn -- \"TAB\"\"OVER$VARS_N\" > /dev/tty; }",
        ]
        for line in setup:
            os.write(cls.fd, (line + "\n").encode())
        cls.wait_for(b"READY", "print -r -- READ''Y")

    @classmethod
    def tearDownClass(cls):
        os.write(cls.fd, b"\x15exit\n")
        os.waitpid(cls.pid, 0)
        os.close(cls.fd)
        cls.out.cleanup()
        cls.ws.tmp.cleanup()

    @classmethod
    def wait_for(cls, token, command, newline=True):
        os.write(cls.fd, (command + ("\n" if newline else "")).encode())
        buf = b""
        deadline = time.monotonic() + TIMEOUT
        while token not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("zsh did not print %r; it said %r" % (token, buf[-400:]))
            ready, _, _ = select.select([cls.fd], [], [], left)
            if ready:
                buf += os.read(cls.fd, 65536)
        return buf

    def complete(self, line):
        Zsh.n += 1
        out = os.path.join(self.out.name, str(self.n))
        self.wait_for(b"SET%d" % self.n, "VARS_OUT=%s VARS_N=%d comppostfuncs=(_vars_done);"
                      " print -r -- S''ET$VARS_N" % (out, self.n))
        # Keys typed while completion runs could cut it short: the next
        # ones only once it has said it is over. ^U then drops the line.
        self.wait_for(b"TABOVER%d" % self.n, line + "\t", newline=False)
        self.wait_for(b"DONE%d" % self.n, "\x15print -r -- DON''E%d" % self.n)
        if not os.path.exists(out):
            return []
        with open(out) as f:
            return [w for w in f.read().split("\n") if w]

    def assertOffers(self, line, expected, exact=True):
        got = self.complete(line)
        if exact:
            self.assertEqual(sorted(set(got)), sorted(expected), "[%s]" % line)
        else:
            missing = sorted(set(expected) - set(got))
            self.assertEqual(missing, [], "[%s] offered %s" % (line, got))

    def test_syntax(self):
        for name in ("_varseal", "_vargen", "_varinject", "_vars_tools_names"):
            p = subprocess.run(["zsh", "-n", os.path.join(COMPLETION, name)],
                               capture_output=True, timeout=TIMEOUT)
            self.assertEqual((p.returncode, p.stderr.decode()), (0, ""), name)

    def test_commands_and_options(self):
        self.assertOffers("vargen ", dispatch_commands("gen") + ["help"])
        self.assertOffers("varseal ", dispatch_commands("seal") + ["help"])
        self.assertOffers("varseal machine ", ["keygen", "key"])
        self.assertOffers("vargen generate --re", ["--regenerate"])
        self.assertOffers("varseal machine keygen --fo", ["--force"])
        self.assertOffers("varinject --", sorted(o for o in getopt_options("inject")
                                                 if o.startswith("--")), exact=False)
        self.assertOffers("varinject install --al", ["--allow-persistent"])

    def test_names_from_the_spec(self):
        self.assertOffers("vargen list --machine ", ["web", "worker"])
        self.assertOffers("vargen check -f other/spec.yaml --machine ", ["test-vm"])
        self.assertOffers("vargen check --generator=", ["app", "mesh", "db-url"])
        self.assertOffers("varseal get ", ["web", "worker", "shared"])
        self.assertOffers("varseal get web ", ["app", "mesh", "db-url"])
        self.assertOffers("varseal get web mesh/", ["private", "public"])
        self.assertOffers("varinject --machine ", ["web", "worker"])
        self.assertOffers("varinject --name-style=", ["spec", "seed", "verbatim"])
        # The spec given before the command (issue 12).
        self.assertOffers("varseal -f other/spec.yaml get ", ["test-vm", "shared"])
        self.assertOffers("vargen --file=other/spec.yaml check -m ", ["test-vm"])
        self.assertOffers("varseal -f other/spec.yaml machine keygen ", ["test-vm"])


if __name__ == "__main__":
    unittest.main()
