#!/usr/bin/env python3
"""SSH keys as recipients and identities, against the real age (1.1.1).

Every test works in a fresh temporary directory with keys made there by
ssh-keygen and age-keygen (nothing under /etc/ssh is read):

  1. interop both ways for ssh-ed25519 and ssh-rsa (3072-bit) keys:
     varseal encrypts (-r LINE, -R key.pub, -R authorized_keys with
     options and comments) and age decrypts with the private key; age
     encrypts (-R key.pub) and varseal decrypts; sizes 0, 1, 65537 and
     1 MiB, armored and binary;
  2. mixed recipients (X25519 + ssh-ed25519 + ssh-rsa) in one file, from
     either tool: each identity alone opens it with either tool;
  3. errors: one line `varseal: error: ...`, exit 1, no output file: the
     wrong key, a 1024-bit RSA recipient, an encrypted OpenSSH key, a
     truncated or malformed private key, a .pub with bad base64 or with a
     type word that disagrees with its blob, a wrong passphrase for a
     protected identity file, no passphrase source and no terminal;
  4. passphrase-protected identity files (varseal encrypt -p, age -p
     driven through a pseudo-terminal) accepted by -i with
     --passphrase-file;
  5. a vars store whose machine is named by its SSH host key and whose
     admin by an ssh-rsa key: vargen generate/check, the real age opens
     the secret with either key, rekey after adding an X25519 admin,
     varinject --dry-run with the host key, varinject install.

Run as `python3 tests/ssh_test.py`; binaries from VARSEAL, VARGEN and
VARINJECT. Standard library only.
"""
import base64
import functools
import os
import re
import shutil
import stat
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from ptyrun import run_pty
import testkit
from testkit import VARGEN, VARINJECT, VARSEAL, payload, read, write

AGE = shutil.which("age") or "/usr/bin/age"
AGE_KEYGEN = shutil.which("age-keygen") or "/usr/bin/age-keygen"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"

TIMEOUT = 60  # seconds, for any single process
SIZES = [0, 1, 65537, 1 << 20]

BINARY_MAGIC = b"age-encryption.org/v1\n"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
ERROR_PREFIX = "varseal: error: "

AGE_PASS_PROMPT = b"Enter passphrase (leave empty to autogenerate a secure one):"
AGE_CONFIRM_PROMPT = b"Confirm passphrase:"

run = functools.partial(testkit.run, timeout=TIMEOUT, check=True)
describe = functools.partial(testkit.describe, keep=2000)


def stanza_types(ct):
    """The stanza types of a binary age file's header, in order."""
    header = ct[:ct.index(b"\n--- ") + 1]
    return [line.split(b" ")[1].decode() for line in header.split(b"\n")
            if line.startswith(b"-> ")]


def split_header(ct):
    """(header up to and including the MAC line, payload) of a binary file."""
    at = ct.index(b"\n--- ")
    end = ct.index(b"\n", at + 1)
    return ct[:end + 1], ct[end + 1:]


