#!/usr/bin/env python3
"""Decrypted values never land in the ordinary heap.

Each tool runs under gdb (batch mode). When the process calls exit_group
(after every free, before the kernel tears the memory down) the script
dumps the process's ordinary heap: the [heap] mapping (brk, glibc's main
arena) and every other anonymous writable mapping that is not locked (glibc's
thread arenas and large mmap'd malloc blocks; libsodium's guarded pages are
mlocked and so left out, as are stacks). Freed chunks are dumped too: a
value that was copied through malloc and freed without a wipe is still
there. The dump is then searched for the secret values, which are known:
set with `varseal set`, or generated and read back with `varseal get`.

Covers `vargen generate`, `varinject --dry-run` and `varseal get`, and
the payload stream on a large input both ways (`varseal decrypt` and
`encrypt` of 9 MiB, from a regular file, which is read out of order by
every core from 8 MiB, and from a pipe, which one thread reads, in
batches that grow to full size and are shared with the workers after 8
MiB): its plaintext must stay in guarded memory too, worker threads'
stacks and arenas included, since a file is a secret however large it
is. Skipped
for an ASan build: ASan makes mlock a no-op, so guarded pages look like
heap there.
Needs gdb (scripts/deps.sh) and root or ptrace rights over a child: the
tools make themselves non-dumpable, which a tracer that started them
(as root) still reads through.
"""

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import testkit  # noqa: E402
from testkit import VARGEN, VARINJECT, VARSEAL, describe, run  # noqa: E402

TIMEOUT = 300  # seconds per run under gdb: generous, it only guards a hang

SPEC = """\
admins:
  admin: @ADMIN@
machines:
  vm:
    generators: [gen, set]
    credentials:
      RANDOM: gen/random
      PASSWORD: gen/password
      HEX: gen/hex
      SET-SMALL: set/small
      SET-LARGE: set/large
generators:
  gen:
    files:
      random: {kind: random, length: 48}
      password: {kind: password, length: 40}
      hex: {kind: random, length: 32, encoding: hex}
  set:
    files:
      small: {kind: random, length: 16}
      large: {kind: random, length: 16}
"""

# Values set by hand: distinctive, and one of 29 KB (several stream
# chunks, yet within QEMU's SMBIOS budget once encoded).
SET_VALUES = {
    "set/small": b"guarded-memory-test:small:" + os.urandom(16).hex().encode(),
    "set/large": (b"guarded-memory-test:large:" + os.urandom(16).hex().encode()) * 500,
}

GDB_SCRIPT = r"""
import gdb, re

def maps(pid):
    # [(lo, hi, ordinary)]: ordinary is the brk heap, or an anonymous
    # writable mapping that is not locked (guarded pages are mlocked).
    out, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
            if m:
                name = m.group(4).strip()
                cur = [int(m.group(1), 16), int(m.group(2), 16),
                       name == "[heap]" or (name == "" and m.group(3).startswith("rw"))]
                out.append(cur)
            elif line.startswith("Locked:") and int(line.split()[1]) > 0 and cur:
                cur[2] = False
    return out

def ordinary(pid, addr):
    for lo, hi, plain in maps(pid):
        if lo <= addr < hi:
            return plain
    return False

class Wipes(gdb.Breakpoint):
    # Every sodium_memzero (vf_wipe, vf_buf_free, sodium_free) of ordinary
    # memory: what is wiped there was there, however well it is wiped.
    def __init__(self, out):
        super().__init__("sodium_memzero", internal=True)
        self.out = out

    def stop(self):
        addr = int(gdb.parse_and_eval("$rdi"))
        size = int(gdb.parse_and_eval("$rsi"))
        inf = gdb.selected_inferior()
        if size and ordinary(inf.pid, addr):
            try:
                self.out.write(bytes(inf.read_memory(addr, size)))
            except gdb.MemoryError:
                pass
        return False

class MidRun(gdb.Breakpoint):
    # Every 4th output write (write or writev, either thread), the ordinary
    # memory as it is then: a buffer freed before exit (a large malloc
    # block goes back to the kernel at once) was there while it was in use.
    hits = 0

    def __init__(self, spec, out):
        super().__init__(spec, internal=True)
        self.out = out

    def stop(self):
        MidRun.hits += 1
        if MidRun.hits % 4 == 0:
            dump_ordinary(gdb.selected_inferior(), self.out)
        return False

def dump_ordinary(inf, out):
    for lo, hi, plain in maps(inf.pid):
        if plain:
            try:
                out.write(bytes(inf.read_memory(lo, hi - lo)))
            except gdb.MemoryError:
                pass

def watch(out_path, mid_run=False):
    global wipes, mid
    out = open(out_path, "wb", buffering=0)
    wipes = Wipes(out)
    if mid_run:
        mid = [MidRun(f, out) for f in ("write", "writev")]

def secure_heap():
    # At exit(), before OpenSSL's atexit cleanup takes its secure heap down.
    print("openssl secure heap %d" % int(gdb.parse_and_eval(
        "(int)CRYPTO_secure_malloc_initialized()")))

def dump(out_path):
    inf = gdb.selected_inferior()
    print("exit status %d" % int(gdb.parse_and_eval("$rdi")))
    with open(out_path, "ab") as out:
        dump_ordinary(inf, out)
"""


