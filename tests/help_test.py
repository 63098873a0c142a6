#!/usr/bin/env python3
"""Issue 11: the help a new user meets, and the options it describes.

  H1. `TOOL --help`, `TOOL -h` and `TOOL help` print the same help on
      standard output, exit 0: the usage, every command of the tool's
      command table, and the tool's own options, each described.
  H2. Every verb (and varinject's launch form): `TOOL VERB --help`, `-h`
      and `TOOL help VERB` print the same help, exit 0, with an Options
      section in which every line is one option and its one-line
      description, no line wider than 100 columns. `TOOL help NOSUCH` is
      a usage error (2).
  H3. The help is what the parser does: every long option of the tool's
      getopt tables (read from its sources) is described in the help of a
      verb, with the short form the table gives it; every option a verb's
      help names is accepted by that verb; every other option of the tool
      is refused by it (exit 2). A new option without a help line, or a
      help line for an option that is not there, fails here.
  H4. Bare `varinject` prints its usage and exits 2 (it used to say
      `no hypervisor`); bare varseal and vargen too.
  H5. `varinject --from-credentials-dir DIR -- HYPERVISOR` (a space, not
      `=`) takes DIR, as `--from-credentials-dir=DIR` does, and options
      after DIR are still read; without a later `--`, the word is the
      hypervisor as before, and when it is none the error says
      `--from-credentials-dir=DIR` was meant.

Run as `python3 tests/help_test.py` with VARSEAL, VARGEN and VARINJECT set
(defaults under build/). Standard library only.
"""
import os
import re
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import ROOT, VARGEN, VARINJECT, VARSEAL, describe, run, write  # noqa: E402

TIMEOUT = 60
MAX_WIDTH = 100  # columns: a description that needs more is too long for one line

# Where each tool's sources are, and its verbs' names: the command table
# of main.c (varseal, vargen); varinject has its launch form ("", no
# verb) and install.
TOOLS = {
    "varseal": (VARSEAL, "seal"),
    "vargen": (VARGEN, "gen"),
    "varinject": (VARINJECT, "inject"),
}
COMMAND_RE = re.compile(r'^\s*\{"([a-z-]+)", cmd_\w+,', re.M)
# {"name", required_argument, NULL, 'c'} or {..., NULL, OPT_NAME}
GETOPT_RE = re.compile(r'\{"([a-z0-9-]+)",\s*(no|required|optional)_argument,\s*NULL,\s*'
                       r"(?:'(.)'|\w+)\s*\}")
# One option line of a help: "  -o, --output FILE   what it does".
ROW_RE = re.compile(r"^  (?:-([A-Za-z0-9]), )?--([a-z0-9][a-z0-9-]*)"
                    r"(\[=[A-Z][A-Z0-9_]*\]| \S+)?(?: {2,}(\S.*))?$")
# varseal machine has two sub-verbs sharing one help.
SUBVERBS = {("varseal", "machine"): ["keygen", "key"]}

SPEC = """\
admins:
  alice: @ADMIN@
machines:
  m1:
    generators: [g1]
generators:
  g1:
    files:
      f1: {kind: random}
"""


def source_options(subdir):
    """{long option: (argument kind, short letter or None)} of every getopt
    table in the tool's sources (.c and .h: varseal's VS_VARS_OPTIONS)."""
    out = {}
    folder = os.path.join(ROOT, subdir)
    for name in sorted(os.listdir(folder)):
        if not name.endswith((".c", ".h")):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            text = f.read()
        for m in GETOPT_RE.finditer(text):
            long_name, kind, short = m.groups()
            prev = out.setdefault(long_name, (kind, short))
            assert prev == (kind, short), "%s: --%s is %r here, %r elsewhere" % (
                name, long_name, (kind, short), prev)
    return out


def verbs_of(tool):
    """The verbs of a tool: its command table, or varinject's two forms."""
    if tool == "varinject":
        return ["", "install"]
    with open(os.path.join(ROOT, TOOLS[tool][1], "main.c"), encoding="utf-8") as f:
        return COMMAND_RE.findall(f.read())


