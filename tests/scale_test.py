#!/usr/bin/env python3
"""vargen generate on a large store: memory does not grow with the store.

Issue 15: on 10,000 machines x 3 `kind: random` secrets, `vargen generate`
failed with "out of memory". Every value was made up front and held in its
own guarded allocation (sodium_malloc: a mapping split in three or four by
its guard pages, plus a locked page) until the commit, so the process ran
out of mappings (vm.max_map_count, 65,530 by default) long before it ran
out of memory, and past RLIMIT_MEMLOCK its values were silently no longer
locked. vm.max_map_count is system-wide and cannot be lowered for one
process, so the test watches instead: while generate runs on 300 and on
3,000 machines, /proc/PID/maps and VmLck are sampled, and the peaks on the
store ten times larger must stay within twice those on the small one
(before the fix they grew about tenfold). Both stores must then check
clean, with every secret in place.

Values are now made, sealed and released a batch at a time; a script's
inputs are kept until the last generator that reads them has run. The
second test checks that across batches: several hundred machines, each
with a script whose inputs are its own generator and a shared one.

The survey of a new store (what check, list and every generate do before
anything is written) counts its failing lookups: a generator whose
directory is missing has all its files missing, without a lookup for each.

Counts and ratios only: nothing here depends on the CPU's speed. Reading
the maps of the tool (which makes itself non-dumpable) needs root, as the
test suite runs; otherwise the test is skipped. Standard library only.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
import testkit  # noqa: E402
from testkit import VARGEN, VARSEAL, checked, describe, write  # noqa: E402

SMALL, LARGE = 300, 3000  # machines
TIMEOUT = 600  # seconds for one generate: generous, it only guards a hang

GENERATORS = """\
generators:
  app:
    files:
      api-key: {kind: random, length: 32}
      session: {kind: random, length: 32}
      jwt-secret: {kind: random, length: 64, encoding: hex}
