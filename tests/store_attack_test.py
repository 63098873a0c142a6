#!/usr/bin/env python3
"""The vars store under kills, hostile trees and special files (issue 8).

   6. Kills during a commit.  `vargen generate --regenerate` of an age key
      pair, a WireGuard key pair and a script writing three related files is
      SIGKILLed by strace's fault injection at its 1st, 2nd, ... rename
      (rename, renameat, renameat2) and, separately, at its 1st, 2nd, ...
      fsync (fsync, fdatasync, syncfs), until a run completes (the signal
      comes on entry: the Nth call never happens).  After every
      kill `vargen check` must not call a generator ok whose files do not
      belong together (the identity is opened with the real age and turned
      into its recipient with age-keygen -y; WireGuard's public key is
      X25519 of the private one; the script's files are a value, its copy
      and its SHA-256), and a following `vargen generate` must leave every
      file ok and every pair matching.  Also: halves of two generations
      put together by hand (as a git merge can) are reported `incomplete`;
      `varseal set` and `varseal rekey` keep the commit record true, and
      a rekey killed at any rename or sync never makes generate replace a
      value; a store written before commit records existed still reads ok.
   7. A symlink inside the store, planted by a real unprivileged user
      (vtest-storeatk) through a world-writable vars/per-machine, as in a
      shared repository: `varseal set`, `varseal rekey` and `vargen
      generate` run by root write nothing where it points, and every
      reader (`varseal get`, `vargen check`, `varinject install`) refuses
      to follow it, each with one clear line; the same again with openat2
      made to fail with ENOSYS (strace), as on kernels without it.  A store
      root named through a symlink by the user still works.  The
      attacker's own machine directory moved out of the store while root's
      generate, held by strace, is between resolving it and making a
      directory in it: only temporaries of ciphertext (root's, 0600) go
      with it, the commit fails in one line, and the store is as before.
      Two symlinked machines in a store large enough for the survey to
      run on every CPU: check and list name the first, every time.
  10. A FIFO (and a device node) in place of a stored secret, a manifest, a
      value or a commit record: `vargen check`, `varseal get` and
      `varinject install` fail within a time limit with a message naming
      the file, instead of blocking in open().

Needs root (it creates the user vtest-storeatk and removes it at the end,
even on failure), runuser and strace.  Binaries come from VARGEN, VARSEAL
and VARINJECT (defaults under build/ of this checkout).  Run as
`python3 tests/store_attack_test.py`.  Standard library only.
"""
import hashlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import testkit  # noqa: E402
from testkit import (VARGEN, VARINJECT, VARSEAL, as_user, describe, read,  # noqa: E402
                     remove_users, run, user_exists, write)
from vars_test import AGE, VarsCase, b64_decode_strict, x25519  # noqa: E402

AGE_KEYGEN = shutil.which("age-keygen") or "/usr/bin/age-keygen"
STRACE = testkit.STRACE


HAVE_STRACE = testkit.strace_works()
ATTACKER = "vtest-storeatk"
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None  # varinject installs to RAM only
PROMPT = 30  # seconds: far more than any of these runs needs, far less than forever
MAX_INJECTIONS = 64  # a commit of one generator makes far fewer calls



traced_env = testkit.traced_env


STATE_RE = re.compile(r"^([^/\t]+)/([^/\t]+)/([^/\t]+)\t(secret|value)\t([a-z-]+)$")
KILL_SETS = {
    "rename": "rename,renameat,renameat2",
    "fsync": "fsync,fdatasync,syncfs",
}

PAIRS_SPEC = """\
admins:
  alice: @ALICE@
machines:
  vm:
    generators: [kp, wg, trio]
generators:
  kp:
    kind: age-keypair
  wg:
    kind: wireguard
  trio:
    files:
      seed: {}
      copy: {}
      digest: {secret: false}
    script: |
      openssl rand -hex 16 | tr -d '\\n' > "$out/seed"
      cp "$out/seed" "$out/copy"
      sha256sum "$out/seed" | cut -d' ' -f1 | tr -d '\\n' > "$out/digest"
"""
PAIR_FILES = {"kp": ("identity", "recipient"), "wg": ("private", "public"),
              "trio": ("seed", "copy", "digest")}


def parse_list(text):
    """{owner/gen/file: state} from vargen list or check."""
    return {name: m.group(5) for name, m in testkit.state_lines(text, STATE_RE)}


