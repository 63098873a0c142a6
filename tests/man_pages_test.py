#!/usr/bin/env python3
"""The man pages (man/*.in, built into MAN_DIR): they render without a
warning, and they say what the code does. Every command of the dispatch
tables, every option of every getopt table, every state the store can
report, every environment variable a tool reads and every key the spec
parser accepts must appear in the page that documents it; each tool's
page has the sections a user looks for. The lists are read from the C
sources, so an option added without its documentation fails here."""

import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testkit import ROOT, BUILD  # noqa: E402

MAN_DIR = os.path.abspath(os.environ.get("MAN_DIR", os.path.join(BUILD, "man")))
PAGES = {"varseal": "varseal.1", "vargen": "vargen.1", "varinject": "varinject.1",
         "spec": "vars.yaml.5"}
SOURCES = {"varseal": "seal", "vargen": "gen", "varinject": "inject"}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def page_path(key):
    return os.path.join(MAN_DIR, PAGES[key])


def plain(roff):
    """The roff source as words a reader sees: escapes undone, fonts dropped."""
    text = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\~|\\\(aq", lambda m: {
        "\\&": "", "\\~": " ", "\\(aq": "'"}.get(m.group(0), ""), roff)
    return text.replace("\\-", "-").replace("\\e", "\\")


def section(roff, name):
    """The text of .SH name up to the next .SH."""
    m = re.search(r'^\.SH "?%s"?\n(.*?)(?=^\.SH |\Z)' % re.escape(name), roff, re.S | re.M)
    return m.group(1) if m else ""


def has_option(text, opt):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), text) is not None


def c_files(folder):
    d = os.path.join(ROOT, folder)
    return [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith((".c", ".h"))]


def getopt_options(folder):
    """Every option of the getopt_long tables in folder: long names, and the
    short letter when the table gives one."""
    opts = set()
    entry = re.compile(r'\{\s*"([a-z][a-z0-9-]*)"\s*,\s*(?:no|required|optional)_argument\s*,'
                       r"\s*NULL\s*,\s*('(.)'|[A-Z_0-9]+)\s*\}")
    for path in c_files(folder):
        for m in entry.finditer(read(path)):
            opts.add("--" + m.group(1))
            if m.group(3):
                opts.add("-" + m.group(3))
    return opts


def dispatch_commands(folder):
    """The commands of a tool's dispatch table: {"name", cmd_name, "summary"}."""
    text = read(os.path.join(ROOT, folder, "main.c"))
    return re.findall(r'\{\s*"([a-z]+)"\s*,\s*cmd_\w+\s*,', text)


def getenv_names(folder):
    names = set()
    for path in c_files(folder):
        names.update(re.findall(r'getenv\("([A-Z_]+)"\)', read(path)))
    return names


def c_string_array(path, name):
    """The strings of `... name[] = {"a", "b"};` in a C file."""
    m = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\};" % re.escape(name), read(path), re.S)
    if not m:
        raise AssertionError("%s: no array %s (has the parser changed?)" % (path, name))
    return re.findall(r'"([^"]+)"', m.group(1))


