#!/usr/bin/env python3
"""varseal set's input, and key pairs kept consistent (issue 12).

- On a terminal, `varseal set` asks without echo, names what it sets, asks
  twice (a mismatch is asked again) and stores exactly what was typed, with
  no newline. From a pipe it stores the bytes as they come; --strip-newline
  drops one trailing line ending; an empty value is refused unless
  --allow-empty.
- The files of the built-in pair kinds (wireguard: private/public,
  age-keypair: identity/recipient): setting the private half checks it is a
  key of its kind and recomputes the public half in the same commit (the
  expected public halves come from the real `wg pubkey` and `age-keygen -y`);
  setting the public half alone is refused; nothing is written on refusal.
- vargen check verifies the pairs: a public half that is not a valid key is
  `pair-mismatch` without any key; with -i KEY the private half is opened
  and a valid public key that is not its own is `pair-mismatch` too (exit 4,
  with a hint, in the text and the --json output).

Terminal runs go through tests/ptyrun.py. Run as `python3
tests/pairs_test.py` with VARGEN and VARSEAL set. Standard library only.
"""
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from ptyrun import run_pty  # noqa: E402
from testkit import VARGEN, VARSEAL, checked, describe, read, run, write  # noqa: E402
from vars_test import VarsCase  # noqa: E402

WG = shutil.which("wg")
AGE_KEYGEN = shutil.which("age-keygen")

# Bounds for runs that would otherwise wait forever (a prompt never shown).
PTY_TIMEOUT = 60

SPEC = """\
admins:
  alice: @A@
machines:
  web1:
    generators: [wg, agekey, api, stripe]
generators:
  wg:
    kind: wireguard
  agekey:
    kind: age-keypair
  api:
    files:
      token: {kind: random}
      host: {kind: uuid, secret: false}
  stripe:
    share: true
    files:
      token: {kind: random}
"""

ROW_RE = re.compile(r"^(\S+)\t(secret|value|key|machine|generator|leftover)\t([a-z-]+)$")


def rows(text):
    """{name: state} of list/check output (the summary line skipped)."""
    out = {}
    for line in text.splitlines():
        if line.startswith("check: "):
            continue
        m = ROW_RE.match(line)
        if not m:
            raise AssertionError("unexpected row %r" % line)
        out[m.group(1)] = m.group(3)
    return out


def wg_genkey():
    return checked([WG, "genkey"]).stdout


def wg_pubkey(private):
    return checked([WG, "pubkey"], stdin=private).stdout.strip()


class PairsCase(VarsCase):
    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(SPEC, a=self.alice_r)
        self.varseal("machine", "keygen", "web1")
        self.vargen("generate")

    def get(self, target, owner="web1"):
        return self.varseal("get", "-i", self.alice, owner, target).stdout

    def store_bytes(self):
        """Every file of the store, by path: to show that nothing changed."""
        return {rel: data for rel, _, data in testkit.walk_entries(self.vars)}

    def set_tty(self, owner, target, answers, *extra):
        """varseal set with its standard input the terminal."""
        cmd = ["sh", "-c", 'exec "$@" </dev/tty', "sh", VARSEAL, "set", "-f", self.spec,
               *extra, owner, target]
        return run_pty(cmd, answers, timeout=PTY_TIMEOUT)

    def check(self, *args, expect=0):
        p = self.vargen("check", *args, expect=expect)
        return rows(p.stdout.decode()), p

    def commit_record(self, gen, owner="web1"):
        return os.path.join(self.vars, "per-machine", owner, gen, ".commit")


# ---- 1. varseal set on a terminal ------------------------------------------------------

