#!/usr/bin/env python3
"""Interoperability of varseal with the real age (Debian age 1.1.1).

Every test runs both tools in a fresh temporary directory and checks that
what one writes the other reads, byte for byte:

  * X25519 recipients, one and several, binary and armored, sizes around
    the 64 KiB chunk boundary, stdin/stdout pipes, files, '-' as a name,
    -R recipients files;
  * scrypt passphrases: varseal's --passphrase-file against age's
    terminal prompt, which is driven through a pseudo-terminal;
  * identity files written by either tool, read by the other.

Run as `python3 tests/interop_test.py`; the varseal binary comes from the
environment variable VARSEAL (ctest sets it). Standard library only.
"""
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from ptyrun import run_pty
import testkit
from testkit import VARSEAL, payload

AGE = shutil.which("age") or "/usr/bin/age"
AGE_KEYGEN = shutil.which("age-keygen") or "/usr/bin/age-keygen"

TIMEOUT = 120  # seconds, for any single process
SIZES = [0, 1, 65535, 65536, 65537, 3 * 1024 * 1024 + 5]
IO_MODES = ["pipes", "files", "dash"]

BINARY_MAGIC = b"age-encryption.org/v1\n"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"

RECIPIENT_RE = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")

def run(cmd, stdin=None, check=True, **kw):
    """Runs cmd with stdin bytes (an empty pipe if None); returns the
    CompletedProcess (bytes)."""
    return testkit.run(cmd, b"" if stdin is None else stdin, TIMEOUT, check, **kw)


write_file = testkit.write
read_file = testkit.read


class Tmp(testkit.TempDirCase):
    """A fresh temporary directory per test, and helpers on it."""

    PREFIX = "varseal-interop-"

    # Keys ----------------------------------------------------------------

    def age_keygen(self):
        """(identity file, recipient) made by age-keygen -o."""
        p = self.path("age-key.txt")
        r = run([AGE_KEYGEN, "-o", p])
        m = re.search(rb"Public key: (age1\S+)", r.stderr)
        self.assertIsNotNone(m, r.stderr)
        recip = run([AGE_KEYGEN, "-y", p]).stdout.decode().strip()
        self.assertEqual(recip, m.group(1).decode())
        return p, recip

    def varseal_keygen(self):
        """(identity file, recipient) made by varseal keygen -o."""
        p = self.path("varseal-key.txt")
        r = run([VARSEAL, "keygen", "-o", p])
        m = re.search(rb"Public key: (age1\S+)", r.stderr)
        self.assertIsNotNone(m, r.stderr)
        recip = m.group(1).decode()
        self.assertRegex(recip, RECIPIENT_RE)
        self.assertEqual(run([VARSEAL, "pubkey", p]).stdout.decode().strip(), recip)
        return p, recip

    # Encryption and decryption with either tool --------------------------

    @staticmethod
    def tool_cmd(tool, op):
        if tool == "varseal":
            return [VARSEAL, "encrypt" if op == "e" else "decrypt"]
        return [AGE, "-e" if op == "e" else "-d"]

    def _run_io(self, cmd, data, mode, what):
        """Runs cmd on data with the given I/O mode; returns its output."""
        if mode == "pipes":
            return run(cmd, stdin=data).stdout
        if mode == "dash":
            return run(cmd + ["-o", "-", "-"], stdin=data).stdout
        if mode == "files":
            src = write_file(self.path(what + ".in"), data)
            dst = self.path(what + ".out")
            r = run(cmd + ["-o", dst, src])
            self.assertEqual(r.stdout, b"", "output went to stdout despite -o")
            if cmd[0] == AGE and not os.path.exists(dst):
                # age 1.1.1 opens -o lazily, on the first byte written: an
                # empty result leaves no file. varseal must create it.
                return b""
            return read_file(dst)
        raise ValueError(mode)

    def encrypt(self, tool, args, data, armor=False, mode="files"):
        cmd = self.tool_cmd(tool, "e") + (["-a"] if armor else []) + list(args)
        ct = self._run_io(cmd, data, mode, tool + "-enc")
        if armor:
            self.assertTrue(ct.startswith(ARMOR_BEGIN), ct[:80])
            self.assertTrue(ct.rstrip(b"\r\n").endswith(b"-----END AGE ENCRYPTED FILE-----"))
        else:
            self.assertTrue(ct.startswith(BINARY_MAGIC), ct[:80])
        return ct

    def decrypt(self, tool, args, ct, mode="files"):
        cmd = self.tool_cmd(tool, "d") + list(args)
        return self._run_io(cmd, ct, mode, tool + "-dec")

    def decrypt_fails(self, tool, args, ct):
        src = write_file(self.path("ct"), ct)
        dst = self.path("should-not-exist")
        r = run(self.tool_cmd(tool, "d") + list(args) + ["-o", dst, src], check=False)
        self.assertNotEqual(r.returncode, 0, "%s decrypted with the wrong key" % tool)
        self.assertFalse(os.path.exists(dst), "a failed decryption left %s" % dst)
        return r


