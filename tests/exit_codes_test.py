#!/usr/bin/env python3
"""The documented exit statuses of varseal, vargen and varinject (issue 11).

   0  success, or nothing to do
   1  an error: bad input, an unreadable or malformed file, I/O, refused
   2  bad usage
   3  no identity matched (a wrong key or passphrase)
   4  the command worked and found something needing attention: `vargen
      check` with problems, `vargen generate` leaving something, a --plan
      with something to do

Each case runs the built tools on a real store in a temporary directory.
Run as `python3 tests/exit_codes_test.py` (VARSEAL, VARGEN, VARINJECT from
the environment, as tests/CMakeLists.txt sets them).
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import VARGEN, VARINJECT, VARSEAL, describe, read, run, write  # noqa: E402


def thread_states(pid):
    """The state letter of each of pid's threads (R running, S asleep...)."""
    states = (testkit.proc_state("/proc/%d/task/%s/stat" % (pid, tid))
              for tid in os.listdir("/proc/%d/task" % pid))
    return [s for s in states if s is not None]  # None: a thread that just ended


def all_asleep(pid, timeout):
    """Whether every thread of pid is asleep (S) and stays so for 50 ms,
    within timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if set(thread_states(pid)) == {"S"}:
            time.sleep(0.05)
            if set(thread_states(pid)) == {"S"}:
                return True
        time.sleep(0.01)
    return False

OK, ERROR, USAGE, NO_MATCH, ATTENTION = 0, 1, 2, 3, 4

SPEC = """\
admins:
  alice: @ALICE@
machines:
  vm:
    generators: [g]
    credentials:
      API-KEY: g/api-key
generators:
  g:
    files:
      api-key: {secret: true}
    script: |
      printf 'one' > "$out/api-key"