class Tmp(testkit.TempDirCase):
    """A fresh temporary directory per test, and key helpers."""

    PREFIX = "varseal-ssh-"

    def ssh_keygen(self, kind, bits=None, passphrase="", comment=None, name=None):
        """(private key path, .pub line) made by ssh-keygen."""
        p = os.path.join(self.dir, name) if name else self.path("id_" + kind)
        cmd = [SSH_KEYGEN, "-q", "-t", kind, "-N", passphrase, "-f", p,
               "-C", comment or "%s-%d@test" % (kind, self._n)]
        if bits:
            cmd[4:4] = ["-b", str(bits)]
        run(cmd)
        os.chmod(p, 0o600)
        line = read(p + ".pub").decode().strip()
        self.assertTrue(line.startswith("ssh-%s " % ("rsa" if kind == "rsa" else kind)), line)
        return p, line

    def age_keygen(self):
        p = self.path("age-key.txt")
        run([AGE_KEYGEN, "-o", p])
        return p, run([AGE_KEYGEN, "-y", p]).stdout.decode().strip()

    def encrypt(self, tool, args, data, armor=False):
        """Ciphertext written by varseal or age into a file (-o)."""
        src = write(self.path("plain"), data)
        dst = self.path("ct")
        base = [VARSEAL, "encrypt"] if tool == "varseal" else [AGE, "-e"]
        p = run(base + (["-a"] if armor else []) + list(args) + ["-o", dst, src])
        self.assertEqual(p.stdout, b"")
        ct = read(dst)
        if armor:
            self.assertTrue(ct.startswith(ARMOR_BEGIN), ct[:80])
            self.assertTrue(ct.rstrip(b"\r\n").endswith(ARMOR_END), ct[-80:])
        else:
            self.assertTrue(ct.startswith(BINARY_MAGIC), ct[:80])
        return ct

    def decrypt(self, tool, args, ct):
        """Plaintext from varseal or age (to standard output: age 1.1.1
        writes no -o file at all for an empty plaintext)."""
        src = write(self.path("ct"), ct)
        base = [VARSEAL, "decrypt"] if tool == "varseal" else [AGE, "-d"]
        return run(base + list(args) + [src]).stdout

    def assert_error(self, p, out_dir, *patterns):
        """Exit 3 when no key or passphrase matched, 1 otherwise; exactly
        one stderr line `varseal: error: ...` matching every pattern, and
        nothing left in out_dir. Returns the line."""
        err = p.stderr.decode(errors="replace")
        no_match = any(w in err for w in ("no identity matched", "wrong passphrase"))
        self.assertEqual(p.returncode, 3 if no_match else 1, describe(p))
        self.assertTrue(err.endswith("\n"), describe(p))
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, describe(p))
        self.assertTrue(lines[0].startswith(ERROR_PREFIX), describe(p))
        for pat in patterns:
            self.assertRegex(lines[0], pat)
        self.assertEqual(p.stdout, b"", describe(p))
        if out_dir is not None:
            self.assertEqual(os.listdir(out_dir), [], "a failed run left output files")
        return lines[0]

    def out_dir(self):
        d = self.path("out")
        os.mkdir(d, 0o700)
        return d


# ---- 1. interop with age --------------------------------------------------

class SshInteropTest(Tmp):

    def _forms(self, line, kind):
        """The three ways of naming the key to varseal encrypt."""
        pub = write(self.path(kind + ".pub"), line + "\n", 0o644)
        ktype, blob = line.split()[:2]
        ak = write(self.path("authorized_keys"),
                   "# authorized_keys for the test\n\n"
                   "no-pty,command=\"x y\",from=\"10.0.0.1\" %s %s some comment here\n"
                   % (ktype, blob), 0o644)
        return {"-r line": ["-r", line], "-R .pub": ["-R", pub],
                "-R authorized_keys": ["-R", ak]}

    def _varseal_to_age(self, kind, bits):
        key, line = self.ssh_keygen(kind, bits)
        stanza = "ssh-ed25519" if kind == "ed25519" else "ssh-rsa"
        for form, args in self._forms(line, kind).items():
            for armor in (False, True):
                for size in SIZES:
                    with self.subTest(form=form, armor=armor, size=size):
                        data = payload(size)
                        ct = self.encrypt("varseal", args, data, armor)
                        if not armor:
                            self.assertEqual(stanza_types(ct), [stanza])
                        self.assertEqual(self.decrypt("age", ["-i", key], ct), data)

    def _age_to_varseal(self, kind, bits):
        key, line = self.ssh_keygen(kind, bits)
        pub = key + ".pub"
        stanza = "ssh-ed25519" if kind == "ed25519" else "ssh-rsa"
        for armor in (False, True):
            for size in SIZES:
                with self.subTest(armor=armor, size=size):
                    data = payload(size)
                    ct = self.encrypt("age", ["-R", pub], data, armor)
                    if not armor:
                        self.assertEqual(stanza_types(ct), [stanza])
                    self.assertEqual(self.decrypt("varseal", ["-i", key], ct), data)
                    # -o as well (varseal creates the file even when empty).
                    src = write(self.path("ct"), ct)
                    dst = self.path("pt")
                    run([VARSEAL, "decrypt", "-i", key, "-o", dst, src])
                    self.assertEqual(read(dst), data)

    def test_varseal_to_age_ed25519(self):
        self._varseal_to_age("ed25519", None)

    def test_varseal_to_age_rsa3072(self):
        self._varseal_to_age("rsa", 3072)

    def test_age_to_varseal_ed25519(self):
        self._age_to_varseal("ed25519", None)

    def test_age_to_varseal_rsa3072(self):
        self._age_to_varseal("rsa", 3072)