def snapshot(top):
    """Every entry under top (itself included): path -> (type, mode, uid, size, mtime, bytes)."""
    out = {}
    for d, dirs, files in os.walk(top):
        for name in [""] + dirs + files:
            path = os.path.join(d, name) if name else d
            if not name and d != top:
                continue
            st = os.lstat(path)
            data = read(path) if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(path, top)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                               st.st_uid, st.st_size, st.st_mtime_ns, data)
    return out


class StoreCase(VarsCase):
    wrapper = ()  # put before every tool run (strace, to hide openat2)

    def vargen(self, *args, stdin=None, expect=0, **kw):
        return self.tool(VARGEN, args, stdin, expect, **kw)

    def varseal(self, *args, stdin=None, expect=0, **kw):
        return self.tool(VARSEAL, args, stdin, expect, **kw)

    def tool(self, binary, args, stdin=None, expect=0, **kw):
        if self.wrapper:
            kw["env"] = traced_env()
        p = run(list(self.wrapper) + [binary] + list(args), cwd=self.dir, stdin=stdin, **kw)
        if expect is not None:
            self.assertEqual(p.returncode, expect, describe(p))
        return p

    def assert_refusal(self, p, tool, *needles):
        """Exit 1, one `tool: error:` line naming every needle."""
        line = self.assert_one_line_error(p, tool)
        for n in needles:
            self.assertIn(n, line)
        return line

    def list_states(self, *args):
        p = self.vargen("list", *args, expect=None)
        self.assertEqual(p.returncode, 0, describe(p))
        return parse_list(p.stdout.decode())


# ---- 6. kills during a commit ----------------------------------------------------------

