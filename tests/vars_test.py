#!/usr/bin/env python3
"""End-to-end tests of vargen and varseal's vars commands on real stores.

Every test works in its own temporary directory: it writes a vars.yaml,
runs the built tools in that directory and checks the store they leave
with the real `age` (Debian's age 1.1.1):

   1. the seed scenario: check, machine keygen (comments kept), generate,
      list, check; every secret opens with the machine's key, alice's and
      bob's, and no other; values have the expected shape;
   2. idempotence: a second generate changes no byte, inode or mtime;
   3. --regenerate makes new values;
   4. a shared generator is stored once, sealed to every user and admin;
   5. dependencies ($in) and the built-in kinds (random, password, uuid,
      age-keypair, wireguard);
   6. prompts from --prompt NAME=@FILE, and a clear error without a tty;
   7. rekey after adding and removing an admin (payload kept), --rotate;
   8. stale detection (script, length) but not for mode/owner/group;
   9. bad specs: one line `vargen: error: vars.yaml:LINE:COL: ...`;
  10. a failing script leaves the store as it was;
  11. SIGKILL during generate and during rekey: never a corrupt store;
  12. varseal set/get round trips.

Run as `python3 tests/vars_test.py`; the binaries come from the
environment variables VARGEN and VARSEAL. Standard library only.
"""
import base64
import concurrent.futures
import fcntl
import hashlib
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import VARGEN, VARSEAL, describe, read, run, write  # noqa: E402

AGE = shutil.which("age") or "/usr/bin/age"
STRACE = testkit.STRACE

TIMEOUT = 120  # seconds, for any single process

RECIPIENT_RE = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
STATE_RE = re.compile(r"^([^/\t]+)/([^/\t]+)/([^/\t]+)\t(secret|value)\t"
                      r"(ok|missing|stale|wrong-recipients|no-key|corrupt|incomplete|hand-set|"
                      r"orphan)$")
SPEC_ERROR_RE = re.compile(r"^vargen: error: vars\.yaml:(\d+):(\d+): (.+)$")


# ---- helpers -----------------------------------------------------------------

def age_decrypt(keyfile, path):
    """(returncode, plaintext, stderr) of the real age."""
    p = run([AGE, "-d", "-i", keyfile, path])
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def header_and_payload(data):
    """Splits an age file after its header's `--- MAC` line."""
    at = data.index(b"\n--- ")
    end = data.index(b"\n", at + 1)
    return data[:end + 1], data[end + 1:]


def tree(root):
    """Every file under root: relative path -> (sha256, inode, mtime_ns, mode)."""
    out = {}
    if not os.path.isdir(root):
        return out
    for d, _, files in os.walk(root):
        for name in files:
            path = os.path.join(d, name)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (hashlib.sha256(read(path)).hexdigest(),
                                                st.st_ino, st.st_mtime_ns, stat.S_IMODE(st.st_mode))
    return out


def files_named(root, leaf):
    """Paths of every file called leaf under root, sorted."""
    out = []
    for d, _, files in os.walk(root):
        if leaf in files:
            out.append(os.path.join(d, leaf))
    return sorted(out)


def parse_states(text):
    """{owner/gen/file: (secret|value, state)} from list/check output."""
    return {name: (m.group(4), m.group(5)) for name, m in testkit.state_lines(text, STATE_RE)}


def b64_decode_strict(text, urlsafe=False):
    """Decodes base64 (padded) or base64url (padding optional), strictly."""
    if urlsafe:
        if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
            raise ValueError("not base64url: %r" % text)
        text = text.rstrip("=")
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(text) % 4:
        raise ValueError("base64 length %d is not a multiple of 4" % len(text))
    return base64.b64decode(text, validate=True)


# RFC 7748 X25519, to check that a WireGuard public key is its private key's.
_P = 2 ** 255 - 19


def x25519(k, u):
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    u = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x1, x2, z2, x3, z3, swap = u, 1, 0, u, 1, 0
    for t in reversed(range(255)):
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a, b = (x2 + z2) % _P, (x2 - z2) % _P
        aa, bb = a * a % _P, b * b % _P
        e = (aa - bb) % _P
        c, d = (x3 + z3) % _P, (x3 - z3) % _P
        da, cb = d * a % _P, c * b % _P
        x3 = (da + cb) ** 2 % _P
        z3 = x1 * (da - cb) ** 2 % _P
        x2 = aa * bb % _P
        z2 = e * (aa + 121665 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


SEED_SPEC = """\
# The seed scenario: one VM, three API secrets.
# Comments and layout here must survive `varseal machine keygen`.
admins:
  alice: @ALICE@   # first admin
  bob: @BOB@

machines:
  # the test VM; its key is added by varseal machine keygen
  test-vm:
    generators: [test-vm-secrets]
    credentials:
      HOST-API-KEY: test-vm-secrets/api-key   # what the guest sees

generators:
  test-vm-secrets:
    files:
      api-key: {secret: true, mode: "0400"}
      db-password: {secret: true, mode: "0400"}
      jwt-secret: {secret: true, mode: "0400"}   # longer
    script: |
      openssl rand -base64 32 | tr -d '\\n' > "$out/api-key"
      openssl rand -base64 32 | tr -d '\\n' > "$out/db-password"
      openssl rand -base64 64 | tr -d '\\n' > "$out/jwt-secret"
"""
SEED_FILES = {"api-key": 32, "db-password": 32, "jwt-secret": 64}


class VarsCase(unittest.TestCase):
    """A temporary directory with admin keys, and the tools run in it."""

    maxDiff = None

    def setUp(self):
        self.dir = testkit.temp_dir(self, "vars_test.")
        self.vars = os.path.join(self.dir, "vars")
        self.spec = os.path.join(self.dir, "vars.yaml")

    # -- processes

    def vargen(self, *args, stdin=None, expect=0, **kw):
        p = run([VARGEN] + list(args), cwd=self.dir, stdin=stdin, **kw)
        if expect is not None:
            self.assertEqual(p.returncode, expect, describe(p))
        return p

    def varseal(self, *args, stdin=None, expect=0, **kw):
        p = run([VARSEAL] + list(args), cwd=self.dir, stdin=stdin, **kw)
        if expect is not None:
            self.assertEqual(p.returncode, expect, describe(p))
        return p

    def assert_one_line_error(self, p, tool="vargen", code=1):
        """Exit code, and exactly one `tool: error: ...` line on stderr."""
        self.assertEqual(p.returncode, code, describe(p))
        err = p.stderr.decode(errors="replace")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, "expected one line on stderr, got %r" % err)
        self.assertTrue(err.endswith("\n"), repr(err))
        self.assertTrue(lines[0].startswith(tool + ": error: "), repr(lines[0]))
        return lines[0]

    # -- keys and specs

    def key(self, name):
        """A fresh identity file made by varseal keygen; (path, recipient)."""
        path = os.path.join(self.dir, name + ".key")
        p = self.varseal("keygen", "-o", path)
        recipient = self.varseal("pubkey", path).stdout.decode().strip()
        self.assertRegex(recipient, RECIPIENT_RE)
        self.assertIn(recipient, p.stderr.decode() + p.stdout.decode())
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode) & 0o077, 0)
        return path, recipient

    def admins(self, *names):
        for n in names:
            path, rec = self.key(n)
            setattr(self, n, path)
            setattr(self, n + "_r", rec)

    def write_spec(self, text, **subst):
        for k, v in subst.items():
            text = text.replace("@%s@" % k.upper(), v)
        self.assertNotIn("@", text.replace("=@", ""), "unsubstituted placeholder")
        write(self.spec, text, 0o644)
        return text

    def machine_keygen(self, machine):
        """varseal machine keygen, then the machine's identity file."""
        self.varseal("machine", "keygen", machine)
        return self.machine_key(machine)

    def machine_key(self, machine, admin=None):
        p = self.varseal("machine", "key", machine, "-i", admin or self.alice)
        path = os.path.join(self.dir, "machine-%s.key" % machine)
        write(path, p.stdout)
        return path

    # -- the store

    def path(self, owner, gen, f, leaf="secret"):
        if owner == "shared":
            return os.path.join(self.vars, "shared", gen, f, leaf)
        return os.path.join(self.vars, "per-machine", owner, gen, f, leaf)

    def open_secret(self, keyfile, path):
        rc, out, err = age_decrypt(keyfile, path)
        self.assertEqual(rc, 0, "age -d -i %s %s: %s" % (keyfile, path, err))
        return out

    def assert_closed(self, keyfile, path):
        rc, out, err = age_decrypt(keyfile, path)
        self.assertNotEqual(rc, 0, "%s opened %s" % (keyfile, path))
        self.assertEqual(out, b"")
        self.assertIn("no identity matched", err)

    def states(self, cmd="list", expect=0, *args):
        p = self.vargen(cmd, *args, expect=expect)
        return parse_states(p.stdout.decode())

    def expected_manifest(self, *recipients):
        return ("".join(r + "\n" for r in sorted(set(recipients)))).encode()


# ---- 1. the seed scenario ----------------------------------------------------

