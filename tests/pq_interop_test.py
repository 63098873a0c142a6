#!/usr/bin/env python3
"""Post-quantum interop with typage (npm age-encryption), both ways (issue 14).

typage is an independent age implementation with age 1.3's hybrid
mlkem768x25519 recipients (Debian 12's age is 1.1, which has none). It is
installed by tests/typage.py, pinned with every dependency by
tests/typage/package-lock.json; only an unreachable npm registry skips
these tests, saying so.

  - identities exchanged: typage's generated identity gives, under
    varseal pubkey, the recipient typage derives; varseal keygen --pq's
    identity gives, under typage, the recipient varseal wrote;
  - typage seals to a varseal recipient (binary and armored, several sizes
    across the 64 KiB chunk boundary), varseal opens it;
  - varseal seals to typage's recipients (binary and armored, one and two
    recipients), typage opens it with each identity; a stranger's cannot;
  - a file sealed by typage to a typage identity opens with varseal given
    that identity, and the reverse: the identity strings themselves are
    interchangeable;
  - varseal refuses to seal to typage's classic and hybrid recipients
    together, naming the classic one.

Run as `python3 tests/pq_interop_test.py` with VARSEAL set.
"""
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
import typage  # noqa: E402
from testkit import VARSEAL, checked, read, run, write  # noqa: E402

SIZES = (0, 1, 65535, 65536, 65537, 300000)


def setUpModule():
    testkit.skip_unless_built(VARSEAL)
    typage.ensure()


class Interop(testkit.TempDirCase):
    PREFIX = "pq_interop_test."

    def varseal(self, *args, stdin=None):
        return checked([VARSEAL] + list(args), stdin=stdin)

    def varseal_key(self, name):
        """varseal keygen --pq -o FILE; (path, recipient from its comment)."""
        path = self.path(name)
        self.varseal("keygen", "--pq", "-o", path)
        line = [l for l in read(path).decode().splitlines() if l.startswith("# public key: ")]
        self.assertEqual(len(line), 1)
        return path, line[0][len("# public key: "):]

    def typage_key(self, name, x25519=False):
        path = self.path(name)
        return path, typage.keygen(path, x25519)

    def recipients_file(self, *recipients):
        return write(self.path("recipients"), "".join(r + "\n" for r in recipients))

    # -- identities

    def test_typage_identity_under_varseal(self):
        path, recipient = self.typage_key("typage.key")
        self.assertTrue(read(path).startswith(b"AGE-SECRET-KEY-PQ-1"))
        self.assertTrue(recipient.startswith("age1pq1"))
        self.assertEqual(len(recipient), 1959)
        self.assertEqual(self.varseal("pubkey", path).stdout.decode(), recipient + "\n")

    def test_varseal_identity_under_typage(self):
        path, recipient = self.varseal_key("varseal.key")
        self.assertEqual(typage.recipient(path), recipient)
        self.assertEqual(self.varseal("pubkey", path).stdout.decode(), recipient + "\n")

    # -- typage seals, varseal opens

    def test_typage_to_varseal(self):
        key, recipient = self.varseal_key("varseal.key")
        rfile = self.recipients_file(recipient)
        for size in SIZES:
            for armor in (False, True):
                with self.subTest(size=size, armor=armor):
                    data = testkit.payload(size)
                    sealed = typage.encrypt(rfile, data, armor)
                    self.assertEqual(sealed.startswith(b"-----BEGIN AGE"), armor)
                    if not armor:
                        self.assertIn(b"\n-> mlkem768x25519 ", sealed)
                    opened = self.varseal("decrypt", "-i", key, stdin=sealed).stdout
                    self.assertEqual(opened, data)

    # -- varseal seals, typage opens

    def test_varseal_to_typage(self):
        k1, r1 = self.typage_key("t1.key")
        k2, r2 = self.typage_key("t2.key")
        stranger, _ = self.typage_key("t3.key")
        for size in SIZES:
            for armor in (False, True):
                with self.subTest(size=size, armor=armor):
                    data = testkit.payload(size)
                    sealed = self.varseal("encrypt", *(["-a"] if armor else []),
                                          "-r", r1, "-R", self.recipients_file(r2),
                                          stdin=data).stdout
                    self.assertEqual(sealed.startswith(b"-----BEGIN AGE"), armor)
                    self.assertEqual(typage.decrypt(k1, sealed).stdout, data)
                    self.assertEqual(typage.decrypt(k2, sealed).stdout, data)
        p = typage.decrypt(stranger, sealed, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.stdout, b"")

    # -- the identity strings interchangeable

    def test_identity_strings_both_ways(self):
        tkey, trec = self.typage_key("typage.key")
        vkey, vrec = self.varseal_key("varseal.key")
        data = testkit.payload(4096)
        # typage seals to its own recipient; varseal opens with typage's identity.
        sealed = typage.encrypt(self.recipients_file(trec), data)
        self.assertEqual(self.varseal("decrypt", "-i", tkey, stdin=sealed).stdout, data)
        # varseal seals to its own; typage opens with varseal's identity file
        # (age-keygen's format, comments and all).
        sealed = self.varseal("encrypt", "-r", vrec, stdin=data).stdout
        self.assertEqual(typage.decrypt(vkey, sealed).stdout, data)

    def test_mixing_refused_naming_the_classic(self):
        _, hybrid = self.typage_key("hybrid.key")
        _, classic = self.typage_key("classic.key", x25519=True)
        self.assertTrue(classic.startswith("age1") and not classic.startswith("age1pq1"))
        p = run([VARSEAL, "encrypt", "-r", hybrid, "-r", classic], stdin=b"x")
        self.assertEqual(p.returncode, 1)
        err = p.stderr.decode().splitlines()
        self.assertEqual(len(err), 1, err)
        self.assertIn("can't mix post-quantum and classic recipients", err[0])
        self.assertIn(classic[:12], err[0])
        self.assertEqual(p.stdout, b"")


if __name__ == "__main__":
    unittest.main()