def section(text, title):
    """The lines of a help's section (after "Title:", to a blank line)."""
    lines = text.splitlines()
    if title + ":" not in lines:
        return None
    start = lines.index(title + ":") + 1
    out = []
    for line in lines[start:]:
        if not line.strip():
            break
        out.append(line)
    return out


def sample_argument(metavar, recipient):
    """A value the option's own checks take, from its help's metavar (a
    FILE is x, which holds a recipient line: -R reads it at once)."""
    metavar = metavar.strip(" []=")
    if "|" in metavar:
        return metavar.split("|")[0]
    if "=@" in metavar:
        return "NAME=@FILE"
    return {"N": "10", "SECONDS": "5", "M": "m1", "G": "g1",
            "RECIPIENT": recipient}.get(metavar, "x")


class HelpCase(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        testkit.skip_unless_built(VARSEAL, VARGEN, VARINJECT)

    def setUp(self):
        self.dir = testkit.temp_dir(self, "help_test.")

    def tool(self, tool, *args, **kw):
        kw.setdefault("cwd", self.dir)
        return run([TOOLS[tool][0]] + list(args), timeout=TIMEOUT, **kw)

    def verb_args(self, tool, verb):
        """The words naming a verb on the command line (none: launch form)."""
        return [verb] if verb else []

    def help_of(self, tool, verb):
        """`TOOL VERB --help`: checked, its text."""
        p = self.tool(tool, *self.verb_args(tool, verb), "--help")
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(p.stderr, b"", describe(p))
        text = p.stdout.decode()
        self.assertTrue(text.startswith("Usage: %s" % tool), describe(p))
        for line in text.splitlines():
            self.assertLessEqual(len(line), MAX_WIDTH, "%s %s: %r" % (tool, verb, line))
        return text

    def options_in(self, text, where):
        """{long option: (short, metavar, description)} of the Options
        section; every line of it must be one option with a description."""
        rows = section(text, "Options")
        self.assertIsNotNone(rows, "%s: no Options section in\n%s" % (where, text))
        out = {}
        for line in rows:
            m = ROW_RE.match(line)
            self.assertIsNotNone(m, "%s: not one option and its description on one line: %r"
                                 % (where, line))
            short, long_name, metavar, description = m.groups()
            self.assertTrue(description and len(description.split()) >= 2,
                            "%s: --%s has no description: %r" % (where, long_name, line))
            self.assertNotIn(long_name, out, "%s: --%s described twice" % (where, long_name))
            out[long_name] = (short, metavar or "", description)
        return out


class ToolHelp(HelpCase):
    """H1: the tools' own help."""

    def test_tool_help(self):
        for tool in TOOLS:
            with self.subTest(tool=tool):
                texts = set()
                for args in (["--help"], ["-h"], ["help"]):
                    p = self.tool(tool, *args)
                    self.assertEqual(p.returncode, 0, describe(p))
                    self.assertEqual(p.stderr, b"", describe(p))
                    texts.add(p.stdout.decode())
                self.assertEqual(len(texts), 1, "--help, -h and help differ: %r" % texts)
                text = texts.pop()
                for line in text.splitlines():
                    self.assertLessEqual(len(line), MAX_WIDTH, "%s: %r" % (tool, line))
                options = self.options_in(text, tool)
                for name in ("help", "version"):
                    self.assertIn(name, options, text)
                if tool != "varinject":
                    commands = section(text, "Commands")
                    self.assertIsNotNone(commands, text)
                    named = [line.split()[0] for line in commands]
                    self.assertEqual(named, verbs_of(tool), text)
                    for line in commands:
                        self.assertGreaterEqual(len(line.split()), 3, line)
                self.assertIn("%s help " % tool, text)


class VerbHelp(HelpCase):
    """H2: every verb's help, however it is asked for."""

    def test_every_verb(self):
        for tool in TOOLS:
            for verb in verbs_of(tool):
                with self.subTest(tool=tool, verb=verb):
                    text = self.help_of(tool, verb)
                    self.options_in(text, "%s %s" % (tool, verb))
                    self.assertIn("help", self.options_in(text, verb))
                    p = self.tool(tool, *self.verb_args(tool, verb), "-h")
                    self.assertEqual((p.returncode, p.stdout.decode()), (0, text), describe(p))
                    if not verb:
                        # The launch form has no verb: `help` alone is its help.
                        continue
                    p = self.tool(tool, "help", verb)
                    self.assertEqual(p.returncode, 0, describe(p))
                    self.assertEqual(p.stdout.decode(), text, describe(p))
                    for sub in SUBVERBS.get((tool, verb), []):
                        for args in ([verb, sub, "--help"], ["help", verb, sub]):
                            p = self.tool(tool, *args)
                            self.assertEqual((p.returncode, p.stdout.decode()), (0, text),
                                             describe(p))

    def test_help_for_no_such_verb(self):
        for tool in TOOLS:
            with self.subTest(tool=tool):
                p = self.tool(tool, "help", "nosuch")
                self.assertEqual(p.returncode, 2, describe(p))
                self.assertEqual(p.stdout, b"", describe(p))
                self.assertIn("nosuch", p.stderr.decode())


class HelpMatchesParser(HelpCase):
    """H3: the help and the getopt tables say the same."""

    def setUp(self):
        super().setUp()
        # A store, for the verbs that load the spec before they refuse.
        store = testkit.TempStore(self.dir, timeout=TIMEOUT)
        store.make_admin()
        store.write_spec(SPEC)
        store.tool(VARSEAL, "machine", "keygen", "m1")
        self.recipient = store.admin_pub
        write(os.path.join(self.dir, "x"), self.recipient + "\n")

    def described(self, tool):
        """{verb: {long option: (short, metavar, description)}}"""
        return {verb: self.options_in(self.help_of(tool, verb), "%s %s" % (tool, verb))
                for verb in verbs_of(tool)}

    def probe(self, tool, verb, option, metavar, kind, then_help=True):
        args = self.verb_args(tool, verb) + SUBVERBS.get((tool, verb), [])[:1]
        args.append("--" + option)
        if kind == "required":
            args.append(sample_argument(metavar, self.recipient))
        elif kind == "optional" and metavar:
            args[-1] += "=" + sample_argument(metavar, self.recipient)
        if then_help:
            args.append("--help")
        return self.tool(tool, *args)

    def test_every_source_option_is_described(self):
        for tool, (_, subdir) in TOOLS.items():
            with self.subTest(tool=tool):
                source = source_options(subdir)
                described = self.described(tool)
                everywhere = set()
                for verb, options in described.items():
                    everywhere |= set(options)
                    for name, (short, _, _) in options.items():
                        if name == "version":
                            continue  # main.c's, before any verb
                        self.assertIn(name, source, "%s %s describes --%s, which no getopt "
                                      "table has" % (tool, verb, name))
                        self.assertEqual(short, source[name][1],
                                         "%s %s: the short form of --%s" % (tool, verb, name))
                missing = set(source) - everywhere - {"version"}
                self.assertEqual(missing, set(), "%s: options no help describes" % tool)

    def test_described_options_are_accepted(self):
        for tool, (_, subdir) in TOOLS.items():
            with self.subTest(tool=tool):
                self.described_options_are_accepted(tool, source_options(subdir))

    def described_options_are_accepted(self, tool, source):
        for verb, options in self.described(tool).items():
            for name, (_, metavar, _) in options.items():
                if name in ("help", "version"):
                    continue
                with self.subTest(tool=tool, verb=verb, option=name):
                    p = self.probe(tool, verb, name, metavar, source[name][0])
                    self.assertEqual(p.returncode, 0, describe(p))
                    self.assertTrue(p.stdout.startswith(b"Usage: "), describe(p))

    def test_other_options_are_refused(self):
        for tool, (_, subdir) in TOOLS.items():
            with self.subTest(tool=tool):
                self.other_options_are_refused(tool, source_options(subdir))

    def other_options_are_refused(self, tool, source):
        metavars = {}
        described = self.described(tool)
        for options in described.values():
            for name, (_, metavar, _) in options.items():
                metavars[name] = metavar
        for verb, options in described.items():
            for name in sorted(set(source) - set(options) - {"version"}):
                if any(other.startswith(name) for other in options):
                    continue  # getopt_long reads it as that option, abbreviated
                with self.subTest(tool=tool, verb=verb, option=name):
                    kind = source[name][0]
                    p = self.probe(tool, verb, name, metavars.get(name, ""), kind)
                    if p.returncode == 0 and tool == "vargen":
                        # vargen's shared parser takes --all, --plan,
                        # --yes, --machine and --generator for every
                        # verb; those that have no use for one refuse it
                        # after the spec is read (none has operands).
                        p = self.probe(tool, verb, name, metavars.get(name, ""), kind,
                                       then_help=False)
                    self.assertEqual(p.returncode, 2, describe(p))
                    self.assertIn("usage", p.stderr.decode().lower(), describe(p))


class BareVarinject(HelpCase):
    """H4: no arguments at all is a usage error."""

    def test_bare_tools_print_usage(self):
        for tool in TOOLS:
            with self.subTest(tool=tool):
                p = self.tool(tool)
                self.assertEqual(p.returncode, 2, describe(p))
                self.assertEqual(p.stdout, b"", describe(p))
                err = p.stderr.decode()
                self.assertTrue(err.startswith("Usage: %s " % tool), describe(p))
                self.assertNotIn("no hypervisor", err)
                self.assertNotIn("error", err)


CRED_RE = re.compile(r"io\.systemd\.credential:([^=]+)=<secret: (\d+) bytes>")


class FromCredentialsDir(HelpCase):
    """H5: --from-credentials-dir with its directory after a space."""

    def setUp(self):
        super().setUp()
        self.creds = os.path.join(self.dir, "creds")
        os.mkdir(self.creds, 0o700)
        write(os.path.join(self.creds, "host-api-key"), "abc")
        write(os.path.join(self.creds, "host-db-password"), "secret!")
        self.rundir = testkit.temp_dir(self, "help_test.", parent="/dev/shm")
        self.qemu = ["qemu-system-x86_64", "-M", "q35"]

    def dry_run(self, options, hv, **kw):
        return self.tool("varinject", *options, "--dry-run", "--credentials-dir",
                         self.rundir, *hv, **kw)

    def credentials(self, p):
        self.assertEqual(p.returncode, 0, describe(p))
        return sorted(CRED_RE.findall(p.stdout.decode()))

    def test_space_and_equals_take_the_same_directory(self):
        want = [("HOST-API-KEY", "3"), ("HOST-DB-PASSWORD", "7")]
        for where in ("creds", self.creds):
            with self.subTest(dir=where):
                joined = self.dry_run(["--from-credentials-dir=" + where], ["--"] + self.qemu)
                self.assertEqual(self.credentials(joined), want)
                spaced = self.dry_run(["--from-credentials-dir", where], ["--"] + self.qemu)
                self.assertEqual(self.credentials(spaced), want)

    def test_options_after_the_directory_are_read(self):
        p = self.dry_run(["--from-credentials-dir", "creds", "--name-style", "verbatim",
                          "--credential", "host-api-key"], ["--"] + self.qemu)
        self.assertEqual(self.credentials(p), [("host-api-key", "3")])

    def test_without_a_directory(self):
        env = dict(os.environ, CREDENTIALS_DIRECTORY=self.creds)
        want = [("HOST-API-KEY", "3"), ("HOST-DB-PASSWORD", "7")]
        # "--" right after: $CREDENTIALS_DIRECTORY, as before.
        p = self.dry_run(["--from-credentials-dir"], ["--"] + self.qemu, env=env)
        self.assertEqual(self.credentials(p), want)
        # No "--" at all: the word after it is the hypervisor, as before.
        p = self.tool("varinject", "--dry-run", "--credentials-dir", self.rundir,
                      "--from-credentials-dir", *self.qemu, env=env)
        self.assertEqual(self.credentials(p), want)

    def test_a_directory_taken_for_the_hypervisor_says_so(self):
        p = self.tool("varinject", "--dry-run", "--credentials-dir", self.rundir,
                      "--from-credentials-dir", "creds", *self.qemu)
        self.assertEqual(p.returncode, 1, describe(p))
        err = p.stderr.decode()
        self.assertEqual(len(err.splitlines()), 1, describe(p))
        self.assertIn("--from-credentials-dir=creds", err)


if __name__ == "__main__":
    unittest.main()