"""


class ExitCodes(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        testkit.skip_unless_built(VARSEAL, VARGEN, VARINJECT)

    def setUp(self):
        self.dir = testkit.temp_dir(self, "exit_codes_test.")
        self.alice = os.path.join(self.dir, "alice.key")
        self.mallory = os.path.join(self.dir, "mallory.key")
        self.tool(VARSEAL, "keygen", "-o", self.alice)
        self.tool(VARSEAL, "keygen", "-o", self.mallory)
        self.spec = os.path.join(self.dir, "vars.yaml")
        self.write_spec(SPEC)

    # -- helpers

    def tool(self, exe, *args, expect=OK, stdin=None):
        p = run([exe] + list(args), cwd=self.dir, stdin=stdin)
        self.assertEqual(p.returncode, expect, describe(p))
        if expect in (ERROR, NO_MATCH):
            lines = p.stderr.decode(errors="replace").splitlines()
            self.assertEqual(len(lines), 1, describe(p))
            self.assertRegex(lines[0], r"^var(seal|gen|inject): error: ")
        return p

    def recipient(self, key):
        return self.tool(VARSEAL, "pubkey", key).stdout.decode().strip()

    def write_spec(self, text):
        # Keep a machine key the spec already has across rewrites.
        key = ""
        if os.path.exists(self.spec):
            for line in read(self.spec).decode().splitlines():
                if line.strip().startswith("key:"):
                    key = line.strip()
        text = text.replace("@ALICE@", self.recipient(self.alice))
        if key:
            text = text.replace("    generators: [g]\n", "    %s\n    generators: [g]\n" % key, 1)
        write(self.spec, text.encode())

    def generated_store(self):
        """A store with vm's key and its secret made: check says all is well."""
        self.tool(VARSEAL, "machine", "keygen", "-i", self.alice, "vm")
        self.tool(VARGEN, "generate")
        self.tool(VARGEN, "check")
        self.machine_key = os.path.join(self.dir, "vm.key")
        p = self.tool(VARSEAL, "machine", "key", "-i", self.alice, "vm")
        write(self.machine_key, p.stdout)
        return [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(self.dir, "vars"))
                for f in fs if f == "secret"]

    # -- 2: bad usage

    def test_usage(self):
        self.tool(VARSEAL, "--no-such-option", expect=USAGE)
        self.tool(VARSEAL, "decrypt", "--no-such-option", expect=USAGE)
        self.tool(VARGEN, "check", "--no-such-option", expect=USAGE)
        self.tool(VARGEN, "no-such-verb", expect=USAGE)
        self.tool(VARINJECT, "--no-such-option", expect=USAGE)
        self.tool(VARINJECT, expect=USAGE)

    # -- 1: bad input

    def test_malformed_inputs(self):
        bad = os.path.join(self.dir, "bad.age")
        write(bad, b"age-encryption.org/v1\n-> X25519 nonsense\n--- zz\n")
        self.tool(VARSEAL, "decrypt", "-i", self.alice, bad, expect=ERROR)
        self.tool(VARSEAL, "inspect", bad, expect=ERROR)
        self.tool(VARSEAL, "decrypt", "-i", os.path.join(self.dir, "missing.key"), bad,
                  expect=ERROR)
        write(self.spec, b"admins: [\n")
        self.tool(VARGEN, "check", expect=ERROR)
        self.tool(VARGEN, "generate", "--plan", expect=ERROR)

    def test_reader_gone(self):
        """A reader that stops and closes the pipe in the middle of a large
        file: with SIGPIPE ignored, exit 1 with one line naming the broken
        pipe; with SIGPIPE at its default, death by SIGPIPE. Either way at
        once, with the workers (asleep on a full ring while the reader
        waited) woken and joined: no hang."""
        plain = os.path.join(self.dir, "big")
        with open(plain, "wb") as f:
            f.write(os.urandom(1 << 20) * 48)  # 48 MiB: the ring, not one batch
        sealed = plain + ".age"
        self.tool(VARSEAL, "encrypt", "-r", self.recipient(self.alice), "-o", sealed, plain)
        for what, args in (("encrypt", ["-r", self.recipient(self.alice), plain]),
                           ("decrypt", ["-i", self.alice, sealed])):
            for ignored in (True, False):
                with self.subTest(what=what, sigpipe="ignored" if ignored else "default"):
                    # Python ignores SIGPIPE itself; restore_signals puts
                    # back the default in the child.
                    p = subprocess.Popen([VARSEAL, what] + args, cwd=self.dir,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, restore_signals=not ignored)
                    got = p.stdout.read(256 << 10)
                    # The ring fills and every thread sleeps (the workers on
                    # the full ring, the writer in write()), however long
                    # this host takes to get there; only then is the pipe
                    # closed, so that the wake-up is what is tested.
                    self.assertTrue(all_asleep(p.pid, 30),
                                    "varseal %s never filled its ring and slept" % what)
                    p.stdout.close()
                    try:
                        err = p.stderr.read()
                        rc = p.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
                        self.fail("varseal %s went on after its reader left" % what)
                    self.assertEqual(len(got), 256 << 10)
                    if ignored:
                        self.assertEqual(rc, ERROR, err)
                        # decrypt names its input first
                        self.assertRegex(err, rb"^varseal: error: ([^\n]*: )?writing standard "
                                              rb"output: Broken pipe\n$")
                    else:
                        self.assertEqual(rc, -signal.SIGPIPE, err)

    # -- 3: no identity matched

    def test_decrypt_with_the_wrong_key(self):
        sealed = os.path.join(self.dir, "file.age")
        self.tool(VARSEAL, "encrypt", "-r", self.recipient(self.alice), "-o", sealed,
                  stdin=b"hello")
        self.tool(VARSEAL, "decrypt", "-i", self.alice, sealed)
        self.tool(VARSEAL, "decrypt", "-i", self.mallory, sealed, expect=NO_MATCH)

    def test_decrypt_with_the_wrong_passphrase(self):
        sealed = os.path.join(self.dir, "file.age")
        right = os.path.join(self.dir, "right.pass")
        wrong = os.path.join(self.dir, "wrong.pass")
        write(right, b"correct horse\n")
        write(wrong, b"battery staple\n")
        self.tool(VARSEAL, "encrypt", "-p", "--passphrase-file", right, "-o", sealed,
                  stdin=b"hello")
        self.tool(VARSEAL, "decrypt", "--passphrase-file", wrong, sealed, expect=NO_MATCH)

    def test_store_commands_with_the_wrong_key(self):
        self.generated_store()
        self.tool(VARSEAL, "get", "-i", self.alice, "vm", "g/api-key")
        self.tool(VARSEAL, "get", "-i", self.mallory, "vm", "g/api-key", expect=NO_MATCH)
        self.tool(VARSEAL, "machine", "key", "-i", self.mallory, "vm", expect=NO_MATCH)
        self.tool(VARSEAL, "rekey", "--rotate", "-i", self.mallory, expect=NO_MATCH)
        self.tool(VARSEAL, "rekey", "--rotate", "-i", self.alice)

    def test_generate_reseal_with_the_wrong_key(self):
        self.generated_store()
        spec = SPEC.replace("  alice: @ALICE@\n",
                            "  alice: @ALICE@\n  mallory: %s\n" % self.recipient(self.mallory))
        self.write_spec(spec)
        self.tool(VARGEN, "generate", "-i", self.mallory, expect=NO_MATCH)
        self.tool(VARGEN, "generate", "-i", self.alice)
        self.tool(VARGEN, "check")

    def test_varinject_with_the_wrong_key(self):
        self.generated_store()
        shm = tempfile.mkdtemp(prefix="exit_codes_test.", dir="/dev/shm")
        self.addCleanup(lambda: os.path.isdir(shm) and __import__("shutil").rmtree(shm, True))
        launch = ["--machine", "vm", "--credentials-dir", shm, "--dry-run", "--",
                  "qemu-system-x86_64", "-machine", "q35"]
        self.tool(VARINJECT, "-i", self.machine_key, *launch)
        self.tool(VARINJECT, "-i", self.mallory, *launch, expect=NO_MATCH)
        target = os.path.join(shm, "secrets")
        self.tool(VARINJECT, "install", "--machine", "vm", "-i", self.mallory, target,
                  expect=NO_MATCH)
        self.assertFalse(os.path.lexists(target))
        self.tool(VARINJECT, "install", "--machine", "vm", "-i", self.machine_key, target)

    # -- 4: worked, and found something to look at; 0: nothing to do

    def test_plans_and_check(self):
        self.tool(VARSEAL, "machine", "keygen", "-i", self.alice, "vm")
        self.tool(VARGEN, "check", expect=ATTENTION)            # missing
        self.tool(VARGEN, "generate", "--plan", expect=ATTENTION)
        self.tool(VARGEN, "generate")
        for exe, *plan in ((VARGEN, "generate"), (VARGEN, "accept", "--all"),
                           (VARGEN, "prune"), (VARSEAL, "rekey")):
            self.tool(exe, *plan, "--plan")                     # nothing to do: 0
        self.tool(VARGEN, "check")

        # A changed script: the value is stale.
        self.write_spec(SPEC.replace("'one'", "'two'"))
        self.tool(VARGEN, "check", expect=ATTENTION)
        self.tool(VARGEN, "check", "--json", expect=ATTENTION)
        self.tool(VARGEN, "generate", "--plan", expect=ATTENTION)
        p = self.tool(VARGEN, "generate", expect=ATTENTION)     # leaves the stale value
        self.assertIn(b"stale", p.stdout + p.stderr, describe(p))
        self.tool(VARGEN, "accept", "--all", "--plan", expect=ATTENTION)
        self.tool(VARGEN, "accept", "--all")
        self.tool(VARGEN, "check")

        # A new admin: rekey has work.
        self.write_spec(SPEC.replace("'one'", "'two'").replace(
            "  alice: @ALICE@\n", "  alice: @ALICE@\n  mallory: %s\n" % self.recipient(self.mallory)))
        self.tool(VARGEN, "check", expect=ATTENTION)
        self.tool(VARSEAL, "rekey", "--plan", expect=ATTENTION)
        self.tool(VARSEAL, "rekey", "-i", self.alice)
        self.tool(VARSEAL, "rekey", "--plan")

        # A dropped generator: prune has work.
        self.write_spec(SPEC.replace("'one'", "'two'").replace(
            "  alice: @ALICE@\n", "  alice: @ALICE@\n  mallory: %s\n" % self.recipient(self.mallory))
            .replace("    generators: [g]\n", "    generators: []\n")
            .replace("    credentials:\n      API-KEY: g/api-key\n", ""))
        self.tool(VARGEN, "prune", "--plan", expect=ATTENTION)
        self.tool(VARGEN, "prune", "--yes")
        self.tool(VARGEN, "prune", "--plan")


if __name__ == "__main__":
    unittest.main()
