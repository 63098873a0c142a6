#!/usr/bin/env python3
"""Progress of long work on a terminal, and silence elsewhere (issue 11).

`varseal encrypt/decrypt --progress` over a large input, `vargen generate`
and `varseal rekey` over a thousand machines' secrets: with standard error
on a pseudo-terminal, a progress line is drawn ("\\rLABEL ... (P%)") and
erased at the end; with standard error on a pipe, nothing of it is
written. Run as `python3 tests/progress_test.py` with VARGEN and VARSEAL
set. Standard library only.
"""
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import VARGEN, VARSEAL, checked, describe, read, run, write  # noqa: E402

AGE_KEYGEN = shutil.which("age-keygen") or "/usr/bin/age-keygen"
MACHINES = 1000


def on_terminal(cmd, cwd):
    """Runs cmd with standard error on a pseudo-terminal: (status, what the
    terminal received)."""
    master, slave = os.openpty()
    p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        out += data
    os.close(master)
    return p.wait(timeout=testkit.TIMEOUT), out


class Progress(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="progress_test.", dir="/dev/shm"
                                   if os.path.isdir("/dev/shm") else None)
        admin = os.path.join(cls.dir, "admin.key")
        checked([VARSEAL, "keygen", "-o", admin])
        cls.admin = admin
        cls.admin_r = checked([VARSEAL, "pubkey", admin]).stdout.decode().strip()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def assert_progress(self, out, label):
        text = out.decode(errors="replace")
        lines = re.findall(r"\r(%s [^\r\x1b]*)" % re.escape(label), text)
        self.assertTrue(lines, "no progress line %r on the terminal: %r" % (label, text[:300]))
        self.assertRegex(lines[-1], r"\(\d+%\)")
        self.assertTrue(text.endswith("\r\x1b[K"), "the line is not erased: %r" % text[-40:])

    def test_encrypt_decrypt(self):
        plain = os.path.join(self.dir, "big")
        with open(plain, "wb") as f:
            f.truncate(512 << 20)  # sparse: reading it costs no disk
        sealed, back = plain + ".age", plain + ".out"
        rc, out = on_terminal([VARSEAL, "encrypt", "--progress", "-r", self.admin_r, "-o",
                               sealed, plain], self.dir)
        self.assertEqual(rc, 0, out)
        self.assert_progress(out, "varseal: encrypting")
        rc, out = on_terminal([VARSEAL, "decrypt", "--progress", "-i", self.admin, "-o", back,
                               sealed], self.dir)
        self.assertEqual(rc, 0, out)
        self.assert_progress(out, "varseal: decrypting")
        self.assertEqual(os.path.getsize(back), 512 << 20)
        # Not on a terminal: not a byte of progress.
        p = run([VARSEAL, "decrypt", "--progress", "-i", self.admin, "-o", back, sealed])
        self.assertEqual((p.returncode, p.stderr), (0, b""), describe(p))
        # Without --progress, not even on a terminal.
        rc, out = on_terminal([VARSEAL, "decrypt", "-i", self.admin, "-o", back, sealed],
                              self.dir)
        self.assertEqual((rc, out), (0, b""))
        for f in (plain, sealed, back):
            os.unlink(f)

    def test_generate_and_rekey(self):
        def key(_):
            return re.search(rb"age1\S+", run([AGE_KEYGEN]).stderr).group(0).decode()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            keys = list(pool.map(key, range(MACHINES)))
        lines = ["admins:", "  admin: " + self.admin_r, "machines:"]
        for i, k in enumerate(keys):
            lines.append("  m%04d: {key: %s, generators: [g]}" % (i, k))
        lines += ["generators:", "  g:", "    files:", "      a: {kind: random}",
                  "      b: {kind: random}", "      c: {kind: password}"]
        store = tempfile.mkdtemp(prefix="store.", dir=self.dir)
        spec = os.path.join(store, "vars.yaml")
        write(spec, "\n".join(lines) + "\n", 0o644)
        rc, out = on_terminal([VARGEN, "generate", "-f", spec], store)
        self.assertEqual(rc, 0, out)
        self.assert_progress(out, "vargen: sealing")
        checked([VARGEN, "check", "-f", spec])
        other = os.path.join(self.dir, "other.key")
        checked([VARSEAL, "keygen", "-o", other])
        other_r = checked([VARSEAL, "pubkey", other]).stdout.decode().strip()
        write(spec, read(spec).decode().replace("admins:\n", "admins:\n  other: %s\n" % other_r),
              0o644)
        rc, out = on_terminal([VARSEAL, "rekey", "-f", spec, "-i", self.admin], store)
        self.assertEqual(rc, 0, out)
        self.assert_progress(out, "varseal: resealing")
        # On a pipe: the tools' own lines only.
        write(spec, read(spec).decode().replace("  other: %s\n" % other_r, ""), 0o644)
        p = run([VARSEAL, "rekey", "-f", spec, "-i", self.admin])
        self.assertEqual((p.returncode, p.stderr), (0, b""), describe(p))


if __name__ == "__main__":
    unittest.main(verbosity=2)