class ManPages(unittest.TestCase):
    def setUp(self):
        missing = [p for p in PAGES.values() if not os.path.isfile(os.path.join(MAN_DIR, p))]
        self.assertEqual(missing, [], "man pages not built in %s" % MAN_DIR)

    def test_render_without_warnings(self):
        """groff -ww (every warning) and man --warnings print nothing."""
        groff = shutil.which("groff")
        man = shutil.which("man")
        if not groff and not man:
            self.skipTest("neither groff nor man is installed")
        env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
        for key in PAGES:
            path = page_path(key)
            if groff:
                p = subprocess.run([groff, "-ww", "-man", "-z", path], env=env,
                                   capture_output=True, timeout=60)
                self.assertEqual((p.returncode, p.stderr.decode()), (0, ""), path)
            if man:
                p = subprocess.run([man, "--warnings", "-l", path], env=env,
                                   capture_output=True, timeout=60)
                self.assertEqual((p.returncode, p.stderr.decode()), (0, ""), path)
                self.assertIn("NAME", p.stdout.decode(errors="replace"), path)

    def test_version_filled_in(self):
        """The build filled in the project's version and the date."""
        version = re.search(r"project\(vars-tools VERSION ([0-9.]+)",
                            read(os.path.join(ROOT, "CMakeLists.txt"))).group(1)
        for key in PAGES:
            roff = read(page_path(key))
            self.assertNotRegex(roff, r"@[A-Z_]+@", page_path(key))
            th = re.search(r"^\.TH .*$", roff, re.M).group(0)
            self.assertIn("vars-tools %s" % version, th)
            self.assertRegex(th, r'"\d{4}-\d\d-\d\d"')

    def test_sections(self):
        """What a user looks for is where man(7) puts it."""
        for key in ("varseal", "vargen", "varinject"):
            roff = read(page_path(key))
            for name in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "ENVIRONMENT",
                         "FILES", "EXAMPLES", "SEE ALSO"):
                self.assertTrue(section(roff, name).strip(), "%s: no %s" % (key, name))
            exits = section(roff, "EXIT STATUS")
            # The statuses of enum vf_exit (format/base/error.h); varinject
            # has no check or plan (4), and passes on the hypervisor's.
            for code in ("0", "1", "2", "3") + (("4",) if key != "varinject" else ()):
                self.assertRegex(exits, r"(?m)^\.B %s$" % code, "%s: exit %s" % (key, code))
        spec = read(page_path("spec"))
        for name in ("NAME", "DESCRIPTION", "EXAMPLES", "SEE ALSO"):
            self.assertTrue(section(spec, name).strip(), "vars.yaml.5: no %s" % name)

    def test_every_command_in_synopsis(self):
        for tool in ("varseal", "vargen"):
            synopsis = plain(section(read(page_path(tool)), "SYNOPSIS"))
            commands = dispatch_commands(SOURCES[tool])
            self.assertTrue(commands, tool)
            for c in commands:
                self.assertRegex(synopsis, r"(?m)^\.B %s\b" % c, "%s %s" % (tool, c))
        self.assertIn(".B install", section(read(page_path("varinject")), "SYNOPSIS"))
        self.assertIn(".B machine keygen", section(read(page_path("varseal")), "SYNOPSIS"))
        self.assertIn(".B machine key\n", section(read(page_path("varseal")), "SYNOPSIS"))

    def test_every_option_documented(self):
        """Each option of each getopt table, in its tool's page."""
        for tool, folder in SOURCES.items():
            text = plain(read(page_path(tool)))
            options = getopt_options(folder) | {"--help", "-h", "--version"}
            self.assertGreater(len(options), 5, folder)
            missing = sorted(o for o in options if not has_option(text, o))
            self.assertEqual(missing, [], "%s.1 does not document these options" % tool)

    def test_every_state_documented(self):
        """Each state vargen list/check can print has its entry in STATES."""
        vars_c = read(os.path.join(ROOT, "format", "vars", "vars.c"))
        states = re.findall(r'case VF_STATE_\w+: return "([a-z-]+)";', vars_c)
        self.assertGreaterEqual(len(states), 10)
        entries = plain(section(read(page_path("vargen")), "STATES"))
        for state in states:
            self.assertIsNotNone(re.search(r"(?m)^\.TP\n\.B %s$" % re.escape(state), entries),
                                 "vargen.1 STATES has no entry for %s" % state)
        for action in ("make", "replace", "reseal", "left", "accept", "remove"):
            self.assertIsNotNone(re.search(r"(?m)^\.BI? %s\b" % action,
                                           section(read(page_path("vargen")), "PLANS")),
                                 "vargen.1 PLANS does not name the action %s" % action)

    def test_environment_documented(self):
        """Each variable a tool (or the library under it) reads."""
        shared = getenv_names("format/base") | getenv_names("format/age") | \
            getenv_names("format/vars")
        for tool, folder in SOURCES.items():
            env = section(read(page_path(tool)), "ENVIRONMENT")
            for name in sorted(getenv_names(folder) | shared):
                self.assertIn(name, env, "%s.1 ENVIRONMENT: %s" % (tool, name))

    def test_spec_keys_documented(self):
        """Each key, kind, encoding and prompt type the spec parser accepts."""
        spec_c = os.path.join(ROOT, "format", "vars", "spec.c")
        words = set()
        for array in ("top_keys", "machine_keys", "generator_keys", "file_keys", "prompt_keys",
                      "file_kinds", "pair_kind_names", "spec_encodings", "spec_prompt_types"):
            words.update(c_string_array(spec_c, array))
        text = plain(read(page_path("spec")))
        missing = sorted(w for w in words if not re.search(
            r"(?m)^\.(B|BR|TP\n\.B) \"?(kind: )?%s\b" % re.escape(w), text))
        self.assertEqual(missing, [], "vars.yaml.5 does not describe these")


if __name__ == "__main__":
    unittest.main()
