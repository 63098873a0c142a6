#!/usr/bin/env python3
"""The whole vars chain with post-quantum hybrid keys (issue 14).

  1. varseal keygen --pq: age-keygen -pq's format (created, public key
     comment, AGE-SECRET-KEY-PQ-1 line), the public key on standard error
     when the output is no terminal; varseal pubkey of it.
  2. varseal machine keygen --pq: the machine's age1pq1 key (1,959
     characters, one line) in the spec, its identity kept in the store;
     a classic machine key beside post-quantum admins refused up front.
  3. `kind: age-keypair` with `pq: true`: a hybrid pair generated, set
     (the recipient derived from the identity) and checked; `pq:` anywhere
     else refused at its line and column.
  4. The chain with hybrid admin and machine keys: generate, check (the
     manifests hold whole 1,959-character recipients), get, set, edit with a
     scripted $EDITOR, rekey after adding a post-quantum admin (header only:
     the payload bytes unchanged), varinject --dry-run, install, and the
     identity from a systemd credential. typage (npm age-encryption) opens
     what the chain sealed, as the independent implementation: Debian's age
     1.1 has no hybrid keys.
  5. The mixing rule: admins, a machine, a shared generator whose recipients
     mix post-quantum and classic keys are refused by the spec check with
     the line and column and the classic recipients named; varseal encrypt
     refuses such a set with one line naming the classic ones.

Run as `python3 tests/pq_chain_test.py` with VARGEN, VARSEAL and VARINJECT
set. Standard library, and typage (tests/typage.py) where noted.
"""
import os
import re
import shutil
import stat
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
import typage  # noqa: E402
from testkit import VARINJECT, VARSEAL, describe, read, run, write  # noqa: E402
from vars_test import VarsCase, header_and_payload  # noqa: E402

AGE = shutil.which("age")
PQ_RECIPIENT_RE = re.compile(r"^age1pq1[02-9ac-hj-np-z]{1952}$")
PQ_IDENTITY_RE = re.compile(r"^AGE-SECRET-KEY-PQ-1[02-9AC-HJ-NP-Z]{58}$")
CLASSIC_RECIPIENT_RE = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
CREATED_RE = re.compile(r"^# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")
SPEC_ERROR_RE = re.compile(r"^(vargen|varseal): error: vars\.yaml:(\d+):(\d+): (.+)$")


def line_col(text, needle, nth=0):
    """1-based (line, column) of the nth occurrence of needle in text."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


class PQCase(VarsCase):
    """VarsCase with post-quantum keys."""

    def pq_key(self, name):
        """varseal keygen --pq -o NAME.key; (path, recipient)."""
        path = os.path.join(self.dir, name + ".key")
        p = self.varseal("keygen", "--pq", "-o", path)
        recipient = self.varseal("pubkey", path).stdout.decode().strip()
        self.assertRegex(recipient, PQ_RECIPIENT_RE)
        self.assertEqual(p.stderr.decode(), "Public key: %s\n" % recipient)
        return path, recipient

    def pq_admins(self, *names):
        for n in names:
            path, rec = self.pq_key(n)
            setattr(self, n, path)
            setattr(self, n + "_r", rec)

    def spec_error(self, p, tool="vargen"):
        """(line, column, message) of a one-line spec error."""
        line = self.assert_one_line_error(p, tool)
        m = SPEC_ERROR_RE.match(line)
        self.assertTrue(m, line)
        return int(m.group(2)), int(m.group(3)), m.group(4)


# ---- 1. varseal keygen --pq ----------------------------------------------------------

class Keygen(PQCase):
    def test_to_a_pipe(self):
        p = self.varseal("keygen", "--pq")
        lines = p.stdout.decode().split("\n")
        self.assertEqual(len(lines), 4, p.stdout)
        self.assertEqual(lines[3], "")
        self.assertRegex(lines[0], CREATED_RE)
        self.assertTrue(lines[1].startswith("# public key: "), lines[1])
        recipient = lines[1][len("# public key: "):]
        self.assertRegex(recipient, PQ_RECIPIENT_RE)
        self.assertEqual(len(recipient), 1959)
        self.assertRegex(lines[2], PQ_IDENTITY_RE)
        # age-keygen: the public key on standard error when the output is
        # not a terminal.
        self.assertEqual(p.stderr.decode(), "Public key: %s\n" % recipient)
        key = write(os.path.join(self.dir, "k"), p.stdout)
        self.assertEqual(self.varseal("pubkey", key).stdout.decode(), recipient + "\n")
        # Another run, another key.
        self.assertNotEqual(self.varseal("keygen", "--pq").stdout.split(b"\n")[2], lines[2])

    def test_to_a_file(self):
        path, recipient = self.pq_key("admin")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        text = read(path).decode()
        self.assertIn("\n# public key: %s\n" % recipient, text)
        self.assertRegex(text.splitlines()[2], PQ_IDENTITY_RE)
        # Never overwritten.
        p = self.varseal("keygen", "--pq", "-o", path, expect=1)
        self.assertIn("already exists", p.stderr.decode())
        self.assertEqual(read(path).decode(), text)

    def test_classic_by_default(self):
        out = self.varseal("keygen").stdout.decode().splitlines()
        self.assertRegex(out[1][len("# public key: "):], CLASSIC_RECIPIENT_RE)

    def test_pubkey_of_several(self):
        pq, pq_r = self.pq_key("pq")
        classic, classic_r = self.key("classic")
        both = write(os.path.join(self.dir, "both"), read(pq) + read(classic))
        self.assertEqual(self.varseal("pubkey", both).stdout.decode(),
                         "%s\n%s\n" % (pq_r, classic_r))


# ---- 2. varseal machine keygen --pq ------------------------------------------------------

MACHINE_SPEC = """\
admins:
  alice: @A@