class KeygenFormatTest(Tmp):
    """The identity files varseal keygen writes."""

    def test_keygen_file_format_and_mode(self):
        p = os.path.join(self.dir, "key.txt")
        r = run([VARSEAL, "keygen", "-o", p])
        self.assertEqual(r.stdout, b"")
        text = read_file(p).decode()
        lines = text.split("\n")
        self.assertTrue(text.endswith("\n"))
        self.assertEqual(len(lines), 4, text)  # three lines and the final ""
        self.assertTrue(lines[0].startswith("# created: "), lines[0])
        self.assertRegex(lines[0][len("# created: "):],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")
        self.assertTrue(lines[1].startswith("# public key: age1"), lines[1])
        self.assertTrue(lines[2].startswith("AGE-SECRET-KEY-1"), lines[2])
        self.assertRegex(lines[2], r"^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$")
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600)
        recip = lines[1][len("# public key: "):]
        self.assertRegex(recip, RECIPIENT_RE)
        self.assertIn(("Public key: " + recip).encode(), r.stderr)
        self.assertEqual(run([VARSEAL, "pubkey", p]).stdout.decode(), recip + "\n")

    def test_keygen_refuses_to_overwrite(self):
        p = os.path.join(self.dir, "key.txt")
        run([VARSEAL, "keygen", "-o", p])
        before = read_file(p)
        st = os.stat(p)
        r = run([VARSEAL, "keygen", "-o", p], check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"already exists", r.stderr)
        self.assertEqual(read_file(p), before)
        self.assertEqual(os.stat(p).st_ino, st.st_ino)
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600)

    def test_keygen_to_stdout(self):
        r = run([VARSEAL, "keygen"])
        lines = r.stdout.decode().splitlines()
        self.assertEqual(len(lines), 3)
        self.assertTrue(lines[2].startswith("AGE-SECRET-KEY-1"))
        self.assertIn(lines[1][len("# public key: "):].encode(), r.stderr)
        # age-keygen -y reads it from standard input too.
        self.assertEqual(run([AGE_KEYGEN, "-y"], stdin=r.stdout).stdout.decode().strip(),
                         lines[1][len("# public key: "):])

    def test_keys_are_fresh(self):
        a = read_file(self.varseal_keygen()[0])
        b = read_file(self.varseal_keygen()[0])
        self.assertNotEqual(a.splitlines()[2], b.splitlines()[2])