class SetOnTerminal(PairsCase):
    SECRET = b"s3cr3t-Typed-At-The-Terminal"

    def test_hidden_asked_twice_stored_without_newline(self):
        rc, tty, err, left = self.set_tty("web1", "api/token", [
            (b"web1 api/token (hidden): ", self.SECRET),
            (b"web1 api/token (again): ", self.SECRET)])
        self.assertEqual((rc, left), (0, []), (tty, err))
        self.assertNotIn(self.SECRET, tty, "the typed secret was echoed")
        self.assertNotIn(self.SECRET, err)
        self.assertEqual(tty.count(b"(hidden): "), 1, tty)
        self.assertEqual(tty.count(b"(again): "), 1, tty)
        self.assertEqual(self.get("api/token"), self.SECRET)
        self.assertEqual(rows(self.vargen("list").stdout.decode())["web1/api/token"], "hand-set")

    def test_mismatch_is_asked_again(self):
        rc, tty, err, left = self.set_tty("web1", "api/token", [
            (b"web1 api/token (hidden): ", b"first-try"),
            (b"web1 api/token (again): ", b"first-typo"),
            (b"web1 api/token (hidden): ", self.SECRET),
            (b"web1 api/token (again): ", self.SECRET)])
        self.assertEqual((rc, left), (0, []), (tty, err))
        self.assertIn(b"differ", tty)
        for typed in (b"first-try", b"first-typo", self.SECRET):
            self.assertNotIn(typed, tty)
        self.assertEqual(tty.count(b"(hidden): "), 2, tty)
        self.assertEqual(self.get("api/token"), self.SECRET)

    def test_public_value_is_shown_and_asked_once(self):
        rc, tty, err, left = self.set_tty("web1", "api/host", [
            (b"web1 api/host (shown): ", b"web1.example.org")])
        self.assertEqual((rc, left), (0, []), (tty, err))
        self.assertIn(b"web1.example.org", tty, "a public value is echoed")
        self.assertNotIn(b"(again)", tty)
        self.assertEqual(self.get("api/host"), b"web1.example.org")

    def test_shared_generator_is_named_shared(self):
        rc, tty, err, left = self.set_tty("shared", "stripe/token", [
            (b"shared stripe/token (hidden): ", self.SECRET),
            (b"shared stripe/token (again): ", self.SECRET)])
        self.assertEqual((rc, left), (0, []), (tty, err))
        self.assertNotIn(self.SECRET, tty)
        self.assertEqual(self.get("stripe/token", "shared"), self.SECRET)

    @unittest.skipUnless(WG, "wireguard-tools (wg) not installed")
    def test_wireguard_private_typed_recomputes_public(self):
        private = wg_genkey().strip()
        rc, tty, err, left = self.set_tty("web1", "wg/private", [
            (b"web1 wg/private (hidden): ", private),
            (b"web1 wg/private (again): ", private)])
        self.assertEqual((rc, left), (0, []), (tty, err))
        self.assertNotIn(private, tty)
        self.assertEqual(self.get("wg/private"), private)
        self.assertEqual(self.get("wg/public"), wg_pubkey(private))
        self.check()


# ---- 2. varseal set from a pipe --------------------------------------------------------

class SetFromPipe(PairsCase):
    def test_bytes_as_they_come(self):
        self.varseal("set", "web1", "api/token", stdin=b"x\n")
        self.assertEqual(self.get("api/token"), b"x\n")

    def test_strip_newline(self):
        for given, stored in ((b"x\n", b"x"), (b"x\r\n", b"x"), (b"x\n\n", b"x\n"),
                              (b"x", b"x"), (b"a\nb\n", b"a\nb")):
            with self.subTest(given=given):
                self.varseal("set", "--strip-newline", "web1", "api/token", stdin=given)
                self.assertEqual(self.get("api/token"), stored)

    def test_empty_value_refused_unless_allowed(self):
        before = self.store_bytes()
        for given, extra in ((b"", ()), (b"\n", ("--strip-newline",))):
            with self.subTest(given=given):
                p = self.varseal("set", *extra, "web1", "api/token", stdin=given, expect=None)
                line = self.assert_one_line_error(p, "varseal")
                self.assertIn("empty", line)
                self.assertIn("--allow-empty", line)
                self.assertEqual(self.store_bytes(), before)
        self.varseal("set", "--allow-empty", "web1", "api/token", stdin=b"")
        self.assertEqual(self.get("api/token"), b"")