def gdb_cmd(dump_path, script_path, argv, stdin_path, mid_run=False):
    # The arguments go on `run` (which would replace --args), quoted for
    # the shell gdb starts the program with.
    line = " ".join(shlex.quote(a) for a in argv[1:])
    return ["gdb", "-nx", "-batch", "-q",
            "-ex", "set pagination off",
            "-ex", "set confirm off",
            "-ex", "set startup-with-shell on",
            "-ex", "set breakpoint pending on",
            "-ex", "source " + script_path,
            "-ex", "python watch(%r, %r)" % (dump_path, mid_run),
            "-ex", "break exit",
            "-ex", "catch syscall exit_group",
            "-ex", "run %s < %s > /dev/null" % (line, shlex.quote(stdin_path)),
            "-ex", "python secure_heap()",
            "-ex", "continue",
            "-ex", "python dump(%r)" % dump_path,
            "-ex", "kill",
            argv[0]]


def sanitized(path):
    """Whether the tool is an ASan build: ASan makes mlock a no-op, so
    libsodium's guarded pages cannot be told from the heap by Locked:."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def missing():
    if shutil.which("gdb") is None:
        return "gdb not installed (scripts/deps.sh)"
    tools = testkit.not_executable(VARGEN, VARINJECT, VARSEAL)
    if tools:
        return "not built: %s" % tools
    if any(sanitized(t) for t in (VARGEN, VARINJECT, VARSEAL)):
        return "an ASan build (mlock is a no-op there): run it on a plain build"
    return None


@unittest.skipIf(missing(), missing())
class GuardedMemory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="guarded_memory_test.")
        cls.store = testkit.TempStore(cls.tmp, timeout=TIMEOUT)
        cls.store.make_admin()
        cls.store.write_spec(SPEC)
        cls.machine_key = cls.store.machine_key("vm", os.path.join(cls.tmp, "machine.key"))
        cls.script = os.path.join(cls.tmp, "dump.py")
        testkit.write(cls.script, GDB_SCRIPT.encode())
        # The first generate makes the store; secrets set by hand next.
        cls.store.tool(VARGEN, "generate")
        for f, value in SET_VALUES.items():
            cls.store.tool(VARSEAL, "set", "vm", f, stdin=value)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def secrets(self):
        """Every stored secret of the machine, read back with varseal get."""
        values = {}
        for f in ("gen/random", "gen/password", "gen/hex", "set/small", "set/large"):
            values[f] = self.store.tool(VARSEAL, "get", "vm", f, "-i",
                                        self.store.admin).stdout
        self.assertEqual(values["set/small"], SET_VALUES["set/small"])
        return values

    def heap_after(self, argv, stdin=b"", pipe=False, mid_run=False):
        """Runs argv under gdb in the store; the ordinary heap at exit_group.
        With pipe, stdin comes through a FIFO (not a file it could read
        out of order); with mid_run, also at every 4th output write."""
        n = len(os.listdir(self.tmp))
        dump_path = os.path.join(self.tmp, "heap-%d.bin" % n)
        stdin_path = os.path.join(self.tmp, "stdin-%d" % n)
        if pipe:
            os.mkfifo(stdin_path, 0o600)
            # Daemon: if gdb fails before the shell opens the FIFO, the
            # writer stays blocked and must not hold the test run open.
            threading.Thread(target=testkit.write, args=(stdin_path, stdin),
                             daemon=True).start()
        else:
            testkit.write(stdin_path, stdin)
        p = run(gdb_cmd(dump_path, self.script, argv, stdin_path, mid_run), cwd=self.tmp,
                timeout=TIMEOUT)
        self.assertIn(b"exit status 0\n", p.stdout, describe(p))
        # vf_init set up OpenSSL's secure heap for its private key copies.
        self.assertIn(b"openssl secure heap 1\n", p.stdout, describe(p))
        self.assertTrue(os.path.exists(dump_path) and os.path.getsize(dump_path) > 0,
                        "gdb dumped nothing: %s" % describe(p))
        with open(dump_path, "rb") as f:
            heap = f.read()
        os.unlink(dump_path)
        return heap

    def assert_absent(self, heap, values, what):
        # A value is found if any 16-byte window of it is: a copy that was
        # later partly overwritten (malloc's own bookkeeping) still counts.
        # Its first KiB window by window, then windows spread over the rest
        # (a large value's every chunk) and its last 16 bytes.
        found = []
        for name, value in values.items():
            if len(value) <= 16:
                windows = [value]
            else:
                step = max(16, len(value) // 1024)
                starts = list(range(0, min(len(value) - 15, 1024), 16)) + \
                    list(range(1024, len(value) - 15, step)) + [len(value) - 16]
                windows = [value[i:i + 16] for i in starts]
            if any(w in heap for w in windows):
                found.append(name)
        self.assertEqual(found, [], "%s: plaintext values in the ordinary heap "
                         "(%d bytes searched)" % (what, len(heap)))

    def test_vargen_generate(self):
        # --regenerate regenerates the gen/ values; the set/ ones are untouched
        # but a regeneration reads what it keeps.
        heap = self.heap_after([VARGEN, "generate", "--regenerate", "--generator", "gen", "--yes"])
        self.assert_absent(heap, self.secrets(), "vargen generate")

    def test_varinject_dry_run(self):
        values = self.secrets()
        rundir = tempfile.mkdtemp(prefix="guarded_memory_test.", dir="/dev/shm")
        self.addCleanup(shutil.rmtree, rundir, True)
        heap = self.heap_after([VARINJECT, "-f", self.store.spec, "--machine", "vm",
                                "-i", self.machine_key, "--credentials-dir", rundir,
                                "--hypervisor", "qemu", "--dry-run", "--",
                                "/bin/true"])
        self.assert_absent(heap, values, "varinject --dry-run")

    def test_varseal_get(self):
        values = self.secrets()
        heap = self.heap_after([VARSEAL, "get", "vm", "set/large", "-i", self.store.admin])
        self.assert_absent(heap, {"set/large": values["set/large"]}, "varseal get")

    def large_file(self):
        """9 MiB of plaintext (144 chunks, past the stream's RING_FROM of
        128: from a file, its ring on two CPUs or more; from a pipe, its
        full batches and workers) and its ciphertext to the admin, as
        files in the store."""
        plain = b"guarded-memory-test:stream:" + os.urandom(9 << 20)
        plain_path = os.path.join(self.tmp, "large.plain")
        ct_path = os.path.join(self.tmp, "large.age")
        testkit.write(plain_path, plain)
        self.store.tool(VARSEAL, "encrypt", "-r", self.store.admin_pub, "-o", ct_path,
                        plain_path)
        return plain, plain_path, ct_path

    def test_varseal_decrypt_large_file(self):
        plain, _, ct_path = self.large_file()
        heap = self.heap_after([VARSEAL, "decrypt", "-i", self.store.admin, ct_path],
                               mid_run=True)
        self.assert_absent(heap, {"9 MiB file": plain}, "varseal decrypt of a large file")

    def test_varseal_decrypt_large_pipe(self):
        plain, _, ct_path = self.large_file()
        with open(ct_path, "rb") as f:
            ct = f.read()
        heap = self.heap_after([VARSEAL, "decrypt", "-i", self.store.admin], stdin=ct, pipe=True,
                               mid_run=True)
        self.assert_absent(heap, {"9 MiB pipe": plain}, "varseal decrypt from a pipe")

    def test_varseal_encrypt_large_file(self):
        plain, plain_path, _ = self.large_file()
        heap = self.heap_after([VARSEAL, "encrypt", "-r", self.store.admin_pub, plain_path],
                               mid_run=True)
        self.assert_absent(heap, {"9 MiB file": plain}, "varseal encrypt of a large file")

    def test_varseal_encrypt_large_pipe(self):
        plain, _, _ = self.large_file()
        heap = self.heap_after([VARSEAL, "encrypt", "-r", self.store.admin_pub],
                               stdin=plain, pipe=True, mid_run=True)
        self.assert_absent(heap, {"9 MiB pipe": plain}, "varseal encrypt from a pipe")


if __name__ == "__main__":
    unittest.main()