class IdentityFileTest(Tmp):
    """Identity files written by one tool, read by the other."""

    def test_varseal_pubkey_reads_age_keygen_file(self):
        p, recip = self.age_keygen()
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode) & 0o077, 0)
        out = run([VARSEAL, "pubkey", p]).stdout
        self.assertEqual(out, run([AGE_KEYGEN, "-y", p]).stdout)
        self.assertEqual(out.decode(), recip + "\n")
        # '-' and no argument both mean standard input.
        text = read_file(p)
        self.assertEqual(run([VARSEAL, "pubkey", "-"], stdin=text).stdout, out)
        self.assertEqual(run([VARSEAL, "pubkey"], stdin=text).stdout, out)

    def test_age_keygen_y_reads_varseal_file(self):
        p, recip = self.varseal_keygen()
        out = run([AGE_KEYGEN, "-y", p]).stdout
        self.assertEqual(out, run([VARSEAL, "pubkey", p]).stdout)
        self.assertEqual(out.decode(), recip + "\n")

    def test_varseal_key_decrypts_in_age_and_back(self):
        p, recip = self.varseal_keygen()
        data = payload(65537)
        ct = self.encrypt("age", ["-r", recip], data)
        self.assertEqual(self.decrypt("varseal", ["-i", p], ct), data)
        ct = self.encrypt("varseal", ["-r", recip], data)
        self.assertEqual(self.decrypt("age", ["-i", p], ct), data)

    def test_multi_key_crlf_identity_file(self):
        (a1, r1), (v1, r2), (a2, r3) = self.age_keygen(), self.varseal_keygen(), self.age_keygen()
        keys = [read_file(f).decode().splitlines() for f in (a1, v1, a2)]
        # Comments, blank lines, both tools' headers, CRLF everywhere.
        lines = ["# several identities, CRLF line endings", ""]
        for k in keys:
            lines += k + [""]
        lines += ["# trailing comment"]
        text = "\r\n".join(lines).encode() + b"\r\n"
        self.assertIn(b"\r\n", text)
        multi = write_file(self.path("multi.txt"), text)
        want = "".join(r + "\n" for r in (r1, r2, r3)).encode()
        self.assertEqual(run([VARSEAL, "pubkey", multi]).stdout, want)
        self.assertEqual(run([AGE_KEYGEN, "-y", multi]).stdout, want)

        data = payload(65536)
        for recip in (r1, r2, r3):
            for enc, dec in (("varseal", "age"), ("age", "varseal")):
                with self.subTest(recipient=recip, enc=enc, dec=dec):
                    ct = self.encrypt(enc, ["-r", recip], data)
                    self.assertEqual(self.decrypt(dec, ["-i", multi], ct), data)

    def test_identity_permissions(self):
        p, recip = self.age_keygen()
        ct = self.encrypt("age", ["-r", recip], payload(1))
        os.chmod(p, 0o644)
        r = self.decrypt_fails("varseal", ["-i", p], ct)
        self.assertIn(b"permissions", r.stderr)
        self.assertEqual(
            self.decrypt("varseal", ["--insecure-permissions", "-i", p], ct), payload(1))