# ---- 3. key pairs set by hand ----------------------------------------------------------

class SetPairs(PairsCase):
    def assert_refused(self, args, stdin, *words):
        before = self.store_bytes()
        p = self.varseal("set", *args, stdin=stdin, expect=None)
        line = self.assert_one_line_error(p, "varseal")
        for w in words:
            self.assertIn(w, line)
        self.assertEqual(self.store_bytes(), before, "a refused set wrote to the store")
        return line

    def test_not_a_key_is_refused(self):
        self.assert_refused(("web1", "wg/private"), b"notakey", "WireGuard private key",
                            "44")
        self.assert_refused(("web1", "wg/private"), b"A" * 43 + b"=\n\n", "WireGuard")
        self.assert_refused(("web1", "agekey/identity"), b"notakey", "AGE-SECRET-KEY-1")
        if WG:
            # A WireGuard key is not an age identity.
            self.assert_refused(("web1", "agekey/identity"), wg_genkey(), "AGE-SECRET-KEY-1")
        self.check()

    def test_public_half_is_refused(self):
        pub = read(self.path("web1", "wg", "public", "value"))
        line = self.assert_refused(("web1", "wg/public"), pub, "wg/private")
        self.assertIn("public half", line)
        recipient = read(self.path("web1", "agekey", "recipient", "value"))
        self.assert_refused(("web1", "agekey/recipient"), recipient, "agekey/identity")

    @unittest.skipUnless(WG, "wireguard-tools (wg) not installed")
    def test_wireguard_private_recomputes_public(self):
        old_public = read(self.path("web1", "wg", "public", "value"))
        private = wg_genkey()  # as wg prints it: with a newline
        self.assertTrue(private.endswith(b"\n"))
        self.varseal("set", "web1", "wg/private", stdin=private)
        self.assertEqual(self.get("wg/private"), private.strip(), "stored as vargen makes it")
        public = self.get("wg/public")
        self.assertEqual(public, wg_pubkey(private))
        self.assertNotEqual(public, old_public)
        states, _ = self.check("-i", self.alice)
        listed = rows(self.vargen("list").stdout.decode())
        self.assertEqual((listed["web1/wg/private"], listed["web1/wg/public"]),
                         ("hand-set", "hand-set"))

    @unittest.skipUnless(WG, "wireguard-tools (wg) not installed")
    def test_wireguard_unclamped_key_and_crlf(self):
        # wg clamps any 32 bytes when it uses them; so must the public half.
        raw = bytes([0xff] * 32)
        private = base64.b64encode(raw)
        self.varseal("set", "web1", "wg/private", stdin=private + b"\r\n")
        self.assertEqual(self.get("wg/private"), private)
        self.assertEqual(self.get("wg/public"), wg_pubkey(private + b"\n"))
        self.check("-i", self.alice)

    @unittest.skipUnless(AGE_KEYGEN, "age-keygen not installed")
    def test_age_identity_recomputes_recipient(self):
        keyfile = os.path.join(self.dir, "new.key")
        checked([AGE_KEYGEN, "-o", keyfile])
        recipient = checked([AGE_KEYGEN, "-y", keyfile]).stdout.strip()
        text = read(keyfile)  # age-keygen's file: comment lines, the key, a newline
        self.varseal("set", "web1", "agekey/identity", stdin=text)
        key_line = [l for l in text.splitlines() if l.startswith(b"AGE-SECRET-KEY-1")]
        self.assertEqual(self.get("agekey/identity"), key_line[0])
        self.assertEqual(self.get("agekey/recipient"), recipient)
        self.check("-i", self.alice)


# ---- 4. vargen check verifies pairs ----------------------------------------------------