@unittest.skipUnless(HAVE_STRACE, "needs strace, allowed to trace (scripts/deps.sh)")
class T6KillDuringCommit(StoreCase):
    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(PAIRS_SPEC, alice=self.alice_r)
        self.machine_keygen("vm")
        self.vargen("generate")
        self.vargen("check")
        self.pristine = os.path.join(self.dir, "pristine")
        shutil.copytree(self.vars, self.pristine, symlinks=True)

    def restore(self):
        shutil.rmtree(self.vars)
        shutil.copytree(self.pristine, self.vars, symlinks=True)

    def secret(self, gen, f):
        path = self.path("vm", gen, f)
        if not os.path.exists(path):
            return None
        p = run([AGE, "-d", "-i", self.alice, path])
        self.assertEqual(p.returncode, 0, describe(p))
        return p.stdout

    def value(self, gen, f):
        path = self.path("vm", gen, f, "value")
        return read(path) if os.path.exists(path) else None

    def matches(self, gen):
        """Whether gen's files belong together (None when one is missing)."""
        if gen == "kp":
            identity, recipient = self.secret("kp", "identity"), self.value("kp", "recipient")
            if identity is None or recipient is None:
                return None
            p = run([AGE_KEYGEN, "-y"], stdin=identity)
            self.assertEqual(p.returncode, 0, describe(p))
            return p.stdout.strip() == recipient.strip()
        if gen == "wg":
            private, public = self.secret("wg", "private"), self.value("wg", "public")
            if private is None or public is None:
                return None
            return x25519(b64_decode_strict(private.decode()),
                          (9).to_bytes(32, "little")) == b64_decode_strict(public.decode())
        seed, copy, digest = (self.secret("trio", "seed"), self.secret("trio", "copy"),
                              self.value("trio", "digest"))
        if seed is None or copy is None or digest is None:
            return None
        return copy == seed and digest == hashlib.sha256(seed).hexdigest().encode()

    def contents(self, gen):
        return tuple(self.secret(gen, f) if f not in ("recipient", "public", "digest")
                     else self.value(gen, f) for f in PAIR_FILES[gen])

    def killed_run(self, syscalls, n, cmd):
        """cmd under strace, SIGKILLed at its n-th call of syscalls; True when killed."""
        p = run([STRACE, "-f", "-qq", "-o", "/dev/null", "-e",
                 "inject=%s:signal=SIGKILL:when=%d" % (syscalls, n)] + cmd, cwd=self.dir,
                env=traced_env())
        if p.returncode == 0:
            return False
        self.assertIn(p.returncode, (-9, 137), describe(p))
        return True

    def verify_after_kill(self, gen, what, pristine):
        """check never ok for mixed files; generate then makes what is
        missing and --regenerate what is incomplete (never replaced unasked).
        pristine: gen's contents before the killed run."""
        p = self.vargen("check", expect=None)
        self.assertIn(p.returncode, (0, 4), describe(p))
        self.assertNotIn(".tmp", p.stdout.decode() + p.stderr.decode())
        states = self.list_states()
        mine = {k: v for k, v in states.items() if k.startswith("vm/%s/" % gen)}
        self.assertEqual(len(mine), len(PAIR_FILES[gen]), states)
        match = self.matches(gen)
        all_ok = all(v == "ok" for v in mine.values())
        if all_ok:
            self.assertTrue(match, "%s: check says %s is ok, but its files do not belong "
                            "together: %s" % (what, gen, mine))
            self.assertEqual(p.returncode, 0, describe(p))
            # New files are ok on the strength of a commit record naming
            # their bytes, not of the hash record alone (as in an older store).
            if self.contents(gen) != pristine:
                self.assertTrue(os.path.exists(os.path.join(self.vars, "per-machine", "vm", gen,
                                                            ".commit")),
                                "%s: new files ok without a commit record" % what)
        else:
            self.assertEqual(p.returncode, 4, describe(p))
            for k, v in mine.items():
                self.assertIn(v, ("ok", "incomplete", "missing"), "%s: %s is %s" % (what, k, v))
        # The other generators were not touched.
        for k, v in states.items():
            if not k.startswith("vm/%s/" % gen):
                self.assertEqual(v, "ok", "%s: %s" % (what, k))
        before = self.contents(gen)
        incomplete = any(v == "incomplete" for v in mine.values())
        p = self.vargen("generate", expect=4 if incomplete else 0)
        if incomplete:
            self.assertEqual(self.contents(gen), before, "%s: generate replaced an incomplete "
                             "%s unasked" % (what, gen))
            self.vargen("generate", "--regenerate", "--machine", "vm", "--generator", gen,
                        "--yes")
        p = self.vargen("check")
        self.assertTrue(self.matches(gen), "%s: after generate, %s's files differ" % (what, gen))
        if all_ok:
            self.assertEqual(self.contents(gen), before, "%s: generate remade an ok %s"
                             % (what, gen))
        return all_ok

    def kill_everywhere(self, gen, kind):
        pristine = None
        outcomes = []
        for n in range(1, MAX_INJECTIONS + 1):
            self.restore()
            if pristine is None:
                pristine = self.contents(gen)
            what = "%s, killed at %s call %d" % (gen, kind, n)
            if not self.killed_run(KILL_SETS[kind], n, [VARGEN, "generate", "--regenerate",
                                                        "--generator", gen, "--yes"]):
                self.assertNotEqual(self.contents(gen), pristine, "regenerate changed nothing")
                self.verify_after_kill(gen, what + " (completed)", pristine)
                return outcomes
            outcomes.append(self.verify_after_kill(gen, what, pristine))
        self.fail("generate still had %s calls after %d" % (kind, MAX_INJECTIONS))

    def test_kills_at_every_rename(self):
        for gen in PAIR_FILES:
            with self.subTest(gen=gen):
                outcomes = self.kill_everywhere(gen, "rename")
                # Renames are where a commit can mix generations: there are several.
                self.assertGreaterEqual(len(outcomes), len(PAIR_FILES[gen]))

    def test_kills_at_every_sync(self):
        for gen in PAIR_FILES:
            with self.subTest(gen=gen):
                outcomes = self.kill_everywhere(gen, "fsync")
                self.assertGreaterEqual(len(outcomes), 1)

    def test_halves_of_two_generations(self):
        """What a merge can do: one file from another generation."""
        old_identity = read(self.path("vm", "kp", "identity"))
        old_manifest = read(self.path("vm", "kp", "identity", "recipients"))
        self.vargen("generate", "--regenerate", "--generator", "kp", "--yes")
        self.assertNotEqual(read(self.path("vm", "kp", "identity")), old_identity)
        write(self.path("vm", "kp", "identity"), old_identity)
        write(self.path("vm", "kp", "identity", "recipients"), old_manifest)
        self.assertFalse(self.matches("kp"))
        states = self.list_states()
        self.assertEqual(states["vm/kp/identity"], "incomplete", states)
        p = self.vargen("check", expect=4)
        self.assertIn("vm/kp/identity\tsecret\tincomplete", p.stdout.decode())
        # Not replaced unasked (issue 10): named, with the command.
        p = self.vargen("generate", expect=4)
        self.assertIn("vargen generate --regenerate --generator kp", p.stderr.decode())
        self.assertFalse(self.matches("kp"))
        self.vargen("generate", "--regenerate", "--machine", "vm", "--generator", "kp", "--yes")
        self.vargen("check")
        self.assertTrue(self.matches("kp"))

    def test_set_keeps_the_record(self):
        self.varseal("set", "vm", "trio/digest", stdin=b"not the digest")
        # The record now names the value set: not incomplete, but set by hand.
        self.assertEqual(self.list_states()["vm/trio/digest"], "hand-set")
        self.vargen("check")
        p = self.vargen("generate")
        self.assertIn("up to date", p.stdout.decode())

    def test_rekey_keeps_the_record(self):
        self.admins("bob")
        text = read(self.spec).decode()
        write(self.spec, text.replace("  alice: %s\n" % self.alice_r,
                                      "  alice: %s\n  bob: %s\n" % (self.alice_r, self.bob_r)))
        self.vargen("check", expect=4)
        self.varseal("rekey", "-i", self.alice)
        self.vargen("check")
        self.varseal("rekey", "--rotate", "-i", self.alice)
        self.vargen("check")

    def test_rekey_killed_anywhere_keeps_values(self):
        self.admins("bob")
        text = read(self.spec).decode()
        write(self.spec, text.replace("  alice: %s\n" % self.alice_r,
                                      "  alice: %s\n  bob: %s\n" % (self.alice_r, self.bob_r)))
        shutil.rmtree(self.pristine)
        shutil.copytree(self.vars, self.pristine, symlinks=True)
        values = {g: self.contents(g) for g in PAIR_FILES}
        for kind in KILL_SETS:
            for n in range(1, MAX_INJECTIONS + 1):
                self.restore()
                what = "rekey killed at %s call %d" % (kind, n)
                done = not self.killed_run(KILL_SETS[kind], n,
                                           [VARSEAL, "rekey", "-i", self.alice])
                states = self.list_states()
                bad = {k: v for k, v in states.items()
                       if v not in ("ok", "wrong-recipients")}
                self.assertEqual(bad, {}, what)
                self.varseal("rekey", "-i", self.alice)
                self.vargen("check")
                p = self.vargen("generate")
                self.assertIn("up to date", p.stdout.decode(), what)
                self.assertEqual({g: self.contents(g) for g in PAIR_FILES}, values, what)
                if done:
                    break
            else:
                self.fail("rekey still had %s calls after %d" % (kind, MAX_INJECTIONS))

    def test_store_without_commit_records(self):
        """A store made before commit records: ok as it was, recorded when next written."""
        records = [os.path.join(d, ".commit") for d, _, files in os.walk(self.vars)
                   if ".commit" in files]
        self.assertEqual(len(records), len(PAIR_FILES))
        for r in records:
            os.unlink(r)
        self.vargen("check")
        p = self.vargen("generate")
        self.assertIn("up to date", p.stdout.decode())
        self.vargen("generate", "--regenerate", "--generator", "kp", "--yes")
        self.assertTrue(os.path.exists(os.path.join(self.vars, "per-machine", "vm", "kp",
                                                    ".commit")))
        self.vargen("check")