class RecipientTest(Tmp):
    """X25519 recipients, both directions."""

    def test_single_recipient_sizes_armor_io(self):
        # varseal's and age-keygen's keys alternate as the recipient.
        keys = [self.age_keygen(), self.varseal_keygen()]
        n = 0
        for size in SIZES:
            data = payload(size)
            for armor in (False, True):
                for mode in IO_MODES:
                    for enc, dec in (("varseal", "age"), ("age", "varseal")):
                        ident, recip = keys[n % 2]
                        n += 1
                        with self.subTest(size=size, armor=armor, io=mode, enc=enc, dec=dec):
                            ct = self.encrypt(enc, ["-r", recip], data, armor, mode)
                            got = self.decrypt(dec, ["-i", ident], ct, mode)
                            self.assertEqual(len(got), size)
                            self.assertEqual(got, data)

    def test_large_file_as_stdin_from_its_middle(self):
        # A large regular file is read out of order by the threads that
        # seal it (pread), from where the descriptor stands: a script may
        # hand over a file it has read part of. age must read exactly the
        # rest, and the descriptor must end at the file's end.
        ident, recip = self.varseal_keygen()
        data = payload(5 * 1024 * 1024 + 3)
        src, out = self.path("big"), self.path("big.age")
        write_file(src, data)
        for start in (0, 1000, 65536):
            with self.subTest(start=start), open(src, "rb") as f:
                os.lseek(f.fileno(), start, os.SEEK_SET)
                p = subprocess.run([VARSEAL, "encrypt", "-r", recip, "-o", out], stdin=f,
                                   capture_output=True, timeout=TIMEOUT)
                self.assertEqual(p.returncode, 0, testkit.describe(p))
                self.assertEqual(os.lseek(f.fileno(), 0, os.SEEK_CUR), len(data))
                got = run([AGE, "-d", "-i", ident, out]).stdout
                self.assertEqual(len(got), len(data) - start)
                self.assertEqual(got, data[start:])
                os.unlink(out)

    def test_varseal_binary_header_is_age(self):
        ident, recip = self.varseal_keygen()
        ct = self.encrypt("varseal", ["-r", recip], payload(1))
        header = ct.split(b"\n---")[0].split(b"\n")
        self.assertEqual(header[0], b"age-encryption.org/v1")
        self.assertEqual(sum(l.startswith(b"-> X25519 ") for l in header), 1)
        # Header, 16-byte nonce, one chunk of 1 byte plus its 16-byte tag.
        body = ct[ct.index(b"\n---") + 1:]
        body = body[body.index(b"\n") + 1:]
        self.assertEqual(len(body), 16 + 1 + 16)

    def test_several_recipients(self):
        keys = [self.age_keygen(), self.varseal_keygen(), self.age_keygen()]
        stranger, _ = self.varseal_keygen()
        args = []
        for _, recip in keys:
            args += ["-r", recip]
        for size in (0, 65537):
            data = payload(size)
            for armor in (False, True):
                for enc, dec in (("varseal", "age"), ("age", "varseal")):
                    with self.subTest(size=size, armor=armor, enc=enc, dec=dec):
                        ct = self.encrypt(enc, args, data, armor)
                        if enc == "varseal" and not armor:
                            stanzas = ct.split(b"\n---")[0].count(b"\n-> X25519 ")
                            self.assertEqual(stanzas, 3)
                        for ident, _ in keys:  # each identity alone
                            self.assertEqual(self.decrypt(dec, ["-i", ident], ct), data)
                        self.decrypt_fails(dec, ["-i", stranger], ct)
                        # The other tool agrees.
                        self.assertEqual(self.decrypt(enc, ["-i", keys[1][0]], ct), data)

    def test_recipients_files(self):
        keys = [self.age_keygen(), self.varseal_keygen(), self.age_keygen()]
        stranger, _ = self.age_keygen()
        text = (
            "# recipients for the interop test\n"
            "\n"
            "%s\n"
            "# a varseal key follows\n"
            "%s\n"
            "\n"
            "\n"
            "# and one more from age-keygen\n"
            "%s\n" % tuple(r for _, r in keys)
        ).encode()
        rfile = write_file(self.path("recipients.txt"), text, 0o644)
        # A second file, CRLF and no final newline, holding the first key again.
        rfile2 = write_file(self.path("recipients-crlf.txt"),
                            ("# crlf\r\n\r\n%s" % keys[0][1]).encode(), 0o644)
        data = payload(65535)
        for armor in (False, True):
            for enc, dec in (("varseal", "age"), ("age", "varseal")):
                for extra in ([], ["-R", rfile2]):
                    with self.subTest(armor=armor, enc=enc, dec=dec, extra=extra):
                        ct = self.encrypt(enc, ["-R", rfile] + extra, data, armor)
                        for ident, _ in keys:
                            self.assertEqual(self.decrypt(dec, ["-i", ident], ct), data)
                        self.decrypt_fails(dec, ["-i", stranger], ct)

    def test_recipients_file_mixed_with_r(self):
        k1, k2 = self.age_keygen(), self.varseal_keygen()
        rfile = write_file(self.path("r.txt"), ("# one\n\n%s\n" % k1[1]).encode(), 0o644)
        data = payload(1)
        for enc, dec in (("varseal", "age"), ("age", "varseal")):
            with self.subTest(enc=enc):
                ct = self.encrypt(enc, ["-R", rfile, "-r", k2[1]], data, mode="pipes")
                for ident, _ in (k1, k2):
                    self.assertEqual(self.decrypt(dec, ["-i", ident], ct, "pipes"), data)

    def test_identity_from_stdin_dash(self):
        ident, recip = self.age_keygen()
        data = payload(65536)
        ct_path = write_file(self.path("ct"), self.encrypt("age", ["-r", recip], data))
        out = self.path("pt")
        run([VARSEAL, "decrypt", "-i", "-", "-o", out, ct_path], stdin=read_file(ident))
        self.assertEqual(read_file(out), data)

    def test_long_identity_file_from_a_pipe(self):
        # A pipe's text is read in growing blocks from the scratch stack
        # (80 KiB): 20 KiB stays on it, 100 KiB outgrows it mid-read and
        # moves to guarded blocks of its own. The key is the file's last line.
        ident, recip = self.age_keygen()
        data = payload(100)
        ct_path = write_file(self.path("ct"), self.encrypt("age", ["-r", recip], data))
        for size in (20 * 1024, 100 * 1024):
            with self.subTest(size=size):
                comment = b"# " + b"x" * 77 + b"\n"
                text = comment * (size // len(comment)) + read_file(ident)
                out = self.path("pt%d" % size)
                run([VARSEAL, "decrypt", "-i", "-", "-o", out, ct_path], stdin=text)
                self.assertEqual(read_file(out), data)

    def test_identity_file_at_a_fifo_path(self):
        # A named pipe given by path (what -i <(pass show key) hands over):
        # read to its end like standard input, 100 KiB of it outgrowing the
        # scratch stack, the key on its last line.
        ident, recip = self.age_keygen()
        data = payload(100)
        ct_path = write_file(self.path("ct"), self.encrypt("age", ["-r", recip], data))
        comment = b"# " + b"x" * 77 + b"\n"
        text = comment * (100 * 1024 // len(comment)) + read_file(ident)
        fifo = self.path("key.fifo")
        os.mkfifo(fifo, 0o600)
        out = self.path("pt")
        proc = subprocess.Popen([VARSEAL, "decrypt", "-i", fifo, "-o", out, ct_path],
                                stderr=subprocess.PIPE)

        def feed():  # open blocks until varseal opens the other end
            with open(fifo, "wb") as w:
                w.write(text)

        # A daemon: if varseal fails before opening the pipe, the check
        # below reports it instead of the test waiting for a reader.
        threading.Thread(target=feed, daemon=True).start()
        _, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(read_file(out), data)


PASS = b"correct horse battery staple, 42!"
AGE_PASS_PROMPT = b"Enter passphrase"
AGE_CONFIRM_PROMPT = b"Confirm passphrase"


class PassphraseTest(Tmp):
    """scrypt: varseal's --passphrase-file against age's terminal prompt."""

    def passfile(self, secret=PASS, newline=True):
        return write_file(self.path("pass.txt"), secret + (b"\n" if newline else b""))

    def age_decrypt_pty(self, ct, secret=PASS):
        src = write_file(self.path("ct"), ct)
        dst = self.path("pt")
        rc, tty, err, left = run_pty([AGE, "-d", "-o", dst, src],
                                     [(AGE_PASS_PROMPT, secret)])
        self.assertEqual(left, [], "age never asked: %r %r" % (tty, err))
        self.assertEqual(rc, 0, "age -d failed: %r" % err)
        # age 1.1.1 creates -o only when it writes a byte (see _run_io).
        return read_file(dst) if os.path.exists(dst) else b""

    def age_encrypt_pty(self, data, armor=False):
        src = write_file(self.path("pt"), data)
        dst = self.path("ct")
        cmd = [AGE, "-e", "-p"] + (["-a"] if armor else []) + ["-o", dst, src]
        rc, tty, err, left = run_pty(
            cmd, [(AGE_PASS_PROMPT, PASS), (AGE_CONFIRM_PROMPT, PASS)])
        self.assertEqual(left, [], "age never asked: %r %r" % (tty, err))
        self.assertEqual(rc, 0, "age -p failed: %r" % err)
        ct = read_file(dst)
        self.assertTrue(ct.startswith(ARMOR_BEGIN if armor else BINARY_MAGIC))
        return ct

    @staticmethod
    def scrypt_log_n(ct):
        m = re.search(rb"\n-> scrypt \S+ (\d+)\n", ct)
        return int(m.group(1)) if m else None

    def test_varseal_passphrase_wf14_age_decrypts(self):
        pf = self.passfile()
        for size, armor, args in ((0, False, ["--passphrase-file", pf]),
                                  (65537, True, ["-p", "--passphrase-file", pf]),
                                  (65536, False, ["--passphrase-file", pf])):
            with self.subTest(size=size, armor=armor, args=args):
                data = payload(size)
                ct = self.encrypt("varseal", args + ["--work-factor", "14"], data, armor,
                                  mode="pipes")
                if not armor:
                    self.assertEqual(self.scrypt_log_n(ct), 14)
                self.assertEqual(self.age_decrypt_pty(ct), data)
                # varseal reads its own file back too.
                self.assertEqual(self.decrypt("varseal", ["--passphrase-file", pf], ct), data)

    def test_varseal_passphrase_default_wf18_age_decrypts(self):
        pf = self.passfile(newline=False)  # a final newline is optional
        data = payload(65537)
        ct = self.encrypt("varseal", ["--passphrase-file", pf], data)
        self.assertEqual(self.scrypt_log_n(ct), 18)
        self.assertEqual(ct.count(b"\n-> "), 1, "scrypt must be the only stanza")
        self.assertEqual(self.age_decrypt_pty(ct), data)

    def test_age_passphrase_varseal_decrypts(self):
        pf = self.passfile()
        bad = self.passfile(b"correct horse battery stapler, 42!")
        for size, armor in ((1, False), (65537, True)):
            with self.subTest(size=size, armor=armor):
                data = payload(size)
                ct = self.age_encrypt_pty(data, armor)
                if not armor:
                    self.assertEqual(self.scrypt_log_n(ct), 18)
                mode = "files" if armor else "pipes"
                self.assertEqual(self.decrypt("varseal", ["--passphrase-file", pf], ct, mode),
                                 data)
                if not armor:
                    # The wrong passphrase fails, saying so, writing nothing.
                    r = self.decrypt_fails("varseal", ["--passphrase-file", bad], ct)
                    self.assertIn(b"passphrase", r.stderr.lower())

    def test_wrong_passphrase(self):
        pf = self.passfile()
        data = payload(65535)
        ct = self.encrypt("varseal", ["--passphrase-file", pf, "--work-factor", "14"], data)
        for wrong in (b"Correct horse battery staple, 42!", PASS[:-1], PASS + b" "):
            with self.subTest(wrong=wrong):
                r = self.decrypt_fails("varseal", ["--passphrase-file", self.passfile(wrong)],
                                       ct)
                self.assertIn(b"passphrase", r.stderr.lower())
                r = run([VARSEAL, "decrypt", "--passphrase-file", self.passfile(wrong)],
                        stdin=ct, check=False)
                self.assertNotEqual(r.returncode, 0)
                self.assertEqual(r.stdout, b"", "plaintext leaked on a wrong passphrase")
                self.assertIn(b"passphrase", r.stderr.lower())
        # age agrees that it is wrong, and right.
        src = write_file(self.path("ct"), ct)
        dst = self.path("pt")
        rc, _, err, left = run_pty([AGE, "-d", "-o", dst, src],
                                   [(AGE_PASS_PROMPT, b"not it")])
        self.assertEqual(left, [])
        self.assertNotEqual(rc, 0)
        self.assertEqual(self.age_decrypt_pty(ct), data)


if __name__ == "__main__":
    for tool in (VARSEAL, AGE, AGE_KEYGEN):
        if not os.access(tool, os.X_OK):
            sys.exit("interop_test: %s is not an executable" % tool)
    print("varseal: %s; age: %s" % (VARSEAL, AGE), flush=True)
    unittest.main(verbosity=2)