machines:
  web1:
    generators: [api]
  web2:
    generators: [api]
generators:
  api:
    files:
      token: {kind: random}
"""


class MachineKeygen(PQCase):
    def setUp(self):
        super().setUp()
        self.pq_admins("alice")
        self.write_spec(MACHINE_SPEC, a=self.alice_r)

    def test_pq_machine_key(self):
        p = self.varseal("machine", "keygen", "--pq", "web1")
        spec = read(self.spec).decode()
        keys = re.findall(r"^    key: (\S+)$", spec, re.M)
        self.assertEqual(len(keys), 1, spec)
        self.assertRegex(keys[0], PQ_RECIPIENT_RE)
        self.assertIn(keys[0], p.stdout.decode())
        ident = self.machine_key("web1")
        text = read(ident).decode()
        self.assertIn("# public key: %s\n" % keys[0], text)
        self.assertRegex(text.splitlines()[-1], PQ_IDENTITY_RE)
        self.assertEqual(self.varseal("pubkey", ident).stdout.decode().strip(), keys[0])
        # The kept key restores a lost key: line (a post-quantum one too).
        write(self.spec, spec.replace("    key: %s\n" % keys[0], ""), 0o644)
        self.varseal("machine", "keygen", "-i", self.alice, "web1")
        self.assertIn("    key: %s\n" % keys[0], read(self.spec).decode())

    def test_classic_machine_key_beside_pq_admins_refused(self):
        before = read(self.spec)
        p = self.varseal("machine", "keygen", "web1", expect=1)
        line = self.assert_one_line_error(p, "varseal")
        self.assertIn("post-quantum", line)
        self.assertIn("--pq", line)
        self.assertEqual(read(self.spec), before)
        self.assertFalse(os.path.exists(self.vars))

    def test_pq_machine_key_beside_classic_admins_refused(self):
        self.admins("carol")
        self.write_spec(MACHINE_SPEC, a=self.carol_r)
        before = read(self.spec)
        p = self.varseal("machine", "keygen", "--pq", "web1", expect=1)
        line = self.assert_one_line_error(p, "varseal")
        self.assertIn("classic", line)
        self.assertIn(self.carol_r[:20], line)
        self.assertEqual(read(self.spec), before)


# ---- 3. age-keypair with pq: true ----------------------------------------------------------

PAIR_SPEC = """\
admins:
  alice: @A@
machines:
  web1:
    generators: [pqid, classicid]
generators:
  pqid:
    kind: age-keypair
    pq: true
  classicid:
    kind: age-keypair
    pq: false
