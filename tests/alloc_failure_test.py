#!/usr/bin/env python3
"""vargen generate when an allocation fails.

`vargen generate` sets up its bookkeeping (which items are wanted, one row
of values per item, one decision per item) with calloc in
survey_and_decide, alloc_values and vg_decide. Each of those allocations
is made to fail in turn, under gdb: a breakpoint on calloc whose caller is
one of them (inlined or not) returns NULL for the K-th such call. Every run must end with exactly
`vargen: error: out of memory` and exit status 1, never a crash or a
success, and leave the store as it was. Once, only the last row's result
was checked, and a failure of any other row went on with a NULL row.

Needs gdb (scripts/deps.sh installs it) and a build with debug information
(the default RelWithDebInfo); skipped in the sanitizer build, whose
allocator gdb cannot stand in for. Standard library only.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
import testkit  # noqa: E402
from testkit import VARGEN, VARSEAL, checked, describe, write  # noqa: E402

SPEC = """\
admins:
  alice: @ADMIN@
machines:
  m1:
    generators: [g1, g2]
  m2:
    generators: [g1]
generators:
  g1:
    files:
      a: {kind: random}
  g2:
    files:
      b: {kind: password}
      c: {kind: uuid}
"""

GDB_SCRIPT = """\
set confirm off
set pagination off
set breakpoint pending on
break calloc if $_caller_is("survey_and_decide") || $_caller_is("alloc_values") || $_caller_is("vg_decide")
commands 1
  silent
  set $calls = $calls + 1
  if $calls == $fail_at
    return (void *) 0
  end
  continue
end
set $calls = 0
set $fail_at = %d
run
printf "CALLS %%d\\n", $calls
"""


def asan_build():
    p = subprocess.run(["nm", "-D", VARGEN], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return b"__asan_init" in p.stdout


def snapshot(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            path = os.path.join(d, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out


class AllocFailure(unittest.TestCase):
    def setUp(self):
        if not shutil.which("gdb"):
            self.skipTest("needs gdb")
        if asan_build():
            self.skipTest("the sanitizer build's allocator is not libc's calloc")
        self.dir = tempfile.mkdtemp(prefix="alloc_failure.")
        self.addCleanup(shutil.rmtree, self.dir, True)
        admin = os.path.join(self.dir, "admin.key")
        checked([VARSEAL, "keygen", "-o", admin])
        pub = checked([VARSEAL, "pubkey", admin]).stdout.decode().strip()
        self.spec = write(os.path.join(self.dir, "vars.yaml"),
                          SPEC.replace("@ADMIN@", pub).encode(), 0o644)
        for m in ("m1", "m2"):
            checked([VARSEAL, "machine", "keygen", "-f", self.spec, m])

    def generate_failing(self, k):
        script = write(os.path.join(self.dir, "fail.gdb"), (GDB_SCRIPT % k).encode(), 0o644)
        return subprocess.run(["gdb", "-q", "-batch", "-x", script, "--args", VARGEN,
                               "generate", "-f", self.spec],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=120, cwd=self.dir)

    def test_every_bookkeeping_allocation_failing(self):
        before = snapshot(self.dir)
        # Three items (m1/g1, m1/g2, m2/g1): wanted, the table of rows and
        # one row each, the decisions: six allocations; K = 0 fails none.
        p = self.generate_failing(0)
        calls = int(p.stdout.decode().rsplit("CALLS ", 1)[1].split()[0])
        self.assertGreaterEqual(calls, 6, describe(p))
        for k in range(1, calls + 1):
            with self.subTest(failing=k):
                # A fresh store each time: nothing of an earlier run counts.
                # (The records of the machines' keys stay: keygen made them.)
                for m in ("m1", "m2"):
                    mdir = os.path.join(self.dir, "vars", "per-machine", m)
                    for name in os.listdir(mdir) if os.path.isdir(mdir) else ():
                        if name != ".machine-key":
                            shutil.rmtree(os.path.join(mdir, name), True)
                shutil.rmtree(os.path.join(self.dir, "vars", "shared"), True)
                p = self.generate_failing(k)
                out = p.stdout.decode(errors="replace")
                err = p.stderr.decode(errors="replace")
                self.assertIn("exited with code 01", out, describe(p))
                self.assertNotIn("SIGSEGV", out, describe(p))
                lines = [l for l in err.splitlines() if l.startswith("vargen")]
                self.assertEqual(lines, ["vargen: error: out of memory"], describe(p))
                self.assertEqual(snapshot(self.dir).keys() - {"fail.gdb"},
                                 before.keys() - {"fail.gdb"}, "the store changed")


if __name__ == "__main__":
    unittest.main()