class T01SeedScenario(VarsCase):
    def test_seed_end_to_end(self):
        self.admins("alice", "bob")
        original = self.write_spec(SEED_SPEC, alice=self.alice_r, bob=self.bob_r)

        # No store yet: check says so (it is not an empty store).
        p = self.vargen("check", expect=None)
        self.assertIn("no store at", self.assert_one_line_error(p))

        # generate without a machine key: it says what is missing and
        # why, makes the store, writes no secret and exits 1.
        p = self.vargen("generate", expect=4)
        self.assertIn("creating a new store at", p.stderr.decode())
        self.assertIn("varseal machine keygen test-vm", p.stdout.decode())
        self.assertEqual(files_named(self.vars, "secret"), [])
        p = self.vargen("check", expect=4)
        states = parse_states(p.stdout.decode())
        self.assertEqual(sorted(states), ["test-vm/test-vm-secrets/" + f for f in SEED_FILES])
        for name, (kind, state) in states.items():
            self.assertEqual(kind, "secret", name)
            self.assertEqual(state, "missing", name)
        self.assertIn("need attention", p.stderr.decode())

        # machine keygen: the key goes into the spec, nothing else changes.
        p = self.varseal("machine", "keygen", "test-vm")
        edited = read(self.spec).decode()
        key_lines = [l for l in edited.splitlines(True) if l not in original.splitlines(True)]
        self.assertEqual(len(key_lines), 1, edited)
        m = re.fullmatch(r"( +)key: (age1\S+)\n", key_lines[0])
        self.assertTrue(m, repr(key_lines[0]))
        machine_r = m.group(2)
        self.assertRegex(machine_r, RECIPIENT_RE)
        self.assertEqual(edited.replace(key_lines[0], "", 1), original,
                         "the spec changed beyond the key line")
        # The key line belongs to test-vm (indented under it, before the next key).
        lines = edited.splitlines()
        at = lines.index(key_lines[0].rstrip("\n"))
        self.assertEqual(lines[at - 1], "  test-vm:")
        self.assertGreater(len(m.group(1)), 2)
        self.assertEqual(stat.S_IMODE(os.stat(self.spec).st_mode), 0o644)
        self.assertIn(machine_r, p.stdout.decode())
        # A second keygen refuses to replace it.
        p = self.varseal("machine", "keygen", "test-vm", expect=None)
        self.assert_one_line_error(p, "varseal")
        self.assertEqual(read(self.spec).decode(), edited)

        # The kept machine key: sealed to the admins, and its recipient is the spec's.
        machine_key = self.machine_key("test-vm")
        self.assertEqual(self.varseal("pubkey", machine_key).stdout.decode().strip(), machine_r)
        by_alice = read(machine_key)
        self.assertEqual(self.varseal("machine", "key", "test-vm", "-i", self.bob).stdout,
                         by_alice)
        self.assertIn(b"AGE-SECRET-KEY-1", by_alice)
        mk = os.path.join(self.vars, "machine-keys", "test-vm", "secret")
        self.assertEqual(read(os.path.join(self.vars, "machine-keys", "test-vm", "recipients")),
                         self.expected_manifest(self.alice_r, self.bob_r))

        # generate, list, check.
        p = self.vargen("generate")
        self.assertIn("test-vm/test-vm-secrets", p.stdout.decode())
        states = self.states("list")
        self.assertEqual(states, {"test-vm/test-vm-secrets/" + f: ("secret", "ok")
                                  for f in SEED_FILES})
        p = self.vargen("check")
        self.assertEqual(p.stdout.decode(), "check: all 4 ok\n")  # and the kept key

        # Every sealed file opens with the machine key, alice's and bob's only.
        stranger, _ = self.key("stranger")
        manifest = self.expected_manifest(self.alice_r, self.bob_r, machine_r)
        for f, size in SEED_FILES.items():
            secret = self.path("test-vm", "test-vm-secrets", f)
            self.assertFalse(os.path.exists(self.path("test-vm", "test-vm-secrets", f, "value")))
            self.assertTrue(read(secret).startswith(b"age-encryption.org/v1\n"))
            self.assertEqual(read(self.path("test-vm", "test-vm-secrets", f, "recipients")),
                             manifest)
            values = {self.open_secret(k, secret) for k in (machine_key, self.alice, self.bob)}
            self.assertEqual(len(values), 1, f)
            value = values.pop()
            self.assertNotIn(b"\n", value)
            self.assertEqual(len(value), 4 * ((size + 2) // 3), f)
            self.assertEqual(len(b64_decode_strict(value.decode())), size, f)
            self.assert_closed(stranger, secret)
            # varseal get agrees with age.
            self.assertEqual(self.varseal("get", "test-vm", "test-vm-secrets/" + f,
                                          "-i", self.bob).stdout, value)
        self.assert_closed(stranger, mk)
        self.assert_closed(machine_key, mk)
        # The three values differ.
        vals = [self.open_secret(self.alice, self.path("test-vm", "test-vm-secrets", f))
                for f in SEED_FILES]
        self.assertEqual(len(set(vals)), 3)
        # The hash record is 64 hex digits and a newline.
        rec = read(os.path.join(self.vars, "per-machine", "test-vm", "test-vm-secrets",
                                ".generator"))
        self.assertRegex(rec.decode(), r"^[0-9a-f]{64}\n$")


# ---- 2. and 3. idempotence and --regenerate ---------------------------------

class T02IdempotenceAndRegenerate(VarsCase):
    def setUp(self):
        super().setUp()
        self.admins("alice", "bob")
        self.write_spec(SEED_SPEC, alice=self.alice_r, bob=self.bob_r)
        self.machine = self.machine_keygen("test-vm")
        self.vargen("generate")

    def values(self):
        return {f: self.open_secret(self.alice, self.path("test-vm", "test-vm-secrets", f))
                for f in SEED_FILES}

    def test_second_generate_changes_nothing(self):
        before = tree(self.vars)
        spec_before = read(self.spec)
        self.assertGreaterEqual(len(before), 9)
        time.sleep(0.02)  # so that a rewrite would show in mtimes
        p = self.vargen("generate")
        self.assertEqual(p.stdout.decode(), "generate: everything is up to date\n")
        self.assertEqual(tree(self.vars), before)
        self.assertEqual(read(self.spec), spec_before)
        # And with an explicit machine and generator selection too.
        self.vargen("generate", "--machine", "test-vm", "--generator", "test-vm-secrets")
        self.assertEqual(tree(self.vars), before)

    def test_regenerate_changes_values(self):
        old = self.values()
        manifests = {f: read(self.path("test-vm", "test-vm-secrets", f, "recipients"))
                     for f in SEED_FILES}
        p = self.vargen("generate", "--regenerate", "--all", "--yes")
        self.assertIn("generated test-vm/test-vm-secrets", p.stdout.decode())
        new = self.values()
        for f, size in SEED_FILES.items():
            self.assertNotEqual(old[f], new[f], f)
            self.assertEqual(len(b64_decode_strict(new[f].decode())), size)
            self.assertEqual(self.open_secret(self.machine,
                                              self.path("test-vm", "test-vm-secrets", f)), new[f])
            self.assertEqual(read(self.path("test-vm", "test-vm-secrets", f, "recipients")),
                             manifests[f])
        self.vargen("check")


# ---- 4. shared generators ----------------------------------------------------

class T04Shared(VarsCase):
    SPEC = """\
admins:
  alice: @ALICE@
  bob: @BOB@
machines:
  web:
    generators: [cluster-token, web-only]
  db:
    generators: [cluster-token]
  lonely:
    generators: [web-only]
generators:
  cluster-token:
    share: true
    files:
      token: {kind: random, length: 24}
      id: {kind: uuid, secret: false}
  web-only:
    files:
      pw: {kind: password}
"""

    def test_shared_stored_once(self):
        self.admins("alice", "bob")
        self.write_spec(self.SPEC, alice=self.alice_r, bob=self.bob_r)
        keys = {m: self.machine_keygen(m) for m in ("web", "db", "lonely")}
        recips = {m: self.varseal("pubkey", k).stdout.decode().strip() for m, k in keys.items()}
        self.vargen("generate")
        states = self.states("check", 0)
        self.assertEqual(states, {})
        states = self.states("list")
        self.assertEqual(states["shared/cluster-token/token"], ("secret", "ok"))
        self.assertEqual(states["shared/cluster-token/id"], ("value", "ok"))
        self.assertNotIn("web/cluster-token/token", states)

        # Stored once, under vars/shared, nowhere per machine.
        self.assertEqual(files_named(self.vars, "secret").count(
            self.path("shared", "cluster-token", "token")), 1)
        for d, _, _ in os.walk(os.path.join(self.vars, "per-machine")):
            self.assertNotIn("cluster-token", d.split(os.sep))
        token = self.path("shared", "cluster-token", "token")
        self.assertEqual(read(self.path("shared", "cluster-token", "token", "recipients")),
                         self.expected_manifest(self.alice_r, self.bob_r, recips["web"],
                                                recips["db"]))
        values = {self.open_secret(k, token) for k in (keys["web"], keys["db"], self.alice,
                                                       self.bob)}
        self.assertEqual(len(values), 1)
        self.assertEqual(len(b64_decode_strict(values.pop().decode())), 24)
        # A machine that does not use it cannot open it.
        self.assert_closed(keys["lonely"], token)
        # The public value is plain, with no secret beside it.
        self.assertRegex(read(self.path("shared", "cluster-token", "id", "value")).decode(),
                         UUID4_RE)
        self.assertFalse(os.path.exists(self.path("shared", "cluster-token", "id", "secret")))
        # The per-machine generator is per machine: different passwords.
        pw = {m: self.open_secret(self.alice, self.path(m, "web-only", "pw"))
              for m in ("web", "lonely")}
        self.assertNotEqual(pw["web"], pw["lonely"])
        self.assert_closed(keys["web"], self.path("lonely", "web-only", "pw"))
        # varseal get through either machine, and as "shared".
        for owner in ("web", "db", "shared"):
            self.assertEqual(self.varseal("get", owner, "cluster-token/token", "-i",
                                          self.bob).stdout,
                             self.open_secret(self.alice, token))


# ---- 5. dependencies, scripts and built-in kinds ----------------------------

class T05DependenciesAndKinds(VarsCase):
    DEPS = """\
admins:
  alice: @ALICE@
machines:
  vm:
    generators: [b]
generators:
  a:
    files:
      seed: {}
    script: openssl rand -hex 24 | tr -d '\\n' > "$out/seed"
  b:
    dependencies: [a]
    files:
      digest: {secret: false}
      copy: {}
    script: |
      test -r "$in/a/seed"
      sha256sum "$in/a/seed" | cut -d' ' -f1 | tr -d '\\n' > "$out/digest"
      cp "$in/a/seed" "$out/copy"
"""

    def dep_values(self):
        seed = self.open_secret(self.alice, self.path("vm", "a", "seed"))
        digest = read(self.path("vm", "b", "digest", "value"))
        copy = self.open_secret(self.alice, self.path("vm", "b", "copy"))
        return seed, digest, copy

    def setup_deps(self):
        self.admins("alice")
        self.write_spec(self.DEPS, alice=self.alice_r)
        self.mkey = self.machine_keygen("vm")
        self.vargen("generate")

    def test_dependency_input(self):
        self.setup_deps()
        # The machine uses a through b.
        self.assertEqual(self.states("list")["vm/a/seed"], ("secret", "ok"))
        seed, digest, copy = self.dep_values()
        self.assertRegex(seed.decode(), r"^[0-9a-f]{48}$")
        self.assertEqual(digest.decode(), hashlib.sha256(seed).hexdigest())
        self.assertEqual(copy, seed)
        self.assertEqual(self.open_secret(self.mkey, self.path("vm", "b", "copy")), seed)
        # A full --regenerate remakes both, consistently.
        self.vargen("generate", "--regenerate", "--all", "--yes")
        seed2, digest2, copy2 = self.dep_values()
        self.assertNotEqual(seed2, seed)
        self.assertEqual(digest2.decode(), hashlib.sha256(seed2).hexdigest())
        self.assertEqual(copy2, seed2)
        self.vargen("check")

    def test_regenerate_dependency_remakes_dependents(self):
        self.setup_deps()
        seed, _, _ = self.dep_values()
        # Regenerating a alone: b, made from a, must follow (or at least be
        # reported stale by check).
        self.vargen("generate", "--regenerate", "--generator", "a", "--yes")
        seed2, digest2, copy2 = self.dep_values()
        self.assertNotEqual(seed2, seed)
        p = self.vargen("check", expect=None)
        consistent = (digest2.decode() == hashlib.sha256(seed2).hexdigest() and copy2 == seed2)
        self.assertTrue(consistent or p.returncode == 1,
                        "after --regenerate --generator a, b still holds values made from "
                        "the old a and check reports: %s" % p.stdout.decode().strip())
        self.assertTrue(consistent, "b was not remade from the new a")

    def test_regenerate_dependent_needs_identity(self):
        self.setup_deps()
        seed, _, _ = self.dep_values()
        # Regenerating b alone needs a's secret as input: without -i a clear error...
        before = tree(self.vars)
        p = self.vargen("generate", "--regenerate", "--generator", "b", "--yes", expect=None)
        line = self.assert_one_line_error(p)
        self.assertIn("-i", line)
        self.assertIn("a/seed", line)
        self.assertEqual(tree(self.vars), before)
        # ...with -i it works, and a is left exactly as it was.
        self.vargen("generate", "--regenerate", "--generator", "b", "--yes", "-i", self.alice)
        seed3, digest3, copy3 = self.dep_values()
        self.assertEqual(seed3, seed)
        self.assertEqual(digest3.decode(), hashlib.sha256(seed).hexdigest())
        self.assertEqual(copy3, seed)
        after = tree(self.vars)
        rel = lambda *a: os.path.relpath(self.path(*a), self.vars)
        self.assertEqual(after[rel("vm", "a", "seed")], before[rel("vm", "a", "seed")])
        self.assertNotEqual(after[rel("vm", "b", "copy")], before[rel("vm", "b", "copy")])
        self.vargen("check")

    KINDS = """\
admins:
  alice: @ALICE@
machines:
  vm:
    generators: [rnd, pw, ids, agekey, wg]
  vm2:
    generators: [wg]
generators:
  rnd:
    files:
      b64: {kind: random, length: 32, encoding: base64}
      b64url: {kind: random, length: 33, encoding: base64url}
      b64odd: {kind: random, length: 31}
      hex: {kind: random, length: 16, encoding: hex}
      raw: {kind: random, length: 48, encoding: raw}
      default: {kind: random}
  pw:
    files:
      default: {kind: password}
      custom: {kind: password, length: 200, alphabet: "xyz0123-"}
  ids:
    files:
      one: {kind: uuid}
      two: {kind: uuid, secret: false}
  agekey:
    kind: age-keypair
  wg:
    kind: wireguard
"""

    def test_builtin_kinds(self):
        self.assertEqual(x25519(bytes.fromhex(
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"), bytes.fromhex(
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")).hex(),
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
        self.admins("alice")
        self.write_spec(self.KINDS, alice=self.alice_r)
        self.machine_keygen("vm")
        self.machine_keygen("vm2")
        self.vargen("generate")
        self.vargen("check")
        get = lambda g, f, m="vm": self.open_secret(self.alice, self.path(m, g, f))

        # random: decoded length per encoding, no newline.
        self.assertEqual(len(b64_decode_strict(get("rnd", "b64").decode())), 32)
        self.assertEqual(len(get("rnd", "b64")), 44)
        u = get("rnd", "b64url").decode()
        self.assertNotRegex(u, r"[+/]")
        self.assertEqual(len(b64_decode_strict(u, urlsafe=True)), 33)
        self.assertEqual(len(b64_decode_strict(get("rnd", "b64odd").decode())), 31)
        self.assertRegex(get("rnd", "hex").decode(), r"^[0-9a-f]{32}$")
        self.assertEqual(len(bytes.fromhex(get("rnd", "hex").decode())), 16)
        self.assertEqual(len(get("rnd", "raw")), 48)
        self.assertEqual(len(b64_decode_strict(get("rnd", "default").decode())), 32)
        self.assertNotEqual(get("rnd", "b64"), get("rnd", "default"))

        # password: length, and characters only from the alphabet.
        self.assertRegex(get("pw", "default").decode(), r"^[A-Za-z0-9]{32}$")
        custom = get("pw", "custom").decode()
        self.assertEqual(len(custom), 200)
        self.assertEqual(set(custom) - set("xyz0123-"), set())
        self.assertGreaterEqual(len(set(custom)), 6, "200 characters should use the alphabet")

        # uuid: version 4, as a secret and as a public value.
        one = get("ids", "one").decode()
        two = read(self.path("vm", "ids", "two", "value")).decode()
        self.assertRegex(one, UUID4_RE)
        self.assertRegex(two, UUID4_RE)
        self.assertNotEqual(one, two)

        # age-keypair: the identity opens what age encrypts to the recipient.
        identity = get("agekey", "identity").decode()
        recipient = read(self.path("vm", "agekey", "recipient", "value")).decode()
        self.assertFalse(os.path.exists(self.path("vm", "agekey", "recipient", "secret")))
        self.assertRegex(recipient, RECIPIENT_RE)
        self.assertTrue(identity.startswith("AGE-SECRET-KEY-1"), identity[:20])
        idfile = write(os.path.join(self.dir, "agekey.key"), identity + "\n")
        self.assertEqual(self.varseal("pubkey", idfile).stdout.decode().strip(), recipient)
        enc = os.path.join(self.dir, "msg.age")
        p = run([AGE, "-r", recipient, "-o", enc], stdin=b"for the generated key")
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(self.open_secret(idfile, enc), b"for the generated key")

        # wireguard: public = X25519(private, 9), both 44-character base64.
        pubs = set()
        for m in ("vm", "vm2"):
            priv_b64 = get("wg", "private", m).decode()
            pub_b64 = read(self.path(m, "wg", "public", "value")).decode()
            self.assertEqual(len(priv_b64), 44)
            self.assertEqual(len(pub_b64), 44)
            priv = b64_decode_strict(priv_b64)
            pub = b64_decode_strict(pub_b64)
            self.assertEqual(len(priv), 32)
            self.assertEqual(priv[0] & 7, 0, "private key not clamped")
            self.assertEqual(priv[31] & 0xC0, 0x40, "private key not clamped")
            self.assertEqual(x25519(priv, (9).to_bytes(32, "little")), pub, m)
            pubs.add(pub)
        self.assertEqual(len(pubs), 2)
        if shutil.which("wg"):
            p = run(["wg", "pubkey"], stdin=get("wg", "private").decode().encode() + b"\n")
            self.assertEqual(p.stdout.decode().strip(),
                             read(self.path("vm", "wg", "public", "value")).decode())


# ---- 6. prompts --------------------------------------------------------------

class T06Prompts(VarsCase):
    SPEC = """\
admins:
  alice: @ALICE@
machines:
  vm:
    generators: [asked]
generators:
  asked:
    prompts:
      note: {type: line, description: "a note"}
      body: {type: multiline}
    files:
      note-copy: {}
      body-copy: {secret: false}
    script: |
      cp "$prompts/note" "$out/note-copy"
      cp "$prompts/body" "$out/body-copy"
"""

    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(self.SPEC, alice=self.alice_r)
        self.machine_keygen("vm")

    def test_prompt_from_file(self):
        note = write(os.path.join(self.dir, "note.txt"), b"hunter2 is my note")
        body = write(os.path.join(self.dir, "body.txt"), b"first line\nsecond line")
        self.vargen("generate", "--prompt", "note=@" + note, "--prompt", "asked/body=@" + body)
        self.assertEqual(self.open_secret(self.alice, self.path("vm", "asked", "note-copy")),
                         b"hunter2 is my note")
        self.assertEqual(read(self.path("vm", "asked", "body-copy", "value")),
                         b"first line\nsecond line")
        self.vargen("check")

    def test_no_terminal(self):
        note = write(os.path.join(self.dir, "note.txt"), b"given")
        before = tree(self.vars)
        # No --prompt for body, no controlling terminal, stdin not a tty.
        p = self.vargen("generate", "--prompt", "note=@" + note, expect=None,
                        start_new_session=True)
        line = self.assert_one_line_error(p)
        self.assertIn("body", line)
        self.assertEqual(files_named(os.path.join(self.vars, "per-machine"), "secret"), [])
        self.assertEqual(files_named(os.path.join(self.vars, "per-machine"), "value"), [])
        self.assertEqual(tree(self.vars), before)
        # And with nothing at all given, it names a prompt too.
        p = self.vargen("generate", expect=None, start_new_session=True)
        line = self.assert_one_line_error(p)
        self.assertTrue("note" in line or "body" in line, line)
        self.vargen("check", expect=4)


# ---- 7. rekey ----------------------------------------------------------------

class T07Rekey(VarsCase):
    def payloads(self):
        return {s: header_and_payload(read(s))[1] for s in files_named(self.vars, "secret")}

    def values(self, key):
        return {s: self.open_secret(key, s) for s in files_named(self.vars, "secret")}

    def test_rekey_admins(self):
        self.admins("alice", "bob", "carol")
        text = self.write_spec(SEED_SPEC, alice=self.alice_r, bob=self.bob_r)
        machine = self.machine_keygen("test-vm")
        machine_r = self.varseal("pubkey", machine).stdout.decode().strip()
        self.vargen("generate")
        secrets = files_named(self.vars, "secret")
        self.assertEqual(len(secrets), 4)  # three vars and the machine key
        payloads = self.payloads()
        values = self.values(self.alice)
        for s in secrets:
            self.assert_closed(self.carol, s)

        # Add carol: every var is now sealed to the wrong recipients.
        text = read(self.spec).decode()
        self.assertIn("  bob: %s\n" % self.bob_r, text)
        write(self.spec, text.replace("  bob: %s\n" % self.bob_r,
                                      "  bob: %s\n  carol: %s\n" % (self.bob_r, self.carol_r)))
        states = self.states("check", 4)
        self.assertEqual(states, {"test-vm/test-vm-secrets/" + f: ("secret", "wrong-recipients")
                                  for f in SEED_FILES})
        # rekey without an identity: a clear error, nothing changes.
        before = tree(self.vars)
        p = self.varseal("rekey", expect=None)
        self.assert_one_line_error(p, "varseal")
        self.assertEqual(tree(self.vars), before)

        p = self.varseal("rekey", "-i", self.alice)
        self.assertIn("4 of 4", p.stdout.decode())
        self.vargen("check")
        self.assertEqual(self.payloads(), payloads, "rekey changed a payload")
        self.assertEqual(self.values(self.carol), values)
        self.assertEqual(self.values(self.bob), values)
        all_three = self.expected_manifest(self.alice_r, self.bob_r, self.carol_r)
        self.assertEqual(read(os.path.join(self.vars, "machine-keys", "test-vm", "recipients")),
                         all_three)
        for f in SEED_FILES:
            self.assertEqual(read(self.path("test-vm", "test-vm-secrets", f, "recipients")),
                             self.expected_manifest(self.alice_r, self.bob_r, self.carol_r,
                                                    machine_r))
            self.assertEqual(self.open_secret(machine, self.path("test-vm", "test-vm-secrets", f)),
                             values[self.path("test-vm", "test-vm-secrets", f)])
        # Nothing to do the second time: no byte changes.
        before = tree(self.vars)
        p = self.varseal("rekey", "-i", self.alice)
        self.assertIn("0 of 4", p.stdout.decode())
        self.assertEqual(tree(self.vars), before)

        # Remove bob: rekeyed with carol's key; bob opens nothing any more.
        text = read(self.spec).decode()
        write(self.spec, text.replace("  bob: %s\n" % self.bob_r, ""))
        self.vargen("check", expect=4)
        self.varseal("rekey", "-i", self.carol)
        self.vargen("check")
        self.assertEqual(self.payloads(), payloads, "rekey changed a payload")
        for s in secrets:
            self.assert_closed(self.bob, s)
        self.assertEqual(self.values(self.alice), values)
        self.assertEqual(self.values(self.carol), values)
        self.assertEqual(self.varseal("get", "test-vm", "test-vm-secrets/api-key", "-i",
                                      machine).stdout,
                         values[self.path("test-vm", "test-vm-secrets", "api-key")])

        # --rotate: new file keys, new payloads, same values.
        headers = {s: header_and_payload(read(s))[0] for s in secrets}
        p = self.varseal("rekey", "--rotate", "-i", self.alice)
        self.assertIn("4 of 4", p.stdout.decode())
        new_payloads = self.payloads()
        for s in secrets:
            self.assertNotEqual(new_payloads[s], payloads[s], s)
            self.assertNotEqual(header_and_payload(read(s))[0], headers[s], s)
            self.assert_closed(self.bob, s)
        self.assertEqual(self.values(self.alice), values)
        self.assertEqual(self.values(self.carol), values)
        self.vargen("check")

    def test_key_file_checked_before_the_store(self):
        # A key file rekey cannot use is named at once, before the lock and
        # the walk of the store (seconds at 10,000 machines), and also when
        # there is nothing to reseal: a given -i is never silently ignored.
        self.admins("alice", "bob", "carol")
        self.write_spec(SEED_SPEC, alice=self.alice_r, bob=self.bob_r)
        self.machine_keygen("test-vm")
        self.vargen("generate")
        text = read(self.spec).decode()  # keygen named the machine's key in it
        write(self.spec, text.replace("  bob: %s\n" % self.bob_r,
                                      "  bob: %s\n  carol: %s\n" % (self.bob_r, self.carol_r)))
        loose = os.path.join(self.dir, "loose.key")
        write(loose, read(self.alice), 0o644)
        before = tree(self.vars)
        fd = os.open(self.vars, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another writer would
            line = self.assert_one_line_error(self.varseal("rekey", "-i", loose, expect=None),
                                              "varseal")
        finally:
            os.close(fd)
        self.assertIn("loose.key: permissions 0644 are too open", line)
        self.assertEqual(tree(self.vars), before)
        # A pipe (-i <(pass show admin-key)) can be read only once: the
        # check leaves it to the load that opens the secrets.
        r, w = os.pipe()
        try:
            os.write(w, read(self.alice))
            os.close(w)
            p = self.varseal("rekey", "-i", "/dev/fd/%d" % r, pass_fds=(r,))
        finally:
            os.close(r)
        self.assertIn("4 of 4", p.stdout.decode())
        line = self.assert_one_line_error(self.varseal("rekey", "-i", loose, expect=None),
                                          "varseal")
        self.assertIn("permissions 0644 are too open", line)
        # What the message offers works.
        p = self.varseal("rekey", "--insecure-permissions", "-i", loose)
        self.assertIn("0 of 4", p.stdout.decode())


# ---- 8. stale ----------------------------------------------------------------

class T08Stale(VarsCase):
    SPEC = """\
admins:
  alice: @ALICE@
machines:
  vm:
    generators: [scripted, builtin]
generators:
  scripted:
    files:
      s: {mode: "0400", owner: root, group: root}
    script: printf one > "$out/s"
  builtin:
    files:
      r: {kind: random, length: 16, mode: "0400"}
"""

    def test_stale(self):
        self.admins("alice")
        self.write_spec(self.SPEC, alice=self.alice_r)
        self.machine_keygen("vm")
        spec = read(self.spec).decode()
        self.vargen("generate")
        self.vargen("check")
        before = tree(self.vars)

        # Install attributes only: not stale, and generate does nothing.
        write(self.spec, spec.replace('{mode: "0400", owner: root, group: root}',
                                      '{mode: "0440", owner: app, group: app}')
              .replace('length: 16, mode: "0400"', 'length: 16, mode: "0444"'), 0o644)
        self.vargen("check")
        p = self.vargen("generate")
        self.assertIn("up to date", p.stdout.decode())
        self.assertEqual(tree(self.vars), before)

        # The script changes: scripted is stale, builtin is not; a plain
        # generate leaves it (issue 10), --regenerate replaces it.
        write(self.spec, spec.replace('printf one', 'printf two'), 0o644)
        p = self.vargen("check", expect=4)
        self.assertEqual(parse_states(p.stdout.decode()), {"vm/scripted/s": ("secret", "stale")})
        self.vargen("generate", expect=4)
        self.assertEqual(self.open_secret(self.alice, self.path("vm", "scripted", "s")), b"one")
        self.vargen("generate", "--regenerate", "--generator", "scripted", "--yes")
        self.assertEqual(self.open_secret(self.alice, self.path("vm", "scripted", "s")), b"two")
        self.vargen("check")

        # A length changes: builtin is stale.
        spec = read(self.spec).decode()
        write(self.spec, spec.replace("length: 16", "length: 17"), 0o644)
        p = self.vargen("check", expect=4)
        self.assertEqual(parse_states(p.stdout.decode()), {"vm/builtin/r": ("secret", "stale")})
        old = self.open_secret(self.alice, self.path("vm", "builtin", "r"))
        self.vargen("generate", "--regenerate", "--generator", "builtin", "--yes")
        new = self.open_secret(self.alice, self.path("vm", "builtin", "r"))
        self.assertEqual(len(b64_decode_strict(old.decode())), 16)
        self.assertEqual(len(b64_decode_strict(new.decode())), 17)
        self.vargen("check")


# ---- 9. bad specs ------------------------------------------------------------

class T09BadSpecs(VarsCase):
    # (label, spec, line, column, a word of the message)
    CASES = [
        ("unknown key", """\
admins:
  alice: @ALICE@
machines:
  test-vm:
    generators: [g]
    colour: blue
generators:
  g:
    files:
      a: {kind: uuid}
""", 6, 5, "unknown key 'colour'"),
        ("bad mode", """\
admins:
  alice: @ALICE@
generators:
  g:
    script: "true"
    files:
      a:
        mode: "0999"
""", 8, 15, "bad mode"),
        ("unknown generator in a machine", """\
admins:
  alice: @ALICE@
machines:
  test-vm:
    generators: [g, nope]
generators:
  g:
    files:
      a: {kind: uuid}
""", 5, 21, "unknown generator 'nope'"),
        ("YAML syntax error", """\
admins:
  alice: @ALICE@
  bob: x: y
""", 3, 9, "YAML syntax error"),
        ("dependency cycle", """\
admins:
  alice: @ALICE@
generators:
  a:
    script: "true"
    dependencies: [b]
    files: {f: null}
  b:
    script: "true"
    dependencies: [a]
    files: {f: null}
""", 4, 3, "cycle"),
        ("bad admin recipient", """\
admins:
  alice: @ALICE@
  bob: age1notvalid
""", 3, 8, "not a valid recipient"),
        ("unknown file kind", """\
admins:
  alice: @ALICE@
generators:
  g:
    files:
      a: {kind: rand}
""", 6, 17, "unknown kind 'rand'"),
    ]

    def test_bad_specs(self):
        self.admins("alice")
        for label, text, line, col, word in self.CASES:
            with self.subTest(label):
                self.write_spec(text, alice=self.alice_r)
                for cmd in ("check", "generate", "list"):
                    p = self.vargen(cmd, expect=None)
                    msg = self.assert_one_line_error(p)
                    m = SPEC_ERROR_RE.match(msg)
                    self.assertTrue(m, msg)
                    self.assertEqual((int(m.group(1)), int(m.group(2))), (line, col), msg)
                    self.assertIn(word, m.group(3))
                    self.assertEqual(p.stdout, b"")
                self.assertFalse(os.path.exists(os.path.join(self.vars, "per-machine")))

    def test_missing_spec(self):
        p = self.vargen("check", expect=None)
        line = self.assert_one_line_error(p)
        self.assertIn("vars.yaml", line)


# ---- 10. failing scripts -------------------------------------------------------

class T10FailingScript(VarsCase):
    SPEC = """\
admins:
  alice: @ALICE@
machines:
  vm:
    generators: [@GENS@]
generators:
  before:
    files:
      x: {kind: random}
  good:
    files:
      g: {}
      v: {secret: false}
    script: |
      printf good > "$out/g"
      printf value > "$out/v"
  bad:
    files:
      b: {}
    script: |
      printf partial > "$out/b"
      exit 3
"""

    def test_failure_leaves_store(self):
        self.admins("alice")
        self.write_spec(self.SPEC, alice=self.alice_r, gens="before")
        self.machine_keygen("vm")
        spec = read(self.spec).decode()

        # Fresh generators: good succeeds first in the same run, then bad fails.
        self.vargen("generate")
        before = tree(self.vars)
        write(self.spec, spec.replace("[before]", "[before, good, bad]"), 0o644)
        p = self.vargen("generate", expect=None)
        line = self.assert_one_line_error(p)
        self.assertIn("bad", line)
        self.assertIn("3", line)
        self.assertEqual(p.stdout, b"")
        self.assertEqual(tree(self.vars), before, "a failed run changed the store")
        states = self.states("check", 4)
        self.assertEqual(states["vm/good/g"], ("secret", "missing"))
        self.assertEqual(states["vm/bad/b"], ("secret", "missing"))
        self.assertNotIn("vm/before/x", states)

        # With good and before already made, a --regenerate that fails keeps them.
        write(self.spec, spec.replace("[before]", "[before, good]"), 0o644)
        self.vargen("generate")
        before = tree(self.vars)
        write(self.spec, spec.replace("[before]", "[before, good, bad]"), 0o644)
        p = self.vargen("generate", "--regenerate", expect=None)
        self.assert_one_line_error(p)
        self.assertEqual(tree(self.vars), before, "a failed --regenerate changed the store")
        self.assertEqual(self.open_secret(self.alice, self.path("vm", "good", "g")), b"good")

        # A script that writes an undeclared file fails the same way.
        write(self.spec, spec.replace("[before]", "[before, good, bad]")
              .replace('printf partial > "$out/b"\n      exit 3', 'printf x > "$out/typo"'),
              0o644)
        p = self.vargen("generate", expect=None)
        line = self.assert_one_line_error(p)
        self.assertIn("typo", line)
        self.assertEqual(tree(self.vars), before)


# ---- 11. SIGKILL during generate and rekey ----------------------------------

N_MACHINES = 300
KILL_FRACTIONS = [0.2, 0.4, 0.6, 0.85, 0.97, 0.5]  # of a measured run, +-5%


class T11Kill(VarsCase):
    FILES = {"a": "{kind: random}", "b": "{kind: random, length: 16, encoding: hex}",
             "c": "{kind: password}"}

    @classmethod
    def setUpClass(cls):
        cls._keys = tempfile.TemporaryDirectory(prefix="vars_test_keys.")
        cls.keydir = cls._keys.name

        def one(i):
            path = os.path.join(cls.keydir, "m%03d.key" % i)
            p = run([VARSEAL, "keygen", "-o", path])
            if p.returncode != 0:
                raise AssertionError(describe(p))
            m = re.search(r"age1[0-9a-z]+", p.stderr.decode() + p.stdout.decode())
            return "m%03d" % i, path, m.group(0)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            cls.machine_keys = {m: (path, r) for m, path, r in pool.map(one, range(N_MACHINES))}

    @classmethod
    def tearDownClass(cls):
        cls._keys.cleanup()

    def setUp(self):
        super().setUp()
        self.admins("alice", "carol")
        lines = ["# %d machines, three built-in secrets each" % N_MACHINES,
                 "admins:", "  alice: " + self.alice_r, "generators:", "  g:", "    files:"]
        lines += ["      %s: %s" % kv for kv in self.FILES.items()]
        lines.append("machines:")
        for m, (_, r) in self.machine_keys.items():
            lines.append("  %s: {key: %s, generators: [g]}" % (m, r))
        self.base_spec = "\n".join(lines) + "\n"
        write(self.spec, self.base_spec, 0o644)
        self.opened = {}  # (machine, file) -> sha256 of the secret last opened

    def pmap(self, fn, items):
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            return list(pool.map(fn, items))

    def check_states(self, allowed, problems=None):
        """vargen check's states; those not in allowed are problems (listed
        in problems, or failing the test when problems is None)."""
        p = self.vargen("check", expect=None)
        self.assertIn(p.returncode, (0, 4), describe(p))
        out = p.stdout.decode() + p.stderr.decode()
        self.assertNotIn(".tmp", out)
        states = parse_states(p.stdout.decode())
        if p.returncode == 0:
            self.assertEqual(states, {})
        bad = sorted("%s is %s" % (k, v[1]) for k, v in states.items() if v[1] not in allowed)
        if problems is None:
            self.assertEqual(bad, [], "check reports states other than %s" % (allowed,))
        else:
            problems += ["check: " + b for b in bad]
        return states

    def value_ok(self, f, value):
        if f == "a":  # 32 bytes, or 20 after test_kill_regenerate_stale's change
            try:
                return len(b64_decode_strict(value.decode())) in (20, 32)
            except ValueError:
                return False
        if f == "b":
            return re.fullmatch(rb"[0-9a-f]{32}", value) is not None
        return re.fullmatch(rb"[A-Za-z0-9]{32}", value) is not None

    def killed(self, cmd, delay):
        """Starts cmd, SIGKILLs it after delay seconds; returns whether it was killed."""
        p = subprocess.Popen(cmd, cwd=self.dir, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            p.wait(delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
        p.wait(TIMEOUT)
        if p.returncode not in (0, -signal.SIGKILL):
            raise AssertionError("%r exited %d: %s" % (cmd, p.returncode, p.stderr.read()))
        p.stderr.close()
        return p.returncode == -signal.SIGKILL

    def killed_when(self, cmd, probe):
        """Starts cmd, SIGKILLs it as soon as probe() is true (or it ends)."""
        p = subprocess.Popen(cmd, cwd=self.dir, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + TIMEOUT
        while p.poll() is None and time.monotonic() < deadline:
            if probe():
                p.send_signal(signal.SIGKILL)
                break
        p.wait(TIMEOUT)
        return p.returncode == -signal.SIGKILL

    def verify_generated(self, lengths=None):
        """After a kill during generate: check reports only missing, stale or incomplete,
        every secret and manifest is whole, and a generator's hash record is
        only there when all its files are (it says "these files are from
        this spec": committed before them, a kill would leave old values
        looking fresh). lengths: {file: decoded length} for ok files."""
        problems = []
        states = self.check_states(("ok", "missing", "stale", "incomplete"), problems)
        jobs = []
        n_sealed = 0
        for m, (key, r) in self.machine_keys.items():
            want = self.expected_manifest(self.alice_r, r)
            for f in self.FILES:
                secret = self.path(m, "g", f)
                if os.path.exists(secret):
                    # Files already opened by an earlier call are not opened again.
                    digest = hashlib.sha256(read(secret)).digest()
                    if self.opened.get((m, f)) != digest:
                        jobs.append((m, f, key, secret))
                    n_sealed += 1
                manifest = self.path(m, "g", f, "recipients")
                if os.path.exists(manifest) and read(manifest) != want:
                    problems.append("%s: %r" % (manifest, read(manifest)))
            rec = os.path.join(self.vars, "per-machine", m, "g", ".generator")
            if os.path.exists(rec):
                if not re.fullmatch(r"[0-9a-f]{64}\n", read(rec).decode(errors="replace")):
                    problems.append("%s: %r" % (rec, read(rec)))
                for f in self.FILES:
                    if not os.path.exists(self.path(m, "g", f)):
                        problems.append("%s/g/.generator is there but not %s/g/%s/secret"
                                        % (m, m, f))

        def job(j):
            m, f, key, secret = j
            rc, out, err = age_decrypt(key, secret)
            return m, f, rc, out, err

        for m, f, rc, out, err in self.pmap(job, jobs):
            if rc == 0:
                self.opened[(m, f)] = hashlib.sha256(read(self.path(m, "g", f))).digest()
            if rc != 0:
                problems.append("%s/g/%s does not open with its machine key: %s"
                                % (m, f, err.strip()))
            elif not self.value_ok(f, out):
                problems.append("%s/g/%s holds %r" % (m, f, out))
            elif (lengths and f in lengths and states.get("%s/g/%s" % (m, f), ("", "ok"))[1] == "ok"
                  and len(b64_decode_strict(out.decode())) != lengths[f]):
                problems.append("%s/g/%s is reported ok but holds a value of the old spec "
                                "(%d bytes, the spec says %d)"
                                % (m, f, len(b64_decode_strict(out.decode())), lengths[f]))
        if problems:
            self.fail("%d problems after the kill, the first ones:\n  %s"
                      % (len(problems), "\n  ".join(problems[:8])))
        return n_sealed, states

    def kill_at_first_rename(self, path):
        """Runs generate, SIGKILLed as soon as path is replaced or created."""
        try:
            ino = os.stat(path).st_ino
        except FileNotFoundError:
            ino = None

        def replaced():
            try:
                return os.stat(path).st_ino != ino
            except FileNotFoundError:
                return False

        return self.killed_when([VARGEN, "generate"], replaced)

    def test_kill_generate(self):
        # The run's duration: the shorter of two full runs on an empty store.
        durations = []
        for _ in range(2):
            t0 = time.monotonic()
            self.vargen("generate")
            durations.append(time.monotonic() - t0)
            self.vargen("check")
            shutil.rmtree(self.vars)
        duration = min(durations)
        report = []
        for i, frac in enumerate(KILL_FRACTIONS):
            if i:
                shutil.rmtree(self.vars, ignore_errors=True)
            delay = duration * random.uniform(frac - 0.05, frac + 0.03)
            was_killed = self.killed([VARGEN, "generate"], delay)
            n, states = self.verify_generated()
            report.append("%.2fs%s: %d sealed" % (delay, "" if was_killed else " (finished)", n))
            sys.stderr.write("[%s] " % report[-1])
        # Killed as soon as the first file is renamed into place: in the
        # middle of the commit.
        for probe in (("m000", "g", "a"), ("m150", "g", "b")):
            shutil.rmtree(self.vars)
            was_killed = self.kill_at_first_rename(self.path(*probe))
            n, _ = self.verify_generated()
            sys.stderr.write("[at the first rename of %s%s: %d sealed] "
                             % ("/".join(probe), "" if was_killed else " (finished)", n))
        # Leftovers of the last killed run (temporaries included, which
        # check must not mention) do not matter: a full run fixes all.
        leftovers = [n for _, _, files in os.walk(self.vars) for n in files
                     if n.startswith(".") and n.endswith(".tmp")]
        sys.stderr.write("[%d temporaries left] " % len(leftovers))
        self.check_states(("ok", "missing", "stale", "incomplete"))
        # Incomplete generators are replaced only when asked (issue 10).
        incomplete = [k for k, v in parse_states(self.vargen("list").stdout.decode()).items()
                      if v[1] == "incomplete"]
        args = [a for k in sorted(set(incomplete)) for a in ("--machine", k.split("/")[0])]
        self.vargen("generate", expect=4 if args else 0)  # makes what is missing
        if args:
            self.vargen("generate", "--regenerate", "--generator", "g", "--yes", *args)
        self.check_states(())
        self.verify_generated()
        p = self.vargen("list")
        self.assertEqual(len(parse_states(p.stdout.decode())), 3 * N_MACHINES)

    def test_kill_regenerate_stale(self):
        # Everything made, then the spec changes a's length: all a, b and c
        # are stale. A generate killed mid-commit must not leave old values
        # looking fresh.
        self.vargen("generate")
        write(self.spec, self.base_spec.replace("a: {kind: random}",
                                                "a: {kind: random, length: 20}"), 0o644)
        states = self.check_states(("stale",))
        self.assertEqual(len(states), 3 * N_MACHINES)
        was_killed = self.kill_at_first_rename(self.path("m000", "g", "a"))
        n, _ = self.verify_generated(lengths={"a": 20})
        sys.stderr.write("[%s: %d sealed] " % ("killed" if was_killed else "finished", n))
        self.vargen("generate", "--regenerate", "--all", "--yes")
        self.check_states(())
        self.verify_generated(lengths={"a": 20})

    def snapshot(self):
        """{relative path: bytes} of every file under vars/."""
        return {os.path.relpath(os.path.join(d, n), self.vars): read(os.path.join(d, n))
                for d, _, files in os.walk(self.vars) for n in files}

    def restore(self, snap):
        """Puts vars/ back to snap, rewriting only what differs."""
        for d, _, files in os.walk(self.vars):
            for n in files:
                path = os.path.join(d, n)
                if os.path.relpath(path, self.vars) not in snap:
                    os.unlink(path)
        for rel, data in snap.items():
            path = os.path.join(self.vars, rel)
            try:
                same = read(path) == data
            except FileNotFoundError:
                same = False
            if not same:
                write(path, data)

    def verify_rekeyed(self, pristine, new_manifests):
        """After a kill during rekey: check says ok or wrong-recipients;
        each manifest is the old or the new one; a secret is either the
        old file or a new header on the same payload, and then it opens
        with alice's key, and with carol's when its manifest lists her
        (same payload and file key: the same value). Returns how many
        manifests are new."""
        problems = []
        self.check_states(("ok", "wrong-recipients"), problems)
        jobs = []
        new = 0
        for m, (_, r) in self.machine_keys.items():
            for f in self.FILES:
                rel = os.path.relpath(self.path(m, "g", f), self.vars)
                secret = read(self.path(m, "g", f))
                manifest = read(self.path(m, "g", f, "recipients"))
                if manifest not in (self.expected_manifest(self.alice_r, r), new_manifests[m]):
                    problems.append("%s/g/%s/recipients: %r" % (m, f, manifest))
                if secret != pristine[rel]:
                    try:
                        same_payload = (header_and_payload(secret)[1] ==
                                        header_and_payload(pristine[rel])[1])
                    except ValueError:
                        same_payload = False
                    if not same_payload:
                        problems.append("%s/g/%s: payload changed (or no header)" % (m, f))
                    jobs.append((m, f, self.alice))
                if manifest == new_manifests[m]:
                    new += 1
                    jobs.append((m, f, self.carol))

        def job(j):
            m, f, key = j
            rc, out, err = age_decrypt(key, self.path(m, "g", f))
            return m, f, key, rc, out, err

        for m, f, key, rc, out, err in self.pmap(job, jobs):
            if rc != 0:
                problems.append("%s/g/%s does not open with %s: %s"
                                % (m, f, os.path.basename(key), err.strip()))
            elif not self.value_ok(f, out):
                problems.append("%s/g/%s holds %r" % (m, f, out))
        if problems:
            self.fail("%d problems after the kill, the first ones:\n  %s"
                      % (len(problems), "\n  ".join(problems[:8])))
        return new

    def test_kill_rekey(self):
        self.vargen("generate")
        self.vargen("check")
        pristine = self.snapshot()
        # A sample opens with alice's key before (the rest is test_kill_generate's).
        for m in ("m000", "m150", "m299"):
            for f in self.FILES:
                self.assertTrue(self.value_ok(f, self.open_secret(self.alice,
                                                                  self.path(m, "g", f))))

        # Add carol.
        write(self.spec, self.base_spec.replace(
            "  alice: %s\n" % self.alice_r,
            "  alice: %s\n  carol: %s\n" % (self.alice_r, self.carol_r)), 0o644)
        new_manifests = {m: self.expected_manifest(self.alice_r, self.carol_r, r)
                         for m, (_, r) in self.machine_keys.items()}
        states = self.check_states(("wrong-recipients",))
        self.assertEqual(len(states), 3 * N_MACHINES)

        # The run's duration: the shorter of two full runs.
        durations = []
        for _ in range(2):
            self.restore(pristine)
            t0 = time.monotonic()
            self.varseal("rekey", "-i", self.alice)
            durations.append(time.monotonic() - t0)
            self.vargen("check")
        duration = min(durations)

        report = []
        cmd = [VARSEAL, "rekey", "-i", self.alice]
        for frac in KILL_FRACTIONS:
            self.restore(pristine)
            delay = duration * random.uniform(frac - 0.05, frac + 0.03)
            was_killed = self.killed(cmd, delay)
            new = self.verify_rekeyed(pristine, new_manifests)
            report.append("%.2fs%s: %d resealed" % (delay, "" if was_killed else " (finished)",
                                                    new))
        # Killed when a given secret has been replaced: mid-commit.
        for probe in (("m000", "g", "a"), ("m150", "g", "b")):
            self.restore(pristine)
            first = self.path(*probe)
            ino = os.stat(first).st_ino

            def replaced():
                try:
                    return os.stat(first).st_ino != ino
                except FileNotFoundError:
                    return False

            was_killed = self.killed_when(cmd, replaced)
            new = self.verify_rekeyed(pristine, new_manifests)
            report.append("at the first rename of %s%s: %d resealed"
                          % ("/".join(probe), "" if was_killed else " (finished)", new))
        sys.stderr.write("[rekey %.2fs; killed at %s] " % (duration, "; ".join(report)))

        # A completed rekey on top (leftover temporaries and all) makes
        # everything whole.
        self.varseal("rekey", "-i", self.alice)
        self.check_states(())
        self.assertEqual(self.verify_rekeyed(pristine, new_manifests), 3 * N_MACHINES)


# ---- 12. varseal set / get ---------------------------------------------------

class T12SetGet(VarsCase):
    SPEC = """\
admins:
  alice: @ALICE@
machines:
  vm:
    generators: [manual]
generators:
  manual:
    files:
      token: {}
      hostname: {secret: false}
    script: "false"
"""

    def test_set_get(self):
        self.admins("alice", "bob")
        self.write_spec(self.SPEC, alice=self.alice_r)
        mkey = self.machine_keygen("vm")

        # Missing: a clear one-line error naming what is missing.
        p = self.varseal("get", "vm", "manual/token", "-i", self.alice, expect=None)
        line = self.assert_one_line_error(p, "varseal")
        self.assertIn("token", line)
        self.assertIn("not generated", line)
        self.assertEqual(p.stdout, b"")
        p = self.varseal("get", "vm", "manual/hostname", expect=None)
        self.assertIn("hostname", self.assert_one_line_error(p, "varseal"))
        p = self.varseal("get", "vm", "manual/nope", "-i", self.alice, expect=None)
        self.assertIn("nope", self.assert_one_line_error(p, "varseal"))
        p = self.varseal("get", "elsewhere", "manual/token", "-i", self.alice, expect=None)
        self.assertIn("elsewhere", self.assert_one_line_error(p, "varseal"))

        secret = b"s3cret\x00with binary \xff and a newline\n"
        self.varseal("set", "vm", "manual/token", stdin=secret)
        self.assertEqual(self.varseal("get", "vm", "manual/token", "-i", self.alice).stdout,
                         secret)
        self.assertEqual(self.varseal("get", "vm", "manual/token", "-i", mkey).stdout, secret)
        token = self.path("vm", "manual", "token")
        self.assertEqual(self.open_secret(self.alice, token), secret)
        self.assertEqual(self.open_secret(mkey, token), secret)
        self.assert_closed(self.bob, token)
        self.assertFalse(os.path.exists(self.path("vm", "manual", "token", "value")))
        # A secret needs an identity to read; a wrong one fails clearly.
        p = self.varseal("get", "vm", "manual/token", expect=None)
        self.assert_one_line_error(p, "varseal")
        p = self.varseal("get", "vm", "manual/token", "-i", self.bob, expect=None)
        self.assert_one_line_error(p, "varseal", code=3)
        self.assertEqual(p.stdout, b"")

        self.varseal("set", "vm", "manual/hostname", stdin=b"vm.example.org")
        self.assertEqual(read(self.path("vm", "manual", "hostname", "value")), b"vm.example.org")
        self.assertFalse(os.path.exists(self.path("vm", "manual", "hostname", "secret")))
        self.assertEqual(self.varseal("get", "vm", "manual/hostname").stdout, b"vm.example.org")
        # Both set: the generator counts as made, so check passes and
        # generate (whose script would fail) has nothing to do.
        self.vargen("check")
        self.vargen("generate")
        # Overwriting works too.
        self.varseal("set", "vm", "manual/token", stdin=b"second")
        self.assertEqual(self.varseal("get", "vm", "manual/token", "-i", self.alice).stdout,
                         b"second")

    def test_get_every_size(self):
        # get hands a secret file of up to 8 KiB to its output from the
        # scratch stack, a larger one through a guarded value: both sides
        # of that line, a value of several 64 KiB chunks, and the empty
        # one, to standard output and to a file.
        self.admins("alice")
        self.write_spec(self.SPEC, alice=self.alice_r)
        mkey = self.machine_keygen("vm")
        token = self.path("vm", "manual", "token")  # the sealed file
        sizes = [0, 1, 7000, 7900, 8200, 9000, 64 * 1024, 200 * 1024]
        files = set()
        for n in sizes:
            with self.subTest(size=n):
                value = os.urandom(n)
                empty = ["--allow-empty"] if n == 0 else []
                self.varseal("set", *empty, "vm", "manual/token", stdin=value)
                files.add(os.path.getsize(token) <= 8192)
                for ident in (self.alice, mkey):
                    self.assertEqual(self.varseal("get", "vm", "manual/token", "-i",
                                                  ident).stdout, value)
                out = os.path.join(self.dir, "out%d" % n)
                self.varseal("get", "vm", "manual/token", "-i", mkey, "-o", out)
                self.assertEqual(read(out), value)
                self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        self.assertEqual(files, {True, False}, "the sizes cross the 8 KiB line")

    def test_get_of_a_corrupt_small_secret(self):
        # A changed byte in the payload: a one-line error, nothing on
        # standard output, no file at -o.
        self.admins("alice")
        self.write_spec(self.SPEC, alice=self.alice_r)
        self.machine_keygen("vm")
        self.varseal("set", "vm", "manual/token", stdin=b"s3cret value")
        token = self.path("vm", "manual", "token")  # the sealed file
        data = bytearray(read(token))
        data[-5] ^= 1
        os.chmod(token, 0o600)
        with open(token, "wb") as f:
            f.write(data)
        p = self.varseal("get", "vm", "manual/token", "-i", self.alice, expect=None)
        self.assertIn("token", self.assert_one_line_error(p, "varseal"))
        self.assertEqual(p.stdout, b"")
        out = os.path.join(self.dir, "out")
        p = self.varseal("get", "vm", "manual/token", "-i", self.alice, "-o", out, expect=None)
        self.assert_one_line_error(p, "varseal")
        self.assertFalse(os.path.exists(out))


class T12GetWhileChanged(VarsCase):
    """get opens a secret once, and reads that file whatever happens to its
    path meanwhile: the keys are asked for with the file open, a rename
    over it (what set, rekey and generate do) leaves the open file as it
    was, and a file changed in place is refused, never half printed.

    strace holds get just before its first read of the secret (-P: only
    calls on that file; an injected delay), so that the change happens
    between the open and the read, every time."""
    SPEC = T12SetGet.SPEC
    HOLD_US = 1500000  # how long get is held before its read

    def setUp(self):
        super().setUp()
        if not testkit.strace_works():
            self.skipTest("needs a working strace")
        self.admins("alice")
        self.write_spec(self.SPEC, alice=self.alice_r)
        self.machine_keygen("vm")
        self.token = self.path("vm", "manual", "token")

    def held_get(self, change):
        """get of vm's token, held before its first read of the file while
        change() runs; the process and strace's lines (timestamped) for the
        file."""
        log = os.path.join(self.dir, "strace.log")
        if os.path.exists(log):
            os.unlink(log)
        cmd = [STRACE, "-f", "-qq", "-ttt", "-o", log, "-P", self.token,
               "-e", "inject=read:delay_enter=%d:when=1" % self.HOLD_US,
               VARSEAL, "get", "vm", "manual/token", "-i", self.alice]
        proc = subprocess.Popen(cmd, cwd=self.dir, env=testkit.traced_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # The first line for the file (its fstat, just after the open) says
        # get is about to be held; then there is HOLD_US to make the change.
        changed_at = testkit.await_trace(proc, log, bool, TIMEOUT, "get's open of the secret")
        change()
        out, err = proc.communicate(timeout=TIMEOUT)
        p = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        with open(log) as f:
            trace = f.read().splitlines()
        # -P sees the file from its first call on the open descriptor.
        self.assertTrue(trace, "strace saw no call on the secret")
        self.assertLess(float(trace[0].split()[1]), changed_at,
                        "the change came after the open:\n" + "\n".join(trace))
        self.assertIn("(DELAYED)", "\n".join(trace), "get was held")
        return p, trace

    def test_get_opens_the_secret_once(self):
        # One open of the secret, and the key file read only after it (an
        # existence check used to open the secret first, and the read opened
        # it again).
        self.varseal("set", "vm", "manual/token", stdin=b"once")
        log = os.path.join(self.dir, "strace.log")
        p = run([STRACE, "-f", "-qq", "-o", log, "-e", "trace=openat,openat2", VARSEAL, "get",
                 "vm", "manual/token", "-i", self.alice], cwd=self.dir, env=testkit.traced_env())
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(p.stdout, b"once")
        with open(log) as f:
            trace = f.read().splitlines()
        secret = [i for i, t in enumerate(trace) if '"secret"' in t]
        key = [i for i, t in enumerate(trace) if self.alice in t]
        self.assertEqual(len(secret), 1, "\n".join(trace))
        self.assertTrue(key and key[0] > secret[0], "the key is read after the open:\n" +
                        "\n".join(trace))

    def test_renamed_over_while_held(self):
        # A set while get holds the file: get prints the old value whole,
        # and the next get the new one.
        for size in (12, 20000):  # the scratch stack's path, and a guarded value's
            with self.subTest(size=size):
                old, new = os.urandom(size), os.urandom(size)
                self.varseal("set", "vm", "manual/token", stdin=old)
                p, _ = self.held_get(
                    lambda: self.varseal("set", "vm", "manual/token", stdin=new))
                self.assertEqual(p.returncode, 0, describe(p))
                self.assertEqual(p.stdout, old)
                self.assertEqual(self.varseal("get", "vm", "manual/token", "-i",
                                              self.alice).stdout, new)

    def test_grown_in_place_while_held(self):
        # Bytes appended to the open file after get sized it: a one-line
        # error naming the file, nothing on standard output.
        def grow():
            os.chmod(self.token, 0o600)
            with open(self.token, "ab") as f:
                f.write(b"more")
        for size in (12, 20000):
            with self.subTest(size=size):
                self.varseal("set", "vm", "manual/token", stdin=os.urandom(size))
                before = os.path.getsize(self.token)
                p, trace = self.held_get(grow)
                self.assertIn("vars/per-machine/vm/manual/token/secret",
                              self.assert_one_line_error(p, "varseal"))
                self.assertEqual(p.stdout, b"")
                # The trace shows the file read past the size get had seen.
                read_re = re.compile(r"\bread\(.*\) = (\d+)(?: \(DELAYED\))?$")
                got = sum(int(m.group(1)) for m in map(read_re.search, trace) if m)
                self.assertEqual(got, before + 4, "\n".join(trace))

    def test_truncated_in_place_while_held(self):
        def truncate():
            os.chmod(self.token, 0o600)
            os.truncate(self.token, os.path.getsize(self.token) - 10)
        for size in (12, 20000):
            with self.subTest(size=size):
                self.varseal("set", "vm", "manual/token", stdin=os.urandom(size))
                p, _ = self.held_get(truncate)
                self.assertIn("vars/per-machine/vm/manual/token/secret",
                              self.assert_one_line_error(p, "varseal"))
                self.assertEqual(p.stdout, b"")


# ---- 13. machine keygen --force ------------------------------------------------

class T13MachineKeygenForce(VarsCase):
    # --force shared its option code with --passphrase-file and so never
    # took effect: replacing a machine's key was impossible.
    def test_force_replaces_the_key(self):
        self.admins("alice")
        self.write_spec("admins:\n  alice: @A@\nmachines:\n  web1:\n    generators: []\n"
                        "generators: {}\n", a=self.alice_r)
        self.varseal("machine", "keygen", "web1")
        first = read(self.machine_key("web1"))
        p = self.varseal("machine", "keygen", "web1", expect=None)
        self.assertIn("--force replaces it", self.assert_one_line_error(p, "varseal"))
        self.assertEqual(read(self.machine_key("web1")), first)
        self.varseal("machine", "keygen", "--force", "web1")
        self.assertNotEqual(read(self.machine_key("web1")), first)


# ---- 14. a kept machine key that is missing --------------------------------------

class T14MissingMachineKey(VarsCase):
    # Deleting a kept key made `machine key` say the key "was not made by
    # varseal machine keygen", which was false: it is simply missing.
    def test_missing_kept_key_is_called_missing(self):
        self.admins("alice")
        self.write_spec("admins:\n  alice: @A@\nmachines:\n  web2:\n    generators: []\n"
                        "generators: {}\n", a=self.alice_r)
        self.varseal("machine", "keygen", "web2")
        shutil.rmtree(os.path.join(self.vars, "machine-keys", "web2"))
        p = self.varseal("machine", "key", "web2", "-i", self.alice, expect=None)
        line = self.assert_one_line_error(p, "varseal")
        self.assertIn("missing", line)
        self.assertIn("not in the store", line)
        self.assertNotIn("not made by", line)


# ---- 15. an SSH recipient's comment ---------------------------------------------

class T15SshComment(VarsCase):
    # Changing only the comment of an SSH key in the spec marked its files
    # wrong-recipients: the comment names the key, it does not change it.
    def test_comment_change_is_not_a_recipient_change(self):
        key = os.path.join(self.dir, "alice_ssh")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice-laptop", "-f", key],
            check=True)
        with open(key + ".pub") as f:
            pub = f.read().strip()
        self.assertTrue(pub.endswith(" alice-laptop"), pub)
        spec = ("admins:\n  alice: \"@A@\"\nmachines:\n  m:\n    generators: [g]\n"
                "generators:\n  g:\n    share: true\n    files:\n      a: {kind: random}\n")
        self.write_spec(spec, a=pub)
        self.varseal("machine", "keygen", "m")
        spec = open(self.spec).read().replace(pub, "@A@")
        self.vargen("generate")
        self.assertEqual(self.states("list"), {"shared/g/a": ("secret", "ok")})
        self.write_spec(spec, a=pub.replace("alice-laptop", "alice-desktop"))
        self.assertEqual(self.states("list"), {"shared/g/a": ("secret", "ok")})
        self.vargen("check")
        out = self.varseal("rekey").stdout.decode()
        self.assertIn("rekey: 0 of 2 secrets resealed", out)
        # A different key is still a different recipient.
        other = os.path.join(self.dir, "bob_ssh")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice-desktop", "-f", other],
            check=True)
        with open(other + ".pub") as f:
            self.write_spec(spec, a=f.read().strip())
        self.assertEqual(self.states("list"), {"shared/g/a": ("secret", "wrong-recipients")})
        self.vargen("check", expect=4)



# ---- 16. varseal rekey --plan ----------------------------------------------------

def secret_name(rel):
    """The plan's name of a stored secret, from its path relative to vars/:
    per-machine/M/G/F/secret -> M/G/F, shared/G/F/secret -> shared/G/F,
    machine-keys/M/secret -> machine-keys/M; None for any other file."""
    parts = rel.split(os.sep)
    if parts[-1] != "secret":
        return None
    if parts[0] == "per-machine" and len(parts) == 5:
        return "/".join(parts[1:4])
    if parts[0] == "shared" and len(parts) == 4:
        return "shared/" + "/".join(parts[1:3])
    if parts[0] == "machine-keys" and len(parts) == 3:
        return "machine-keys/" + parts[1]
    raise AssertionError("unexpected secret path %r" % rel)


def store_state(top):
    """Every entry under top: relative path -> (sha256 or 'dir', mtime_ns,
    inode, mode); directories included, so a temporary created and removed
    again, or a directory made, shows too."""
    out = {}
    for rel, st, data in testkit.walk_entries(top):
        digest = hashlib.sha256(data).hexdigest() if data is not None else "dir"
        out[rel] = (digest, st.st_mtime_ns, st.st_ino, stat.S_IMODE(st.st_mode))
    st = os.lstat(top)
    out["."] = ("dir", st.st_mtime_ns, st.st_ino, stat.S_IMODE(st.st_mode))
    return out


def changed_secrets(before, after):
    """Names (secret_name) of the secrets whose bytes differ between two
    store_state()s of vars/; a secret that came or went counts too."""
    names = set()
    for rel in set(before) | set(after):
        a, b = before.get(rel), after.get(rel)
        if (a and a[0]) != (b and b[0]):
            name = secret_name(rel)
            if name:
                names.add(name)
    return names



class T16RekeyPlan(VarsCase):
    # varseal rekey had no way to say what it would do before doing it: the
    # plan prints each secret it would reseal and why, writes nothing, needs
    # no identity and no lock, and exits 1 while there is something to do.
    SPEC = """\
admins:
  alice: @ALICE@
  bob: @BOB@
machines:
  web1:
    generators: [app, cluster]
  web2:
    generators: [app, cluster]
  db:
    generators: [app]
generators:
  app:
    files:
      a: {}
      b: {}
      host: {secret: false}
    script: |
      openssl rand -hex 16 | tr -d '\\n' > "$out/a"
      openssl rand -hex 16 | tr -d '\\n' > "$out/b"
      printf host > "$out/host"
  cluster:
    share: true
    files:
      token: {kind: random}
"""
    ALL = {"%s/app/%s" % (m, f) for m in ("web1", "web2", "db") for f in ("a", "b")} | \
        {"shared/cluster/token"} | {"machine-keys/" + m for m in ("web1", "web2", "db")}

    def setUp(self):
        super().setUp()
        self.admins("alice", "bob", "carol")
        self.write_spec(self.SPEC, alice=self.alice_r, bob=self.bob_r)
        self.mkeys = {}
        for m in ("web1", "web2", "db"):
            self.mkeys[m] = self.varseal("pubkey", self.machine_keygen(m)).stdout.decode().strip()
        self.vargen("generate")
        self.vargen("check")

    def plan(self, *args, expect):
        """Runs `varseal rekey --plan ARGS` and checks that it wrote
        nothing; returns ({name: reason}, the summary line)."""
        before = store_state(self.vars)
        p = self.varseal("rekey", "--plan", *args, expect=expect)
        self.assertEqual(store_state(self.vars), before, "the plan changed the store")
        self.assertEqual(p.stderr, b"", describe(p))
        out = p.stdout.decode()
        self.assertTrue(out.endswith("\n"), repr(out))
        lines = out.splitlines()
        self.assertNotIn("\t", lines[-1], repr(out))
        plan = {}
        for line in lines[:-1]:
            fields = line.split("\t")
            self.assertEqual(len(fields), 3, repr(line))
            self.assertEqual(fields[0], "reseal", repr(line))
            self.assertNotIn(fields[1], plan, "named twice: %r" % out)
            plan[fields[1]] = fields[2]
        return plan, lines[-1]

    def assert_nothing_to_do(self, *args, checked):
        plan, summary = self.plan(*args, expect=0)
        self.assertEqual(plan, {})
        self.assertEqual(summary, "plan: nothing to reseal (%d secrets checked); nothing written"
                         % checked)

    def rekey_as_planned(self, plan, *args):
        """The real rekey with the same options: exactly the planned
        secrets change."""
        before = store_state(self.vars)
        self.varseal("rekey", *args, "-i", self.alice)
        self.assertEqual(changed_secrets(before, store_state(self.vars)), set(plan))

    def edit_spec(self, old, new):
        text = read(self.spec).decode()
        self.assertIn(old, text)
        write(self.spec, text.replace(old, new), 0o644)

    def test_plan_matches_rekey(self):
        self.assert_nothing_to_do(checked=len(self.ALL))
        # carol comes, bob goes, and web2 stops using the shared generator.
        self.edit_spec("  bob: %s\n" % self.bob_r, "  carol: %s\n" % self.carol_r)
        web2 = "    key: %s\n    generators: [app, cluster]\n" % self.mkeys["web2"]
        self.edit_spec(web2, web2.replace("[app, cluster]", "[app]"))
        self.vargen("check", expect=4)

        # One machine: its files and its kept key, nothing else.
        db = {"db/app/a", "db/app/b", "machine-keys/db"}
        plan, summary = self.plan("--machine", "db", expect=4)
        self.assertEqual(set(plan), db)
        self.assertEqual(summary, "plan: 3 of 3 secrets would be resealed; nothing written")
        for name, reason in plan.items():
            self.assertTrue(reason.startswith("wrong-recipients: "), reason)
            words = reason[len("wrong-recipients: "):].split(" ")
            # carol, named as in the spec; bob is no longer in it.
            self.assertEqual(len(words), 2, reason)
            self.assertTrue(words[0].startswith("+" + self.carol_r[:10]), reason)
            self.assertTrue(words[0].endswith("(carol)"), reason)
            self.assertLess(len(words[0]), len(self.carol_r), "key not shortened: " + reason)
            self.assertTrue(words[1].startswith("-" + self.bob_r[:10]), reason)
            self.assertNotIn(self.mkeys["db"][:10], reason)
        self.rekey_as_planned(plan, "--machine", "db")
        self.assert_nothing_to_do("--machine", "db", checked=3)

        # Everything else; -i is accepted and ignored (this one does not
        # even exist), and the plan needs no lock: another writer holds it.
        import fcntl  # noqa: E402 (only here)
        lock = os.open(self.vars, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            plan, summary = self.plan("-i", os.path.join(self.dir, "nope.key"), expect=4)
            p = self.varseal("rekey", "-i", self.alice, expect=None)
            self.assertIn("another vargen or varseal", self.assert_one_line_error(p, "varseal"))
        finally:
            os.close(lock)
        self.assertEqual(set(plan), self.ALL - db)
        self.assertEqual(summary, "plan: 7 of 10 secrets would be resealed; nothing written")
        token = plan["shared/cluster/token"]
        self.assertRegex(token, r"^wrong-recipients: \+\S+\(carol\) (-\S+ -\S+\(web2\)|"
                                r"-\S+\(web2\) -\S+)$")
        self.assertIn("-" + self.mkeys["web2"][:10], token)
        self.rekey_as_planned(plan)
        self.assert_nothing_to_do(checked=len(self.ALL))
        self.vargen("check")

    def test_plan_rotate(self):
        web1 = {"web1/app/a", "web1/app/b", "shared/cluster/token", "machine-keys/web1"}
        plan, summary = self.plan("--rotate", "--machine", "web1", expect=4)
        self.assertEqual(plan, {n: "--rotate: new file key" for n in web1})
        self.assertEqual(summary, "plan: 4 of 4 secrets would be resealed; nothing written")
        self.rekey_as_planned(plan, "--rotate", "--machine", "web1")
        # A rotation is always something to do; the recipients still agree.
        self.assertEqual(set(self.plan("--rotate", expect=4)[0]), self.ALL)
        self.assert_nothing_to_do(checked=len(self.ALL))
        # Both at once: the reason names both.
        self.edit_spec("  bob: %s\n" % self.bob_r, "")
        plan, _ = self.plan("--rotate", "--machine", "db", expect=4)
        self.assertEqual(set(plan), {"db/app/a", "db/app/b", "machine-keys/db"})
        for reason in plan.values():
            self.assertRegex(reason, r"^wrong-recipients: -\S+; --rotate: new file key$")
        self.rekey_as_planned(plan, "--rotate", "--machine", "db")

    def test_plan_errors(self):
        before = store_state(self.vars)
        p = self.varseal("rekey", "--plan", "--machine", "nope", expect=None)
        self.assertIn("no machine named nope", self.assert_one_line_error(p, "varseal"))
        self.assertEqual(p.stdout, b"")
        p = self.varseal("rekey", "--plan", "extra", expect=2)
        self.assertEqual(p.stdout, b"")
        self.assertIn("usage", p.stderr.decode())
        # A machine without a key: rekey cannot seal to it, nor plan it.
        self.edit_spec("machines:\n", "machines:\n  new:\n    generators: [app]\n")
        p = self.varseal("rekey", "--plan", expect=None)
        self.assertIn("new has no key", self.assert_one_line_error(p, "varseal"))
        self.assertEqual(p.stdout, b"")
        self.assertEqual(store_state(self.vars), before)


    def test_plan_ssh_keys(self):
        # SSH recipients are compared by key, as rekey compares them: a new
        # comment is nothing to do, a new key is named by its admin.
        keys = {}
        for who, comment in (("dave", "dave@laptop"), ("erin", "erin@laptop")):
            path = os.path.join(self.dir, who + "_ssh")
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                check=True)
            keys[who] = read(path + ".pub").decode().strip()
        self.edit_spec("admins:\n", "admins:\n  dave: \"%s\"\n" % keys["dave"])
        self.varseal("rekey", "-i", self.alice)
        self.assert_nothing_to_do(checked=len(self.ALL))
        self.edit_spec("dave@laptop", "dave@desk")
        self.assert_nothing_to_do(checked=len(self.ALL))
        self.edit_spec("admins:\n", "admins:\n  erin: \"%s\"\n" % keys["erin"])
        plan, _ = self.plan("--machine", "db", expect=4)
        erin_key = keys["erin"].split(" ")[1]
        for reason in plan.values():
            self.assertEqual(reason, "wrong-recipients: +ssh-ed25519...%s(erin)" % erin_key[-8:])
        self.rekey_as_planned(plan, "--machine", "db")


if __name__ == "__main__":
    for tool in (VARGEN, VARSEAL, AGE):
        if not os.access(tool, os.X_OK):
            sys.exit("vars_test: %s is not an executable" % tool)
    unittest.main(verbosity=2)