"""


class PairKind(PQCase):
    def setUp(self):
        super().setUp()
        self.pq_admins("alice")
        self.write_spec(PAIR_SPEC, a=self.alice_r)
        self.varseal("machine", "keygen", "--pq", "web1")

    def get(self, target):
        return self.varseal("get", "-i", self.alice, "web1", target).stdout

    def test_generated_pairs(self):
        self.vargen("generate")
        ident, rec = self.get("pqid/identity").decode(), self.get("pqid/recipient").decode()
        self.assertRegex(ident, PQ_IDENTITY_RE)
        self.assertRegex(rec, PQ_RECIPIENT_RE)
        key = write(os.path.join(self.dir, "pq.key"), ident + "\n")
        self.assertEqual(self.varseal("pubkey", key).stdout.decode(), rec + "\n")
        self.assertRegex(self.get("classicid/recipient").decode(), CLASSIC_RECIPIENT_RE)
        self.assertTrue(self.get("classicid/identity").startswith(b"AGE-SECRET-KEY-1"))
        self.vargen("check", "-i", self.alice)

    def test_set_derives_the_recipient(self):
        self.vargen("generate")
        path, rec = self.pq_key("given")
        self.varseal("set", "web1", "pqid/identity", stdin=read(path))
        self.assertEqual(self.get("pqid/recipient").decode(), rec)
        self.assertRegex(self.get("pqid/identity").decode(), PQ_IDENTITY_RE)
        self.vargen("check", "-i", self.alice)
        # A classic identity is no post-quantum pair's, and the reverse.
        classic, _ = self.key("classic")
        p = self.varseal("set", "web1", "pqid/identity", stdin=read(classic), expect=1)
        self.assertIn("AGE-SECRET-KEY-PQ-1", self.assert_one_line_error(p, "varseal"))
        p = self.varseal("set", "web1", "classicid/identity", stdin=read(path), expect=1)
        self.assertIn("AGE-SECRET-KEY-1", self.assert_one_line_error(p, "varseal"))
        self.assertEqual(self.get("pqid/recipient").decode(), rec)

    def test_pq_changes_the_hash(self):
        self.vargen("generate")
        spec = read(self.spec).decode()
        write(self.spec, spec.replace("pq: true", "pq: false"), 0o644)
        self.vargen("check", expect=4)
        states = self.states("list")
        self.assertEqual(states["web1/pqid/identity"], ("secret", "stale"))
        self.assertEqual(states["web1/pqid/recipient"], ("value", "stale"))
        self.assertEqual(states["web1/classicid/identity"], ("secret", "ok"))
        # generate makes the pair again when told, classic now.
        self.vargen("generate", "--regenerate", "--machine", "web1", "--generator", "pqid",
                    "--yes")
        self.assertRegex(self.get("pqid/recipient").decode(), CLASSIC_RECIPIENT_RE)
        self.vargen("check", "-i", self.alice)

    def test_pq_refused_elsewhere(self):
        # (spec, where the error points, at the value or at the key).
        for spec, needle in (
                (PAIR_SPEC.replace("    pq: false\n", "    pq: maybe\n"), "maybe"),
                (PAIR_SPEC.replace("kind: age-keypair\n    pq: false",
                                   "kind: wireguard\n    pq: false"), "pq: false"),
                (PAIR_SPEC.replace("    kind: age-keypair\n    pq: false\n",
                                   "    pq: false\n    files:\n      x: {kind: random}\n"),
                 "pq: false")):
            with self.subTest(needle=needle):
                self.write_spec(spec, a=self.alice_r)
                line, col, msg = self.spec_error(self.vargen("check", expect=1))
                self.assertEqual((line, col), line_col(spec, needle), msg)
                self.assertIn("pq", msg)


# ---- 4. the chain --------------------------------------------------------------------------

CHAIN_SPEC = """\
admins:
  alice: @A@
machines:
  web1:
    generators: [api, db]
    credentials:
      API-TOKEN: api/token
      DB-PASS: db/password
  web2:
    generators: [db]
generators:
  api:
    files:
      token: {kind: random, owner: root, group: root, mode: "0400"}
      note: {kind: uuid, secret: false}
  db:
    share: true
    files:
      password: {kind: password, length: 24}