# ---- 7. symlinks inside the store ------------------------------------------------------

def _remove_attacker():
    remove_users(ATTACKER)


class T7SymlinkInStore(StoreCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not shutil.which("runuser"):
            raise unittest.SkipTest("needs root and runuser")
        cls.addClassCleanup(_remove_attacker)
        if not user_exists(ATTACKER):
            testkit.add_user(ATTACKER, "-N")  # retries while /etc/passwd is locked

    def setUp(self):
        super().setUp()
        os.chmod(self.dir, 0o755)
        self.admins("alice", "bob")
        self.write_spec(PAIRS_SPEC, alice=self.alice_r)
        self.machine = self.machine_keygen("vm")
        self.vargen("generate")
        # A shared repository: anyone may add machines.
        os.chmod(self.vars, 0o755)
        os.chmod(os.path.join(self.vars, "per-machine"), 0o777)
        # Root's directory elsewhere, here a copy of the machine's vars (so
        # that a rekey or regenerate following a link finds work to do there).
        elsewhere = tempfile.mkdtemp(prefix="vtest-victim.")
        self.addCleanup(shutil.rmtree, elsewhere)
        self.victim = os.path.join(elsewhere, "victim")
        shutil.copytree(os.path.join(self.vars, "per-machine", "vm"), self.victim)
        write(os.path.join(self.victim, "precious"), b"root's file\n")
        self.link = os.path.join(self.vars, "per-machine", "vm")

    def as_attacker(self, script, *args):
        p = as_user(ATTACKER, "/bin/sh", "-ec", script, "sh", *args)
        self.assertEqual(p.returncode, 0, describe(p))

    def plant(self, link, target):
        """The attacker moves link's directory aside and puts a symlink there."""
        self.as_attacker('mv "$1" "$1.moved" && ln -s "$2" "$1"', link, target)
        self.assertTrue(os.path.islink(link))
        self.assertEqual(os.lstat(link).st_uid, pwd.getpwnam(ATTACKER).pw_uid)

    def assert_symlink_refused(self, p, tool, where):
        line = self.assert_refusal(p, tool, where)
        self.assertIn("symlink", line)
        return line

    def test_writers_do_not_follow(self):
        self.plant(self.link, self.victim)
        before = snapshot(self.victim)
        where = os.path.join("vars", "per-machine", "vm")
        p = self.varseal("set", "vm", "trio/seed", stdin=b"planted", expect=None)
        self.assert_symlink_refused(p, "varseal", where)
        self.assertEqual(snapshot(self.victim), before)
        p = self.varseal("set", "vm", "trio/digest", stdin=b"planted", expect=None)
        self.assert_symlink_refused(p, "varseal", where)
        self.assertEqual(snapshot(self.victim), before)

        # bob joins: every secret needs resealing, the victim's copies too.
        text = read(self.spec).decode()
        write(self.spec, text.replace("  alice: %s\n" % self.alice_r,
                                      "  alice: %s\n  bob: %s\n" % (self.alice_r, self.bob_r)))
        p = self.varseal("rekey", "-i", self.alice, expect=None)
        self.assert_symlink_refused(p, "varseal", where)
        self.assertEqual(snapshot(self.victim), before)
        p = self.varseal("rekey", "--rotate", "-i", self.alice, expect=None)
        self.assert_symlink_refused(p, "varseal", where)
        self.assertEqual(snapshot(self.victim), before)

        for args in (("generate",), ("generate", "--regenerate", "--all", "--yes")):
            p = self.vargen(*args, expect=None)
            self.assert_symlink_refused(p, "vargen", where)
            self.assertEqual(snapshot(self.victim), before)
        self.assertEqual(os.readlink(self.link), self.victim)

    def test_readers_do_not_follow(self):
        self.plant(self.link, self.victim)
        where = os.path.join("vars", "per-machine", "vm")
        for args in (("get", "vm", "trio/seed", "-i", self.alice), ("get", "vm", "trio/digest")):
            p = self.varseal(*args, expect=None)
            self.assert_symlink_refused(p, "varseal", where)
            self.assertEqual(p.stdout, b"")
        for cmd in ("check", "list"):
            p = self.vargen(cmd, expect=None)
            self.assert_symlink_refused(p, "vargen", where)
        if not SHM:
            return
        shm = tempfile.mkdtemp(prefix="vtest-storeatk.", dir=SHM)
        self.addCleanup(shutil.rmtree, shm, ignore_errors=True)
        p = self.tool(VARINJECT, ["install", "-f", self.spec, "--machine", "vm", "-i",
                                  self.machine, os.path.join(shm, "vm")], expect=None,
                      timeout=PROMPT)
        self.assert_symlink_refused(p, "varinject", where)
        self.assertFalse(os.path.exists(os.path.join(shm, "vm")))

    def test_symlinked_leaf_and_vars(self):
        # The last component: a secret and a value that are symlinks.
        outside = write(os.path.join(self.dir, "outside"), b"outside\n")
        for gen, f, leaf in (("trio", "seed", "secret"), ("trio", "digest", "value")):
            path = self.path("vm", gen, f, leaf)
            where = os.path.relpath(path, self.dir)
            os.rename(path, path + ".moved")
            os.symlink(outside, path)
            args = ("get", "vm", "%s/%s" % (gen, f)) + (("-i", self.alice) if leaf == "secret"
                                                        else ())
            p = self.varseal(*args, expect=None)
            self.assert_symlink_refused(p, "varseal", where)
            p = self.vargen("check", expect=None)
            self.assert_symlink_refused(p, "vargen", where)
            os.unlink(path)
            os.rename(path + ".moved", path)
        self.vargen("check")
        # vars itself a symlink to a copy of the store's vars.
        copy = os.path.join(self.dir, "vars-copy")
        shutil.copytree(self.vars, copy, symlinks=True)
        shutil.rmtree(self.vars)
        os.symlink(copy, self.vars)
        before = snapshot(copy)
        p = self.varseal("set", "vm", "trio/seed", stdin=b"planted", expect=None)
        self.assert_symlink_refused(p, "varseal", "./vars:")
        p = self.vargen("check", expect=None)
        self.assert_symlink_refused(p, "vargen", "./vars:")
        self.assertEqual(snapshot(copy), before)

    def test_root_through_a_symlink(self):
        """The user may name the store root through a symlink: only the root."""
        alias = os.path.join(tempfile.mkdtemp(prefix="vtest-alias."), "store")
        self.addCleanup(shutil.rmtree, os.path.dirname(alias))
        os.symlink(self.dir, alias)
        spec = os.path.join(alias, "vars.yaml")
        p = self.vargen("check", "-f", spec)
        self.assertIn("ok", p.stdout.decode())
        self.varseal("set", "-f", spec, "vm", "trio/digest", stdin=b"via the alias")
        self.assertEqual(self.varseal("get", "--store", alias, "vm", "trio/digest").stdout,
                         b"via the alias")
        self.vargen("generate", "-f", spec, "--regenerate", "--generator", "kp", "--yes")
        self.vargen("check", "--store", alias)


@unittest.skipUnless(HAVE_STRACE, "needs strace, allowed to trace (scripts/deps.sh)")
class T7SymlinkInStoreWithoutOpenat2(T7SymlinkInStore):
    """The same, on a kernel without openat2 (strace makes it fail with
    ENOSYS): the component-by-component walk must refuse just the same."""
    wrapper = (STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=openat2", "-e",
               "inject=openat2:error=ENOSYS")



MOVED_SPEC = """\
admins:
  alice: @ALICE@
machines:
  vm:
    key: @VM@
    generators: [tok]
  evil:
    key: @VM@
    generators: [one]
generators:
  tok:
    files:
      token: {kind: random, length: 32}
  one:
    files:
      token: {kind: random, length: 32}
"""


@unittest.skipUnless(HAVE_STRACE, "needs strace, allowed to trace (scripts/deps.sh)")
class T7DirectoryMovedWhileStaging(StoreCase):
    """A directory the attacker owns inside the store, moved out of it
    between the writer's resolving it (openat2 beneath the root) and its
    making a directory in it (mkdirat on the descriptor). The descriptor
    follows the directory, so what the writer staged there before it
    noticed ends up outside: it must be temporaries of ciphertext only,
    root's and 0600, never a file under its final name; the commit, which
    resolves every directory again beneath the root, must fail in one
    line; and the store must be left as it was, ready for the next run.
    strace holds every mkdirat of vargen for HOLD_US, and the attacker
    moves the directory during the hold that follows its resolution."""
    HOLD_US = 1200000  # the move must land within it, on a loaded machine too
    # The staging's resolution of evil, as deepest_existing makes it: the
    # file's directory, then its parent, found missing, then evil found,
    # one after the other on one thread. (The survey before it looks up
    # evil/one and evil too, but never these three in a row.)
    STAGING = (re.compile(r'openat2\(\d+, "vars/per-machine/evil/one/token", .*ENOENT'),
               re.compile(r'openat2\(\d+, "vars/per-machine/evil/one", .*ENOENT'),
               re.compile(r'openat2\(\d+, "vars/per-machine/evil", .*\) += \d+$'))

    @classmethod
    def setUpClass(cls):
        T7SymlinkInStore.setUpClass.__func__(cls)

    as_attacker = T7SymlinkInStore.as_attacker

    def setUp(self):
        super().setUp()
        os.chmod(self.dir, 0o755)
        self.admins("alice", "vmkey")
        without_evil = MOVED_SPEC.replace("  evil:\n    key: @VM@\n    generators: [one]\n", "")
        self.write_spec(without_evil, alice=self.alice_r, vm=self.vmkey_r)
        self.vargen("generate")
        os.chmod(self.vars, 0o755)
        os.chmod(os.path.join(self.vars, "per-machine"), 0o777)
        # The attacker's machine directory, and a place of theirs outside
        # the store on the same file system (a rename cannot cross one).
        self.evil = os.path.join(self.vars, "per-machine", "evil")
        self.outside = tempfile.mkdtemp(prefix="vtest-moved.", dir=os.path.dirname(self.dir))
        self.addCleanup(shutil.rmtree, self.outside, ignore_errors=True)
        os.chown(self.outside, pwd.getpwnam(ATTACKER).pw_uid, -1)
        self.as_attacker('mkdir "$1" "$2/mine"', self.evil, self.outside)
        self.write_spec(MOVED_SPEC, alice=self.alice_r, vm=self.vmkey_r)

    def staging_resolved_evil(self, lines):
        by_thread = {}
        for line in lines:
            pid, _, call = line.partition(" ")
            by_thread.setdefault(pid, []).append(call)
        return any(all(rx.search(c) for rx, c in zip(self.STAGING, calls[i:i + 3]))
                   for calls in by_thread.values() for i in range(len(calls) - 2))

    def test_generate_fails_closed(self):
        before = snapshot(os.path.join(self.vars, "per-machine", "vm"))
        log = os.path.join(self.dir, "strace.log")
        cmd = [STRACE, "-f", "-qq", "-o", log, "-e", "trace=openat2,mkdirat",
               "-e", "inject=mkdirat:delay_enter=%d" % self.HOLD_US, VARGEN, "generate"]
        proc = subprocess.Popen(cmd, cwd=self.dir, env=traced_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        testkit.await_trace(proc, log, self.staging_resolved_evil, PROMPT,
                            "the staging's resolution of evil")
        moved = os.path.join(self.outside, "mine", "evil")
        self.as_attacker('mv "$1" "$2"', self.evil, moved)
        out, err = proc.communicate(timeout=PROMPT)
        p = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        # The directory it made in evil's descriptor was made after the move.
        self.assertRegex(read(log).decode(), r'mkdirat\(\d+, "one", 0700\) += 0 \(DELAYED\)')

        # The commit found the staged secret missing: one line, exit 1.
        self.assert_refusal(p, "vargen", "vars/per-machine/evil/one/token/secret")
        # Outside: only what was staged before the move, ciphertext.
        staged = []
        for d, dirs, files in os.walk(moved):
            for name in dirs:
                st = os.lstat(os.path.join(d, name))
                self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o700), name)
            for name in files:
                path = os.path.join(d, name)
                st = os.lstat(path)
                self.assertRegex(name, r"^\.[a-z]+\.[0-9a-f]+\.tmp$", "only temporaries: " + path)
                self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o600), path)
                if name.startswith(".secret."):
                    self.assertTrue(read(path).startswith(b"age-encryption.org/v1\n"), path)
                staged.append(os.path.relpath(path, moved))
        self.assertEqual([n.split(".")[1] for n in staged], ["secret"], staged)
        self.assertTrue(staged[0].startswith("one/token/"), staged)
        # Inside: vm untouched, nothing of evil's committed, no temporary
        # left, and the next run does the work.
        self.assertEqual(snapshot(os.path.join(self.vars, "per-machine", "vm")), before)
        for d, dirs, files in os.walk(self.vars):
            self.assertFalse([f for f in files if f.endswith(".tmp")], d)
        self.assertEqual(self.list_states()["evil/one/token"], "missing")
        self.vargen("generate")
        self.assertEqual(self.list_states()["evil/one/token"], "ok")