# ---- 2. mixed recipients ----------------------------------------------------

class MixedRecipientsTest(Tmp):

    def setUp(self):
        super().setUp()
        self.x_key, self.x_recip = self.age_keygen()
        self.ed_key, self.ed_line = self.ssh_keygen("ed25519")
        self.rsa_key, self.rsa_line = self.ssh_keygen("rsa", 3072)
        self.keys = {"x25519": self.x_key, "ssh-ed25519": self.ed_key, "ssh-rsa": self.rsa_key}

    def _each_key_opens(self, ct, data, tools=("age", "varseal")):
        for name, key in self.keys.items():
            for tool in tools:
                with self.subTest(key=name, tool=tool):
                    self.assertEqual(self.decrypt(tool, ["-i", key], ct), data)

    def test_varseal_encrypts_to_three_kinds(self):
        data = payload(65537)
        ct = self.encrypt("varseal", ["-r", self.x_recip, "-r", self.ed_line,
                                      "-R", self.rsa_key + ".pub"], data)
        self.assertEqual(sorted(stanza_types(ct)), ["X25519", "ssh-ed25519", "ssh-rsa"])
        self._each_key_opens(ct, data)
        # One -R file holding all three kinds, armored.
        rfile = write(self.path("recipients.txt"),
                      "# everyone\n%s\n%s\n%s\n" % (self.x_recip, self.ed_line, self.rsa_line))
        ct = self.encrypt("varseal", ["-R", rfile], data, armor=True)
        self._each_key_opens(ct, data)

    def test_age_encrypts_to_three_kinds(self):
        data = payload(1 << 20)
        for armor in (False, True):
            ct = self.encrypt("age", ["-r", self.x_recip, "-R", self.ed_key + ".pub",
                                      "-R", self.rsa_key + ".pub"], data, armor)
            if not armor:
                self.assertEqual(sorted(stanza_types(ct)),
                                 ["X25519", "ssh-ed25519", "ssh-rsa"])
            self._each_key_opens(ct, data, tools=("varseal",))

    def test_unrelated_keys_do_not_open_it(self):
        data = payload(1)
        ct = self.encrypt("varseal", ["-r", self.x_recip, "-r", self.ed_line,
                                      "-r", self.rsa_line], data)
        other_ed, _ = self.ssh_keygen("ed25519")
        other_x, _ = self.age_keygen()
        src = write(self.path("ct"), ct)
        for key in (other_ed, other_x):
            with self.subTest(key=key):
                p = run([VARSEAL, "decrypt", "-i", key, src], check=False)
                self.assert_error(p, None, "no identity matched")
        # Several -i, one of which matches: fine.
        self.assertEqual(run([VARSEAL, "decrypt", "-i", other_ed, "-i", other_x,
                              "-i", self.rsa_key, src]).stdout, data)


# ---- 3. errors ---------------------------------------------------------------