"""


class Chain(PQCase):
    def setUp(self):
        super().setUp()
        self.pq_admins("alice", "bob")
        self.write_spec(CHAIN_SPEC, a=self.alice_r)
        self.varseal("machine", "keygen", "--pq", "web1", "web2")
        self.web1 = self.machine_key("web1")
        self.web2 = self.machine_key("web2")
        self.vargen("generate")

    def get(self, target, owner="web1", key=None):
        return self.varseal("get", "-i", key or self.alice, owner, target).stdout

    def test_generate_check_get(self):
        p = self.vargen("check")
        self.assertIn("check: ", p.stdout.decode())
        token = self.get("api/token")
        self.assertEqual(len(token), 44)
        self.assertEqual(self.get("db/password", "shared", self.web2),
                         self.get("db/password", "shared", self.web1))
        # Every secret is sealed to hybrid stanzas only, and typage opens it
        # with the machine's identity and the admin's.
        data = read(self.path("web1", "api", "token"))
        header, _ = header_and_payload(data)
        stanzas = [l for l in header.split(b"\n") if l.startswith(b"-> ")]
        self.assertEqual(len(stanzas), 2, header[:200])
        self.assertTrue(all(s.startswith(b"-> mlkem768x25519 ") for s in stanzas))
        self.assertEqual(typage.decrypt(self.web1, data).stdout, token)
        self.assertEqual(typage.decrypt(self.alice, data).stdout, token)
        # Debian 12's age (1.1) has no hybrid keys: it cannot, as expected.
        if AGE:
            p = run([AGE, "-d", "-i", self.web1, self.path("web1", "api", "token")])
            self.assertNotEqual(p.returncode, 0, describe(p))
            self.assertEqual(p.stdout, b"")
        # The manifests hold the whole recipients.
        manifest = read(self.path("shared", "db", "password", "recipients")).decode()
        self.assertEqual(sorted(manifest.splitlines()),
                         sorted([self.alice_r] + self.machine_recipients("web1", "web2")))
        self.assertTrue(all(len(l) == 1959 for l in manifest.splitlines()), manifest[:100])

    def machine_recipients(self, *machines):
        spec = read(self.spec).decode()
        return [re.search(r"^  %s:\n    key: (\S+)$" % m, spec, re.M).group(1)
                for m in machines]

    def test_set_and_edit(self):
        self.varseal("set", "web1", "api/token", stdin=b"hand-made")
        self.assertEqual(self.get("api/token"), b"hand-made")
        runtime = tempfile.mkdtemp(prefix="pq_chain_test.", dir="/dev/shm")
        self.addCleanup(shutil.rmtree, runtime, True)
        os.chmod(runtime, 0o700)
        editor = write(os.path.join(self.dir, "editor.sh"),
                       "#!/bin/sh\nprintf edited > \"$1\"\n", 0o755)
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime, EDITOR=editor)
        env.pop("VISUAL", None)
        p = run([VARSEAL, "edit", "-i", self.alice, "web1", "api/token"], cwd=self.dir, env=env)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(self.get("api/token"), b"edited")
        self.assertEqual(typage.decrypt(self.web1, read(self.path("web1", "api", "token")))
                         .stdout, b"edited")

    def test_rekey_header_only_after_adding_a_pq_admin(self):
        files = [self.path("web1", "api", "token"), self.path("shared", "db", "password")]
        before = {f: header_and_payload(read(f)) for f in files}
        spec = read(self.spec).decode()
        write(self.spec, spec.replace("  alice: %s\n" % self.alice_r,
                                      "  alice: %s\n  bob: %s\n" % (self.alice_r, self.bob_r)),
              0o644)
        self.vargen("check", expect=4)  # wrong-recipients
        self.varseal("rekey", "-i", self.alice)
        self.vargen("check")
        for f, stanzas in zip(files, (3, 4)):  # alice, bob and web1 (and web2)
            header, payload = header_and_payload(read(f))
            self.assertEqual(payload, before[f][1], "%s: payload changed" % f)
            self.assertNotEqual(header, before[f][0])
            self.assertEqual(header.count(b"\n-> mlkem768x25519 "), stanzas, f)
            self.assertEqual(header.count(b"\n-> "), stanzas, f)
        token = self.get("api/token", key=self.bob)
        self.assertEqual(typage.decrypt(self.bob, read(files[0])).stdout, token)
        self.assertEqual(self.get("api/token", key=self.web1), token)

    def test_varinject(self):
        shm = tempfile.mkdtemp(prefix="pq_chain_test.", dir="/dev/shm")
        self.addCleanup(shutil.rmtree, shm, True)
        launch = ["--machine", "web1", "--credentials-dir", shm, "--hypervisor", "qemu",
                  "--dry-run", "--", "qemu-system-x86_64", "-machine", "q35"]
        p = run([VARINJECT, "-i", self.web1] + launch, cwd=self.dir)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("API-TOKEN", p.stdout.decode() + p.stderr.decode())
        # install, with the identity as a file and as a systemd credential
        # (the launch too).
        token = self.get("api/token")
        password = self.get("db/password", "shared")
        creds = os.path.join(shm, "creds")
        os.mkdir(creds, 0o700)
        shutil.copyfile(self.web1, os.path.join(creds, "machine-key"))
        os.chmod(os.path.join(creds, "machine-key"), 0o400)
        p = run([VARINJECT, "--identity-credential", "machine-key"] + launch, cwd=self.dir,
                env=dict(os.environ, CREDENTIALS_DIRECTORY=creds))
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("API-TOKEN", p.stdout.decode() + p.stderr.decode())
        for how, args, env in (
                ("file", ["-i", self.web1], None),
                ("credential", ["--identity-credential", "machine-key"],
                 dict(os.environ, CREDENTIALS_DIRECTORY=creds))):
            with self.subTest(identity=how):
                target = os.path.join(shm, "target-" + how)
                p = run([VARINJECT, "install", "--machine", "web1"] + args + [target],
                        cwd=self.dir, env=env)
                self.assertEqual(p.returncode, 0, describe(p))
                self.assertEqual(read(os.path.join(target, "api", "token")), token)
                self.assertEqual(read(os.path.join(target, "db", "password")), password)
                self.assertEqual(stat.S_IMODE(os.stat(os.path.join(target, "api", "token"))
                                              .st_mode), 0o400)
        # Another machine's hybrid key opens nothing of web1's.
        p = run([VARINJECT, "install", "--machine", "web1", "-i", self.web2,
                 os.path.join(shm, "target-wrong")], cwd=self.dir)
        self.assertEqual(p.returncode, 3, describe(p))


class Migration(PQCase):
    """A classic store moved to post-quantum keys as docs/spec.md says: one
    spec edit (post-quantum admins, the machines' key: lines gone), machine
    keygen --pq --force, rekey with the old admin's key."""

    def test_classic_store_to_pq(self):
        self.admins("carol")
        self.pq_admins("alice")
        self.write_spec(CHAIN_SPEC, a=self.carol_r)
        self.varseal("machine", "keygen", "web1", "web2")
        self.vargen("generate")
        files = [self.path("web1", "api", "token"), self.path("shared", "db", "password")]
        before = {f: header_and_payload(read(f)) for f in files}
        token = self.varseal("get", "-i", self.carol, "web1", "api/token").stdout
        spec = re.sub(r"\n    key: \S+", "", read(self.spec).decode())
        write(self.spec, spec.replace(self.carol_r, self.alice_r), 0o644)
        self.varseal("machine", "keygen", "--pq", "--force", "web1", "web2")
        plan = self.varseal("rekey", "--plan", expect=4).stdout.decode()
        self.assertIn("age1pq1", plan)
        self.assertTrue(all(len(l) < 400 for l in plan.splitlines()), plan[:500])
        self.varseal("rekey", "-i", self.carol)
        self.vargen("check", "-i", self.alice)
        web1 = self.machine_key("web1")
        for f in files:
            header, payload = header_and_payload(read(f))
            self.assertEqual(payload, before[f][1], f)
            stanzas = [l for l in header.split(b"\n") if l.startswith(b"-> ")]
            self.assertTrue(stanzas and all(l.startswith(b"-> mlkem768x25519 ")
                                            for l in stanzas), f)
        self.assertEqual(typage.decrypt(web1, read(files[0])).stdout, token)
        p = self.varseal("get", "-i", self.carol, "web1", "api/token", expect=3)
        self.assertEqual(p.stdout, b"")


# ---- 5. the mixing rule --------------------------------------------------------------------

class Mixing(PQCase):
    def setUp(self):
        super().setUp()
        self.pq_admins("alice")
        self.admins("carol")

    def test_machine_key_classic_beside_pq_admins(self):
        spec = self.write_spec(MACHINE_SPEC.replace(
            "  web1:\n", "  web1:\n    key: @C@\n"), a=self.alice_r, c=self.carol_r)
        line, col, msg = self.spec_error(self.vargen("check", expect=1))
        self.assertEqual((line, col), line_col(spec, self.carol_r))
        self.assertIn("machine 'web1'", msg)
        self.assertIn("classic", msg)
        self.assertIn(self.carol_r[:16], msg)
        self.assertIn("post-quantum", msg)
        # Every tool reads the spec so: varseal too.
        line2, col2, _ = self.spec_error(self.varseal("get", "-i", self.alice, "web1",
                                                      "api/token", expect=1), "varseal")
        self.assertEqual((line2, col2), (line, col))

    def test_admins_mixed(self):
        spec = self.write_spec("admins:\n  alice: @A@\n  carol: @C@\nmachines: {}\n"
                               "generators: {}\n", a=self.alice_r, c=self.carol_r)
        line, col, msg = self.spec_error(self.vargen("check", expect=1))
        self.assertEqual((line, col), line_col(spec, "carol:"))
        self.assertIn("admin 'carol'", msg)
        self.assertIn("classic", msg)
        self.assertIn(self.carol_r[:16], msg)

    def test_shared_generator_without_admins(self):
        _, pq_machine = self.pq_key("m1")
        spec = self.write_spec(
            "admins: {}\nmachines:\n  web1:\n    key: @P@\n    generators: [db]\n"
            "  web2:\n    key: @C@\n    generators: [solo]\n  web3:\n    key: @C@\n"
            "    generators: [db]\ngenerators:\n  solo:\n    files:\n"
            "      x: {kind: random}\n  db:\n    share: true\n    files:\n"
            "      x: {kind: random}\n",
            p=pq_machine, c=self.carol_r)
        line, col, msg = self.spec_error(self.vargen("check", expect=1))
        self.assertEqual((line, col), line_col(spec, "db:\n    share"))
        self.assertIn("generator 'db'", msg)
        self.assertIn("web3", msg)
        self.assertIn("classic", msg)

    def test_all_pq_and_all_classic_are_fine(self):
        _, pq1 = self.pq_key("m1")
        _, pq2 = self.pq_key("m2")
        _, classic = self.key("m3")
        keyed = MACHINE_SPEC.replace("  web1:\n", "  web1:\n    key: @P@\n").replace(
            "  web2:\n", "  web2:\n    key: @Q@\n")
        self.write_spec(keyed, a=self.alice_r, p=pq1, q=pq2)
        self.vargen("generate")
        self.vargen("check")
        shutil.rmtree(self.vars)
        self.write_spec(keyed, a=self.carol_r, p=self.carol_r, q=classic)
        self.vargen("generate")
        self.vargen("check")

    def test_modulus_check_in_the_spec(self):
        bad = testkit.failing_modulus(self.alice_r)
        for spec in ("admins:\n  alice: @B@\nmachines: {}\ngenerators: {}\n",
                     MACHINE_SPEC.replace("  web1:\n", "  web1:\n    key: @B@\n")):
            with self.subTest(spec=spec[:30]):
                spec = self.write_spec(spec, a=self.alice_r, b=bad)
                line, col, msg = self.spec_error(self.vargen("check", expect=1))
                self.assertEqual((line, col), line_col(spec, bad))
                self.assertIn("modulus check", msg)
                self.assertLess(len(msg), 1000)

    def test_varseal_encrypt_names_the_classic_recipients(self):
        _, other = self.key("dave")
        p = self.varseal("encrypt", "-r", self.alice_r, "-r", self.carol_r, "-r", other,
                         stdin=b"x", expect=1)
        line = self.assert_one_line_error(p, "varseal")
        self.assertIn("can't mix post-quantum and classic recipients", line)
        self.assertIn(self.carol_r[:12], line)
        self.assertIn(other[:12], line)
        self.assertNotIn(self.alice_r[:12], line)
        self.assertEqual(p.stdout, b"")


if __name__ == "__main__":
    unittest.main()