class T7SymlinksInALargeStore(StoreCase):
    """The survey reads a store of 32 generators or more a job per
    generator on every CPU (gen/survey.c). With two machines' directories
    swapped for symlinks, check and list must still refuse in one line
    naming the first of them in the spec's order, as the loop in order
    did, whichever thread meets its symlink first; and follow neither."""
    MACHINES = 40
    LINKED = ("m30", "m31")  # late (both threads at work), next to each other

    def test_first_refusal_wins(self):
        self.admins("alice", "vmkey")
        lines = ["admins:", "  alice: " + self.alice_r, "machines:"]
        lines += ["  m%02d: {key: %s, generators: [tok]}" % (i, self.vmkey_r)
                  for i in range(self.MACHINES)]
        lines += ["generators:", "  tok:", "    files:", "      token: {kind: random}"]
        write(self.spec, "\n".join(lines) + "\n", 0o644)
        self.vargen("generate")
        elsewhere = tempfile.mkdtemp(prefix="vtest-linked.")
        self.addCleanup(shutil.rmtree, elsewhere)
        for m in self.LINKED:
            path = os.path.join(self.vars, "per-machine", m)
            shutil.move(path, os.path.join(elsewhere, m))
            os.symlink(os.path.join(elsewhere, m), path)
        before = snapshot(elsewhere)
        first = os.path.join("vars", "per-machine", self.LINKED[0])
        for _ in range(20):  # with "the last failure wins", 1 run in 4 caught it at 5
            for cmd in ("check", "list"):
                p = self.vargen(cmd, expect=None)
                line = self.assert_refusal(p, "vargen", first + ":", "symlink")
                self.assertNotIn(self.LINKED[1], line)
        self.assertEqual(snapshot(elsewhere), before)