class CheckPairs(PairsCase):
    def tamper_public(self, gen, f, data, fix_record):
        """Writes a public half by hand; with fix_record, also the commit
        record's hash of it, so that only the pair itself is wrong."""
        path = self.path("web1", gen, f, "value")
        write(path, data, 0o644)
        if fix_record:
            record = read(self.commit_record(gen)).decode().splitlines(True)
            sha = hashlib.sha256(data).hexdigest()
            out = [sha + " %s/value\n" % f if l.endswith(" %s/value\n" % f) else l
                   for l in record]
            self.assertNotEqual(out, record)
            write(self.commit_record(gen), "".join(out), 0o644)

    def assert_mismatch(self, name, *args):
        states, p = self.check(*args, expect=4)
        self.assertEqual(states.get(name), "pair-mismatch", describe(p))
        self.assertRegex(p.stderr.decode(), r"\n  pair-mismatch: 1 file: .*varseal set")
        j = json.loads(self.vargen("check", "--json", *args, expect=4).stdout)
        row = [r for r in j["rows"] if r["name"] == name]
        self.assertEqual(row[0]["state"], "pair-mismatch", j)
        self.assertIn("varseal set", row[0]["reason"])
        return states

    def test_invalid_public_key_without_identity(self):
        self.tamper_public("wg", "public", b"not a key", fix_record=True)
        self.assert_mismatch("web1/wg/public")
        self.assert_mismatch("web1/wg/public", "-i", self.alice)

    def test_invalid_recipient_without_identity(self):
        self.tamper_public("agekey", "recipient", b"age1notarecipient", fix_record=False)
        self.assert_mismatch("web1/agekey/recipient")

    @unittest.skipUnless(WG, "wireguard-tools (wg) not installed")
    def test_valid_but_other_public_key(self):
        other = wg_pubkey(wg_genkey())
        self.tamper_public("wg", "public", other, fix_record=True)
        # Without a key the pair cannot be compared: a valid public key passes.
        self.check()
        self.assert_mismatch("web1/wg/public", "-i", self.alice)
        # Setting the private half again recomputes the public half.
        private = self.get("wg/private")
        self.varseal("set", "web1", "wg/private", stdin=private)
        self.assertEqual(self.get("wg/public"), wg_pubkey(private))
        self.check("-i", self.alice)

    @unittest.skipUnless(AGE_KEYGEN, "age-keygen not installed")
    def test_valid_but_other_recipient(self):
        keyfile = os.path.join(self.dir, "other.key")
        checked([AGE_KEYGEN, "-o", keyfile])
        other = checked([AGE_KEYGEN, "-y", keyfile]).stdout.strip()
        self.tamper_public("agekey", "recipient", other, fix_record=True)
        self.check()
        self.assert_mismatch("web1/agekey/recipient", "-i", self.alice)

    def test_private_half_that_is_no_key(self):
        # What `printf notakey | varseal set web1 wg/private` used to store:
        # sealed properly, vouched for by the record, and no key at all.
        secret = self.path("web1", "wg", "private", "secret")
        manifest = read(self.path("web1", "wg", "private", "recipients")).decode().split()
        args = [a for r in manifest for a in ("-r", r)]
        checked([VARSEAL, "encrypt", *args, "-o", secret + ".new"], stdin=b"notakey")
        os.replace(secret + ".new", secret)
        record = read(self.commit_record("wg")).decode()
        sha = hashlib.sha256(read(secret)).hexdigest()
        record = re.sub(r"(?m)^[0-9a-f]{64} private/secret$", sha + " private/secret", record)
        write(self.commit_record("wg"), record, 0o644)
        self.check()  # without a key nothing tells
        states, p = self.check("-i", self.alice, expect=4)
        self.assertEqual(states, {"web1/wg/private": "corrupt"}, describe(p))

    def test_sound_store_passes_with_identity(self):
        _, p = self.check("-i", self.alice)
        self.assertRegex(p.stdout.decode(), r"^check: all \d+ ok\n$")

    def test_identity_that_opens_nothing(self):
        other, _ = self.key("stranger")
        p = self.vargen("check", "-i", other, expect=None)
        line = self.assert_one_line_error(p, "vargen", code=3)
        self.assertRegex(line, r"(wg/private|agekey/identity)")


if __name__ == "__main__":
    testkit.skip_unless_built(VARGEN, VARSEAL)
    unittest.main(verbosity=2)