"""


def spec_text(admin, machine_key, machines):
    # One key for every machine: what is measured is the number of
    # values, and keys cost seconds each to make by the thousand.
    lines = ["admins:", "  admin: %s" % admin, "machines:"]
    for m in range(machines):
        lines += ["  m%05d:" % m, "    key: %s" % machine_key, "    generators: [app]"]
    return "\n".join(lines) + "\n" + GENERATORS


class Peaks:
    """The largest mapping count and VmLck (KiB) seen while pid runs."""

    def __init__(self, pid):
        self.pid, self.maps, self.locked_kib, self.samples = pid, 0, 0, 0
        self.unreadable = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _sample(self):
        with open("/proc/%d/maps" % self.pid, "rb") as f:
            maps = sum(1 for _ in f)
        with open("/proc/%d/status" % self.pid, "rb") as f:
            status = f.read().decode(errors="replace")
        for line in status.splitlines():
            if line.startswith("State:") and "Z" in line.split()[1]:
                return  # exited: its maps are gone, not smaller
            if line.startswith("VmLck:"):
                self.locked_kib = max(self.locked_kib, int(line.split()[1]))
        self.maps = max(self.maps, maps)
        self.samples += 1

    def _watch(self):
        while not self._done.is_set():
            try:
                self._sample()
            except PermissionError:
                self.unreadable = True
                return
            except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                pass
            time.sleep(0.001)

    def stop(self):
        self._done.set()
        self._thread.join()


class GenerateScale(unittest.TestCase):
    def setUp(self):
        testkit.skip_unless_built(VARGEN, VARSEAL)
        # A RAM file system where there is one: thousands of files.
        parent = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.dir = tempfile.mkdtemp(prefix="scale_test.", dir=parent)
        self.addCleanup(shutil.rmtree, self.dir, True)
        keys = {}
        for name in ("admin", "machine"):
            path = os.path.join(self.dir, name + ".key")
            checked([VARSEAL, "keygen", "-o", path])
            keys[name] = checked([VARSEAL, "pubkey", path]).stdout.decode().strip()
        self.keys = keys

    def generate(self, machines):
        """Runs vargen generate on a new store of `machines` machines; its
        peaks, after checking that the store is complete."""
        spec = write(os.path.join(self.dir, "vars-%d.yaml" % machines),
                     spec_text(self.keys["admin"], self.keys["machine"], machines), 0o644)
        store = os.path.join(self.dir, "store-%d" % machines)
        p = subprocess.Popen([VARGEN, "generate", "-f", spec, "--store", store],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        peaks = Peaks(p.pid)
        try:
            _, err = p.communicate(timeout=TIMEOUT)
        finally:
            p.kill()
            p.wait()
            peaks.stop()
        if peaks.unreadable:
            self.skipTest("cannot read /proc/PID/maps of the tool (needs root)")
        self.assertEqual(p.returncode, 0, "vargen generate on %d machines exited %d: %s"
                         % (machines, p.returncode, err.decode(errors="replace")[-2000:]))
        self.assertGreater(peaks.samples, 0, "the run ended before a single sample")
        secrets = sum(1 for _, _, files in os.walk(os.path.join(store, "vars"))
                      for f in files if f == "secret")
        self.assertEqual(secrets, 3 * machines, "secrets written for %d machines" % machines)
        c = testkit.run([VARGEN, "check", "-f", spec, "--store", store], timeout=TIMEOUT)
        self.assertEqual(c.returncode, 0, describe(c, keep=-2000))
        return peaks

    def test_memory_does_not_grow_with_the_store(self):
        small = self.generate(SMALL)
        large = self.generate(LARGE)
        summary = ("peak mappings %d (%d machines) -> %d (%d machines); "
                   "peak VmLck %d KiB -> %d KiB" % (small.maps, SMALL, large.maps, LARGE,
                                                   small.locked_kib, large.locked_kib))
        self.assertLessEqual(large.maps, 2 * small.maps, summary)
        # VmLck: a few pages of slack, for whatever else happens to be
        # locked at the moment sampled (a thread's scratch stack).
        self.assertLessEqual(large.locked_kib, 2 * small.locked_kib + 1024, summary)

    def test_script_inputs_across_batches(self):
        # 200 machines x (2 + 1 files) + 1 shared: about 600 files, more
        # than two batches; the shared input is needed by every batch.
        machines = 200
        lines = ["admins:", "  admin: %s" % self.keys["admin"], "machines:"]
        for m in range(machines):
            lines += ["  m%03d:" % m, "    key: %s" % self.keys["machine"],
                      "    generators: [base, derived]"]
        lines += [
            "generators:",
            "  pool:",
            "    share: true",
            "    files: {p: {kind: random, length: 16}}",
            "  base:",
            "    files:",
            "      x: {kind: random, length: 16}",
            "      y: {kind: random, length: 16}",
            "  derived:",
            "    dependencies: [base, pool]",
            "    files: {d: null}",
            "    script: cat $in/base/x $in/pool/p $in/base/y > $out/d",
        ]
        spec = write(os.path.join(self.dir, "deps.yaml"), "\n".join(lines) + "\n", 0o644)
        store = os.path.join(self.dir, "store-deps")
        checked([VARGEN, "generate", "-f", spec, "--store", store], timeout=TIMEOUT)
        admin = os.path.join(self.dir, "admin.key")

        def get(machine, var):
            return checked([VARSEAL, "get", "-f", spec, "--store", store, "-i", admin,
                            machine, var]).stdout

        pool = get("shared", "pool/p")
        for m in ("m000", "m001", "m099", "m100", "m198", "m199"):
            with self.subTest(machine=m):
                x, y = get(m, "base/x"), get(m, "base/y")
                self.assertEqual(len(x), 24)  # 16 bytes, base64
                self.assertEqual(get(m, "derived/d"), x + pool + y)
        self.assertNotEqual(get("m000", "base/x"), get("m199", "base/x"))

    def test_a_late_failure_leaves_the_store_as_it_was(self):
        # The 251st script fails: by then two batches are sealed and
        # staged. The run is one transaction all the same: nothing of it
        # may stay, not a file, not a temporary, not a directory made for
        # them.
        machines = 300
        counter = write(os.path.join(self.dir, "counter"), "0", 0o600)
        lines = ["admins:", "  admin: %s" % self.keys["admin"], "machines:"]
        for m in range(machines):
            lines += ["  m%03d:" % m, "    key: %s" % self.keys["machine"],
                      "    generators: [base, derived]"]
        lines += [
            "generators:",
            "  base:",
            "    files: {x: {kind: random, length: 16}, y: {kind: uuid}}",
            "  derived:",
            "    dependencies: [base]",
            "    files: {d: null}",
            "    script: |",
            "      n=$(cat %s); echo $((n + 1)) > %s; [ \"$n\" -lt 250 ]" % (counter, counter),
            "      cat $in/base/x > $out/d",
        ]
        spec = write(os.path.join(self.dir, "late.yaml"), "\n".join(lines) + "\n", 0o644)
        store = os.path.join(self.dir, "store-late")
        p = testkit.run([VARGEN, "generate", "-f", spec, "--store", store], timeout=TIMEOUT)
        self.assertNotEqual(p.returncode, 0, describe(p, keep=-2000))
        self.assertEqual(testkit.read(counter).strip(), b"251", "the scripts that ran")
        left = [os.path.relpath(os.path.join(d, f), store)
                for d, _, files in os.walk(store) for f in files]
        self.assertEqual(left, [], "files left by a failed run")
        # Nor the directories staging made for the sealed batches: what
        # is left is the store's layout, as a run failing at once leaves.
        dirs = sorted(os.path.relpath(d, store) for d, _, _ in os.walk(store))
        self.assertLessEqual(set(dirs), {".", "vars", "vars/per-machine"},
                             "directories left by a failed run: %s" % dirs[:5])


class SurveyOfANewStore(unittest.TestCase):
    """vargen check of a store that has nothing yet, under strace: the
    lookups that fail must not grow with the files per generator. Before
    61675c1 each file's secret and recipients, and the generator's
    records, were looked up one by one: 8 failing lookups a machine for a
    generator of three files (2,403 for 300 machines). Now a machine with
    nothing has 3: its generator's directory, its own directory (where
    the `.machine-key` marker would be) and its kept-key directory.
    Counts system calls, not time."""
    MACHINES = 300

    def setUp(self):
        testkit.skip_unless_built(VARGEN, VARSEAL)
        if not testkit.strace_works():
            self.skipTest("needs a working strace")
        self.dir = tempfile.mkdtemp(prefix="scale_test.")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_missing_files_cost_no_lookup_each(self):
        key = os.path.join(self.dir, "admin.key")
        checked([VARSEAL, "keygen", "-o", key])
        admin = checked([VARSEAL, "pubkey", key]).stdout.decode().strip()
        spec = write(os.path.join(self.dir, "vars.yaml"),
                     spec_text(admin, admin, self.MACHINES), 0o644)
        store = os.path.join(self.dir, "store")
        os.makedirs(os.path.join(store, "vars"))
        # -ff: a file per thread, so that no call is split across lines
        # by another thread's (the survey runs on every CPU).
        log = os.path.join(self.dir, "trace")
        p = testkit.run([testkit.STRACE, "-ff", "-qq", "-o", log, "-e", "trace=openat,openat2",
                         VARGEN, "check", "-f", spec, "--store", store],
                        env=testkit.traced_env())
        files = 3 * self.MACHINES
        self.assertIn(b"check: %d of %d need attention" % (files, files), p.stderr,
                      describe(p))
        calls = []
        for name in os.listdir(self.dir):
            if name.startswith("trace."):
                with open(os.path.join(self.dir, name)) as f:
                    calls += f.read().splitlines()
        # The store's lookups are relative to its root's descriptor; the
        # absolute ones are the loader's and the libraries'.
        failed = [c for c in calls if re.match(r'openat2?\(\d+, "[^/]', c) and "= -1 ENOENT" in c]
        self.assertGreater(len(failed), 0, "strace saw no failing lookup in the store")
        # 3 a machine, and a few for the store's own directories.
        self.assertLessEqual(len(failed), 3 * self.MACHINES + 16,
                             "%d failing lookups for %d machines with nothing; the first:\n%s"
                             % (len(failed), self.MACHINES, "\n".join(failed[:12])))


if __name__ == "__main__":
    unittest.main()