# ---- 10. special files in the store ----------------------------------------------------

class T10SpecialFiles(StoreCase):
    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(PAIRS_SPEC, alice=self.alice_r)
        self.machine = self.machine_keygen("vm")
        self.vargen("generate")

    def prompt(self, cmd):
        """Runs cmd; a process still blocked after PROMPT seconds fails the test."""
        try:
            return run(cmd, cwd=self.dir, timeout=PROMPT)
        except subprocess.TimeoutExpired:
            self.fail("%r blocked for %d s on a special file" % (cmd, PROMPT))

    def replace_with(self, path, kind):
        """Puts a FIFO or a character device at path; returns the undo."""
        os.rename(path, path + ".saved")
        if kind == "fifo":
            os.mkfifo(path, 0o600)
        else:
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's

        def undo():
            os.unlink(path)
            os.rename(path + ".saved", path)
        return undo

    def readers(self, gen, f, leaf):
        yield "vargen check", "vargen", self.prompt([VARGEN, "check"])
        if leaf == "recipients":
            return  # only check reads manifests
        yield "varseal get", "varseal", self.prompt([VARSEAL, "get", "vm", "%s/%s" % (gen, f),
                                                     "-i", self.alice])
        if not SHM:
            return
        shm = tempfile.mkdtemp(prefix="vtest-storeatk.", dir=SHM)
        self.addCleanup(shutil.rmtree, shm, ignore_errors=True)
        yield "varinject install", "varinject", self.prompt(
            [VARINJECT, "install", "-f", self.spec, "--machine", "vm", "-i", self.machine,
             os.path.join(shm, "vm")])

    def test_special_files_refused_promptly(self):
        cases = [("trio", "seed", "secret"), ("trio", "seed", "recipients"),
                 ("trio", "digest", "value"), ("kp", "identity", "secret")]
        for kind in ("fifo", "chardev"):
            for gen, f, leaf in cases:
                with self.subTest(kind=kind, leaf="%s/%s/%s" % (gen, f, leaf)):
                    path = self.path("vm", gen, f, leaf)
                    undo = self.replace_with(path, kind)
                    try:
                        for name, tool, p in self.readers(gen, f, leaf):
                            line = self.assert_refusal(p, tool, os.path.relpath(path, self.dir))
                            self.assertIn("not a regular file", line, name)
                    finally:
                        undo()
        self.vargen("check")
        # A commit record that is a FIFO.
        record = os.path.join(self.vars, "per-machine", "vm", "trio", ".commit")
        self.replace_with(record, "fifo")
        p = self.prompt([VARGEN, "check"])
        self.assertIn("not a regular file",
                      self.assert_refusal(p, "vargen", os.path.relpath(record, self.dir)))


if __name__ == "__main__":
    for tool in (VARGEN, VARSEAL, VARINJECT, AGE):
        if not os.access(tool, os.X_OK):
            sys.exit("store_attack_test: %s is not an executable" % tool)
    unittest.main(verbosity=2)
