#!/usr/bin/env python3
"""The built tools carry the hardening the project promises (README, "How
we write C here"): position-independent executables, RELRO with every
symbol bound at load (-z relro -z now), a stack that is not executable,
the stack protector, and, outside the sanitizer builds, FORTIFY's checked
functions. Read off the ELF files with binutils' readelf, as a packager's
hardening check would: a change to the build's flags (CMakeLists.txt
picks -pie and -fPIE by target type) that drops one fails here, where the
tools themselves would run on as before.

The binaries come from $VARSEAL, $VARGEN and $VARINJECT; $FORTIFY_EXPECTED
is 0 in the sanitizer builds (FORTIFY fights ASan's interceptors) and 1
otherwise (tests/CMakeLists.txt sets it).
"""
import os
import re
import shutil
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import VARGEN, VARINJECT, VARSEAL, describe, run  # noqa: E402

testkit.skip_unless_built(VARSEAL, VARGEN, VARINJECT)

READELF = shutil.which("readelf")
FORTIFY_EXPECTED = os.environ.get("FORTIFY_EXPECTED", "1") == "1"
TOOLS = {"varseal": VARSEAL, "vargen": VARGEN, "varinject": VARINJECT}


def readelf(*args):
    p = run([READELF, "-W"] + list(args))
    if p.returncode:
        raise AssertionError(describe(p))
    return p.stdout.decode()


@unittest.skipUnless(READELF, "readelf not installed (binutils)")
class Hardening(unittest.TestCase):
    def each_tool(self, check):
        for name, path in TOOLS.items():
            with self.subTest(tool=name):
                check(path)

    def test_position_independent_executable(self):
        def check(path):
            self.assertRegex(readelf("-h", path), r"Type:\s+DYN \(Position-Independent Executable")
            self.assertRegex(readelf("-d", path), r"\(FLAGS_1\)\s+Flags:.*\bPIE\b")
        self.each_tool(check)

    def test_full_relro(self):
        def check(path):
            self.assertRegex(readelf("-l", path), r"\bGNU_RELRO\b")
            self.assertRegex(readelf("-d", path), r"\(FLAGS_1\)\s+Flags:.*\bNOW\b")
        self.each_tool(check)

    def test_stack_not_executable(self):
        def check(path):
            stack = [line for line in readelf("-l", path).splitlines() if "GNU_STACK" in line]
            self.assertEqual(len(stack), 1, stack)
            self.assertRegex(stack[0], r"\sRW\s")  # not RWE
        self.each_tool(check)

    def test_stack_protector_and_fortify(self):
        def check(path):
            imports = readelf("--dyn-syms", path)
            self.assertIn("__stack_chk_fail", imports)
            checked = set(re.findall(r"\b(__\w+_chk)@", imports)) - {"__stack_chk_fail"}
            if FORTIFY_EXPECTED:
                self.assertTrue(checked, "no FORTIFY-checked function is imported")
            else:
                self.assertFalse(checked, "FORTIFY in a sanitizer build: %s" % sorted(checked))
        self.each_tool(check)


if __name__ == "__main__":
    unittest.main()