class ErrorsTest(Tmp):

    def setUp(self):
        super().setUp()
        self.ed_key, self.ed_line = self.ssh_keygen("ed25519")
        self.rsa_key, self.rsa_line = self.ssh_keygen("rsa", 2048)
        self.data = payload(65537)
        self.ct = write(self.path("ct.age"), self.encrypt(
            "varseal", ["-r", self.ed_line, "-r", self.rsa_line], self.data))

    def decrypt_fails(self, key_args, *patterns, extra=(), **kw):
        out = self.out_dir()
        dst = os.path.join(out, "plain")
        p = run([VARSEAL, "decrypt"] + list(key_args) + list(extra) + ["-o", dst, self.ct],
                check=False, **kw)
        return self.assert_error(p, out, *patterns)

    def encrypt_fails(self, recip_args, *patterns):
        out = self.out_dir()
        src = write(self.path("plain"), self.data)
        p = run([VARSEAL, "encrypt"] + list(recip_args) + ["-o", os.path.join(out, "ct"), src],
                check=False)
        return self.assert_error(p, out, *patterns)

    def test_wrong_ssh_key(self):
        for kind, bits in (("ed25519", None), ("rsa", 3072)):
            with self.subTest(kind=kind):
                other, _ = self.ssh_keygen(kind, bits)
                self.decrypt_fails(["-i", other], "no identity matched")
        # The right keys do open it (so the failures above are the keys').
        for key in (self.ed_key, self.rsa_key):
            self.assertEqual(run([VARSEAL, "decrypt", "-i", key, self.ct]).stdout, self.data)

    def test_rsa_1024_recipient_refused(self):
        key, line = self.ssh_keygen("rsa", 1024)
        self.encrypt_fails(["-r", line], "2048")
        line_err = self.encrypt_fails(["-R", key + ".pub"], "2048")
        self.assertIn(key + ".pub", line_err)
        # Also in an authorized_keys file next to a good key.
        ak = write(self.path("authorized_keys"), "%s\nno-pty %s\n" % (self.ed_line, line))
        self.encrypt_fails(["-R", ak], "2048", re.escape(ak) + ":2")

    def test_encrypted_openssh_key(self):
        key, line = self.ssh_keygen("ed25519", passphrase="pass")
        ct = write(self.path("ct.age"), self.encrypt("varseal", ["-r", line], self.data))
        self.ct = ct
        msg = self.decrypt_fails(["-i", key], re.escape(key), r"(?i)encrypted")
        self.assertTrue("ssh-keygen -p" in msg or "encrypt -p" in msg,
                        "the message does not say what to do: " + msg)
        # Doing what it says works: an unencrypted copy opens the file.
        copy = self.path("copy")
        shutil.copy(key, copy)
        os.chmod(copy, 0o600)
        run([SSH_KEYGEN, "-q", "-p", "-P", "pass", "-N", "", "-f", copy])
        self.assertEqual(run([VARSEAL, "decrypt", "-i", copy, ct]).stdout, self.data)
        # And so does the varseal encrypt -p route, the SSH key sealed by passphrase.
        pw = write(self.path("pw"), "hunter2\n")
        sealed = self.path("copy.age")
        run([VARSEAL, "encrypt", "-p", "--passphrase-file", pw, "--work-factor", "10",
             "-o", sealed, copy])
        os.chmod(sealed, 0o600)
        self.assertEqual(run([VARSEAL, "decrypt", "-i", sealed, "--passphrase-file", pw,
                              ct]).stdout, self.data)

    def test_truncated_private_key(self):
        for key in (self.ed_key, self.rsa_key):
            with self.subTest(key=os.path.basename(key)):
                text = read(key)
                half = write(self.path("half"), text[:len(text) // 2])
                self.decrypt_fails(["-i", half], re.escape(half), r"(?i)truncated")

    def test_malformed_private_key(self):
        bad = write(self.path("garbage"),
                    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
                    "b3BlbnNzaC1rZXktdjEAAAAA!!!!not*base64@@@@\n"
                    "~~~~ garbage ~~~~\n"
                    "-----END OPENSSH PRIVATE KEY-----\n")
        self.decrypt_fails(["-i", bad], re.escape(bad), r"(?i)malformed|base64")
        # Well-formed base64 of something that is not an openssh-key-v1 blob.
        junk = base64.b64encode(os.urandom(300)).decode()
        bad = write(self.path("garbage2"),
                    "-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n%s\n"
                    "-----END OPENSSH PRIVATE KEY-----\n" % (junk[:70], junk[70:]))
        self.decrypt_fails(["-i", bad], re.escape(bad), r"(?i)openssh")
        # A valid header whose key section is cut short inside the base64.
        lines = read(self.ed_key).decode().splitlines()
        body = "".join(lines[1:-1])
        raw = base64.b64decode(body)[:120]
        bad = write(self.path("short"),
                    "-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n"
                    "-----END OPENSSH PRIVATE KEY-----\n" % base64.b64encode(raw).decode())
        self.decrypt_fails(["-i", bad], re.escape(bad), r"(?i)malformed")

    def test_pub_with_bad_base64(self):
        ktype, blob, comment = self.ed_line.split()
        bad = write(self.path("bad.pub"), "%s %s!!%s %s\n" % (ktype, blob[:20], blob[22:], comment))
        msg = self.encrypt_fails(["-R", bad], r"(?i)base64")
        self.assertIn(bad + ":1", msg)
        self.encrypt_fails(["-r", "%s %s!!%s" % (ktype, blob[:20], blob[22:])], r"(?i)base64")

    def test_pub_type_disagrees_with_blob(self):
        mixed = write(self.path("mixed.pub"),
                      self.ed_line.replace("ssh-ed25519", "ssh-rsa", 1) + "\n")
        self.assertTrue(read(mixed).startswith(b"ssh-rsa AAAAC3NzaC1lZDI1NTE5"))
        self.encrypt_fails(["-R", mixed], r"(?i)disagree|mismatch|does not match")
        mixed = write(self.path("mixed2.pub"),
                      self.rsa_line.replace("ssh-rsa", "ssh-ed25519", 1) + "\n")
        self.encrypt_fails(["-R", mixed], r"(?i)disagree|mismatch|does not match")

    def _protected_identity(self):
        key = self.path("k")
        r = run([VARSEAL, "keygen", "-o", key])
        recip = re.search(rb"Public key: (age1\S+)", r.stderr).group(1).decode()
        pw = write(self.path("pw"), "the right one\n")
        prot = self.path("k.age")
        run([VARSEAL, "encrypt", "-p", "--passphrase-file", pw, "--work-factor", "10",
             "-o", prot, key])
        os.chmod(prot, 0o600)
        self.ct = write(self.path("ct.age"), self.encrypt("varseal", ["-r", recip], self.data))
        return prot, pw

    def test_wrong_passphrase_for_identity_file(self):
        prot, pw = self._protected_identity()
        wrong = write(self.path("wrong"), "the wrong one\n")
        self.decrypt_fails(["-i", prot, "--passphrase-file", wrong], "wrong passphrase",
                           re.escape(prot))
        # The right one works.
        self.assertEqual(run([VARSEAL, "decrypt", "-i", prot, "--passphrase-file", pw,
                              self.ct]).stdout, self.data)

    def test_protected_identity_without_passphrase_source(self):
        prot, _ = self._protected_identity()
        self.decrypt_fails(["-i", prot], re.escape("--passphrase-file"), re.escape(prot),
                           start_new_session=True)


class PubkeyOfSshKeyTest(Tmp):
    """varseal pubkey given an SSH private key: either a clear refusal, or
    a recipient the key can actually decrypt (and the same one every time).
    Never an age1... string made from bytes that are not an X25519 key."""

    def test_pubkey_of_ssh_keys(self):
        for kind, bits in (("ed25519", None), ("rsa", 3072)):
            with self.subTest(kind=kind):
                key, line = self.ssh_keygen(kind, bits)
                p = run([VARSEAL, "pubkey", key], check=False)
                if p.returncode != 0:
                    self.assert_error(p, None, re.escape(key))
                    continue
                out = p.stdout.decode()
                self.assertEqual(out, run([VARSEAL, "pubkey", key]).stdout.decode(),
                                 "varseal pubkey %s is not deterministic" % kind)
                recips = out.splitlines()
                self.assertEqual(len(recips), 1, out)
                data = payload(1)
                ct = self.encrypt("varseal", ["-r", recips[0]], data)
                src = write(self.path("ct"), ct)
                d = run([VARSEAL, "decrypt", "-i", key, src], check=False)
                self.assertEqual((d.returncode, d.stdout), (0, data),
                                 "%s's key does not open a file sealed to the recipient "
                                 "varseal pubkey printed for it (%s): %s"
                                 % (kind, recips[0], d.stderr.decode(errors="replace")))


# ---- 4. passphrase-protected identities ---------------------------------------

class ProtectedIdentityTest(Tmp):

    def setUp(self):
        super().setUp()
        self.key = os.path.join(self.dir, "k")
        r = run([VARSEAL, "keygen", "-o", self.key])
        self.recip = re.search(rb"Public key: (age1\S+)", r.stderr).group(1).decode()
        self.pw = write(os.path.join(self.dir, "pw"), "correct horse battery\n")
        self.data = payload(65537)
        self.ct = write(self.path("ct.age"),
                        self.encrypt("varseal", ["-r", self.recip], self.data))

    def test_varseal_protected_identity(self):
        prot = os.path.join(self.dir, "k.age")
        run([VARSEAL, "encrypt", "-p", "--passphrase-file", self.pw, "--work-factor", "12",
             "-o", prot, self.key])
        os.chmod(prot, 0o600)
        text = read(prot)
        self.assertTrue(text.startswith(BINARY_MAGIC))
        self.assertNotIn(b"AGE-SECRET-KEY-1", text)
        self.assertEqual(stanza_types(text), ["scrypt"])
        out = run([VARSEAL, "decrypt", "-i", prot, "--passphrase-file", self.pw,
                   self.ct]).stdout
        self.assertEqual(out, self.data)
        # To a file, and from a file of age's encrypted by age too.
        ct2 = write(self.path("ct2.age"), self.encrypt("age", ["-r", self.recip], self.data,
                                                       armor=True))
        dst = self.path("pt")
        run([VARSEAL, "decrypt", "-i", prot, "--passphrase-file", self.pw, "-o", dst, ct2])
        self.assertEqual(read(dst), self.data)

    def test_age_protected_identity(self):
        prot = os.path.join(self.dir, "k-by-age.age")
        rc, tty, err, unanswered = run_pty(
            [AGE, "-p", "-o", prot, self.key],
            [(AGE_PASS_PROMPT, b"correct horse battery"),
             (AGE_CONFIRM_PROMPT, b"correct horse battery")])
        self.assertEqual(rc, 0, "age -p failed: %r %r" % (tty, err))
        self.assertEqual(unanswered, [], tty)
        os.chmod(prot, 0o600)
        text = read(prot)
        self.assertEqual(stanza_types(text), ["scrypt"])
        out = run([VARSEAL, "decrypt", "-i", prot, "--passphrase-file", self.pw,
                   self.ct]).stdout
        self.assertEqual(out, self.data)
        # A wrong passphrase is told as such.
        wrong = write(self.path("wrong"), "correct horse\n")
        p = run([VARSEAL, "decrypt", "-i", prot, "--passphrase-file", wrong, self.ct],
                check=False)
        self.assert_error(p, None, "wrong passphrase")


# ---- 5. vars store with SSH keys ---------------------------------------------------

class VarsSshTest(Tmp):

    def setUp(self):
        super().setUp()
        self.host_key, self.host_line = self.ssh_keygen(
            "ed25519", comment="root@host1", name="ssh_host_ed25519_key")
        self.admin_key, self.admin_line = self.ssh_keygen(
            "rsa", 3072, comment="admin@example", name="admin_rsa_key")
        self.spec = os.path.join(self.dir, "vars.yaml")
        self.write_spec([("alice", self.admin_line)])
        self.secret = os.path.join(self.dir, "vars", "per-machine", "host1", "app",
                                   "token", "secret")
        self.manifest = os.path.join(os.path.dirname(self.secret), "recipients")

    def write_spec(self, admins):
        text = "admins:\n"
        for name, recip in admins:
            text += "  %s: \"%s\"\n" % (name, recip)
        text += ("machines:\n"
                 "  host1:\n"
                 "    key: \"%s\"\n"
                 "    generators: [app]\n"
                 "generators:\n"
                 "  app:\n"
                 "    files:\n"
                 "      token: { kind: random, length: 48 }\n" % self.host_line)
        write(self.spec, text, 0o644)

    def tool(self, cmd, check=True):
        return run(cmd, cwd=self.dir, check=check)

    def age_open(self, key):
        return run([AGE, "-d", "-i", key, self.secret]).stdout

    def test_store_with_ssh_keys(self):
        p = self.tool([VARGEN, "check"], check=False)
        self.assertNotEqual(p.returncode, 0, describe(p))
        self.assertIn(b"no store at", p.stderr)
        p = self.tool([VARGEN, "generate", "--plan"], check=False)
        self.assertEqual(p.returncode, 4, describe(p))
        self.assertIn(b"make\thost1/app/token\tmissing", p.stdout)
        self.tool([VARGEN, "generate"])
        p = self.tool([VARGEN, "check"])
        self.assertIn(b"all 1 ok", p.stdout + p.stderr)

        value = self.age_open(self.host_key)
        self.assertEqual(len(value), 64)
        self.assertEqual(len(base64.b64decode(value, validate=True)), 48)
        self.assertEqual(self.age_open(self.admin_key), value)
        self.assertEqual(sorted(stanza_types(read(self.secret))), ["ssh-ed25519", "ssh-rsa"])
        self.assertEqual(read(self.manifest).decode().splitlines(),
                         sorted([self.host_line, self.admin_line]))
        self.assertEqual(self.tool([VARSEAL, "get", "host1", "app/token", "-i",
                                    self.host_key]).stdout, value)

        # A second admin, an X25519 key: rekey with the RSA admin key.
        bob_key, bob_recip = self.age_keygen()
        self.write_spec([("alice", self.admin_line), ("bob", bob_recip)])
        p = self.tool([VARGEN, "check"], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"host1/app/token\tsecret\twrong-recipients", p.stdout)
        old_payload = split_header(read(self.secret))[1]
        self.tool([VARSEAL, "rekey", "-i", self.admin_key])
        self.tool([VARGEN, "check"])
        new = read(self.secret)
        self.assertEqual(split_header(new)[1], old_payload, "rekey changed the payload")
        self.assertEqual(sorted(stanza_types(new)), ["X25519", "ssh-ed25519", "ssh-rsa"])
        for key in (bob_key, self.host_key, self.admin_key):
            with self.subTest(key=os.path.basename(key)):
                self.assertEqual(self.age_open(key), value)
                self.assertEqual(self.tool([VARSEAL, "get", "host1", "app/token",
                                            "-i", key]).stdout, value)

        # varinject with the host key as the machine identity: --dry-run.
        p = self.tool([VARINJECT, "--machine", "host1", "-i", self.host_key,
                       "--credentials-dir", "/dev/shm", "--dry-run", "--",
                       "qemu-system-x86_64", "-machine", "q35"])
        out = p.stdout + p.stderr
        self.assertIn(b"qemu-system-x86_64 -machine q35", out)
        self.assertIn(b"-smbios type=11,path=", out)
        self.assertIn(b"<secret: %d bytes>" % len(value), out)
        self.assertNotIn(value, out)
        self.assertNotIn(value[:16], out)

        # varinject install into a fresh RAM directory.
        shm = tempfile.mkdtemp(prefix="varseal-ssh-", dir="/dev/shm")
        try:
            dest = os.path.join(shm, "secrets")
            self.tool([VARINJECT, "install", "--machine", "host1", "-i", self.host_key, dest])
            installed = os.path.join(dest, "app", "token")
            self.assertEqual(read(installed), value)
            self.assertEqual(stat.S_IMODE(os.stat(installed).st_mode) & 0o077, 0)
        finally:
            shutil.rmtree(shm)

    def test_wrong_host_key_is_refused(self):
        self.tool([VARGEN, "generate"])
        other, _ = self.ssh_keygen("ed25519")
        p = self.tool([VARSEAL, "get", "host1", "app/token", "-i", other], check=False)
        self.assertEqual(p.returncode, 3, describe(p))
        self.assertEqual(p.stdout, b"")
        self.assertIn(b"no identity matched", p.stderr)
        p = self.tool([VARINJECT, "--machine", "host1", "-i", other, "--credentials-dir",
                       "/dev/shm", "--dry-run", "--", "qemu-system-x86_64"], check=False)
        self.assertNotEqual(p.returncode, 0, describe(p))
        self.assertNotIn(b"<secret:", p.stdout)


if __name__ == "__main__":
    for tool in (VARSEAL, VARGEN, VARINJECT, AGE, AGE_KEYGEN, SSH_KEYGEN):
        if not os.access(tool, os.X_OK):
            sys.exit("missing %s" % tool)
    unittest.main(verbosity=2)
