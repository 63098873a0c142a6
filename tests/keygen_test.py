#!/usr/bin/env python3
"""`varseal machine keygen` over a store's life (issue 10, observations 4
and 5): a kept key is never replaced without --force, a key line lost from
the spec is restored from the kept key, every refusal says what is wrong,
and the spec and the store change together.

   1. a lost `key:` line: keygen without -i refuses and changes nothing;
      with -i it restores the same key (the kept one untouched); --force
      still makes a new one;
   2. the record of the kept key (vars/per-machine/M/.machine-key) and the
      refusals, each naming what is actually wrong;
   3. the spec edit prepared in memory: a leftover vars.yaml.varseal-check
      does not matter, an unwritable spec (as an unprivileged user) leaves
      spec and store byte for byte as they were, a missing store is said;
   4. SIGKILL before every write, rename, removal and sync of keygen (fresh
      key and --force), found by strace's syscall injection: the spec never
      names a key the store lacks, and the next keygen completes; for
      several machines in one keygen (issue 12) the spec names all the new
      keys or none.

Run as `python3 tests/keygen_test.py` with VARSEAL set (tests/CMakeLists.txt
does); the real `age` and `age-keygen` check what the store holds.
"""
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import VARSEAL, describe, read, run, write  # noqa: E402

AGE = shutil.which("age") or "/usr/bin/age"
AGE_KEYGEN = shutil.which("age-keygen") or "/usr/bin/age-keygen"
STRACE = shutil.which("strace")

TIMEOUT = 120  # seconds, for any single process
RECIPIENT_RE = re.compile(r"age1[02-9ac-hj-np-z]{58}")
USER = "varseal-keygen-test"  # the unprivileged user of T3's unwritable spec

SPEC = """\
# Two machines; comments and layout must survive `varseal machine keygen`.
admins:
  alice: @A@   # the first admin
  bob: @B@

machines:
  # the web server
  web1:
    generators: []   # nothing yet
  web2:   # the second one
    generators: []
generators: {}
"""


class KeygenCase(unittest.TestCase):
    """A temporary directory with two admins (alice, bob) and SPEC."""

    maxDiff = None

    def setUp(self):
        self.dir = testkit.temp_dir(self, "keygen_test.")
        self.vars = os.path.join(self.dir, "vars")
        self.spec = os.path.join(self.dir, "vars.yaml")
        self.alice, self.alice_r = self.key("alice")
        self.bob, self.bob_r = self.key("bob")
        write(self.spec, SPEC.replace("@A@", self.alice_r).replace("@B@", self.bob_r), 0o644)

    # -- processes

    def varseal(self, *args, expect=0, **kw):
        p = run([VARSEAL] + list(args), cwd=self.dir, **kw)
        if expect is not None:
            self.assertEqual(p.returncode, expect, describe(p))
        return p

    def one_line_error(self, p, code=1):
        """Exit code, and exactly one `varseal: error: ...` line on stderr."""
        self.assertEqual(p.returncode, code, describe(p))
        err = p.stderr.decode(errors="replace")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, "expected one line on stderr, got %r" % err)
        self.assertTrue(err.endswith("\n"), repr(err))
        self.assertTrue(lines[0].startswith("varseal: error: "), repr(lines[0]))
        return lines[0]

    def key(self, name):
        """A fresh identity file made by varseal keygen; (path, recipient)."""
        path = os.path.join(self.dir, name + ".key")
        self.varseal("keygen", "-o", path)
        recipient = self.varseal("pubkey", path).stdout.decode().strip()
        self.assertRegex(recipient, RECIPIENT_RE)
        return path, recipient

    # -- the spec

    def spec_key(self, machine, text=None):
        """The `key:` of machine in the spec (its block under machines:), or None."""
        lines = (read(self.spec).decode() if text is None else text).splitlines()
        start = next(i for i, l in enumerate(lines) if l.startswith("  %s:" % machine))
        for line in lines[start + 1:]:
            if line.strip() and not line.startswith("   ") and not line.lstrip().startswith("#"):
                break
            m = re.match(r"^\s+key:\s*(.*?)\s*(#.*)?$", line)
            if m:
                return m.group(1)
        return None

    def without_key_line(self, machine):
        """The spec as a bad merge leaves it: machine's `key:` line gone."""
        text = read(self.spec).decode()
        key = self.spec_key(machine)
        out = re.sub(r"(?m)^\s+key: %s\n" % re.escape(key), "", text, count=1)
        self.assertNotEqual(out, text)
        write(self.spec, out, 0o644)
        return out

    # -- the store

    def kept(self, machine, leaf="secret"):
        return os.path.join(self.vars, "machine-keys", machine, leaf)

    def record(self, machine):
        return os.path.join(self.vars, "per-machine", machine, ".machine-key")

    def public_key(self, identity):
        """age-keygen -y of identity text."""
        p = run([AGE_KEYGEN, "-y"], stdin=identity)
        self.assertEqual(p.returncode, 0, describe(p))
        return p.stdout.decode().strip()

    def kept_public_key(self, path, admin=None):
        """The public key of the identity sealed at path, opened by the real age."""
        p = run([AGE, "-d", "-i", admin or self.alice, path])
        self.assertEqual(p.returncode, 0, describe(p))
        return self.public_key(p.stdout)

    def printed_identity(self, machine):
        return self.varseal("machine", "key", "-i", self.alice, machine).stdout

    def snapshot(self):
        """Every file and directory under the test directory: path -> (type, mode, bytes)."""
        out = {}
        for name, st, data in testkit.walk_entries(self.dir):
            out[name] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), data)
        return out

    def assert_unchanged(self, before, what="keygen"):
        """Nothing under the test directory differs from the snapshot before."""
        after = self.snapshot()
        changed = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
        self.assertEqual(changed, [], "%s changed these" % what)

    def assert_agree(self, machine):
        """Spec, record and kept key name one key, nothing pending; returns it."""
        key = self.spec_key(machine)
        self.assertRegex(key or "", RECIPIENT_RE)
        self.assertEqual(read(self.record(machine)), (key + "\n").encode())
        self.assertEqual(stat.S_IMODE(os.stat(self.record(machine)).st_mode), 0o600)
        self.assertEqual(self.kept_public_key(self.kept(machine)), key)
        self.assertEqual(self.kept_public_key(self.kept(machine), self.bob), key)
        self.assertEqual(read(self.kept(machine, "recipients")),
                         "".join(r + "\n" for r in sorted([self.alice_r, self.bob_r])).encode())
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.kept(machine)))),
                         ["recipients", "secret"])
        self.assertEqual(self.public_key(self.printed_identity(machine)), key)
        return key


# ---- 1. a key line lost in a bad merge ---------------------------------------------

class T1LostKeyLine(KeygenCase):
    # With web1's key line deleted, keygen overwrote the kept key without
    # --force: the key installed on the host became useless.
    def test_restored_from_the_kept_key_not_replaced(self):
        self.varseal("machine", "keygen", "web1")
        with_key = read(self.spec)
        key = self.spec_key("web1")
        identity = self.printed_identity("web1")
        secret, manifest = read(self.kept("web1")), read(self.kept("web1", "recipients"))
        self.without_key_line("web1")
        before = self.snapshot()

        line = self.one_line_error(self.varseal("machine", "keygen", "web1", expect=None))
        self.assertIn("keeps", line)
        self.assertIn("varseal machine keygen -i ADMIN_KEY web1 restores it", line)
        self.assert_unchanged(before, "a refused keygen")

        out = self.varseal("machine", "keygen", "-i", self.alice, "web1").stdout.decode()
        self.assertIn(key, out)
        self.assertIn("restored", out)
        self.assertEqual(read(self.spec), with_key, "the key line is not back as it was")
        self.assertEqual(read(self.kept("web1")), secret)
        self.assertEqual(read(self.kept("web1", "recipients")), manifest)
        self.assertEqual(self.printed_identity("web1"), identity)
        self.assertEqual(self.assert_agree("web1"), key)

        # --force still replaces it.
        self.varseal("machine", "keygen", "--force", "web1")
        new = self.assert_agree("web1")
        self.assertNotEqual(new, key)
        self.assertNotEqual(self.printed_identity("web1"), identity)

    def test_lost_line_and_force_makes_a_new_key(self):
        self.varseal("machine", "keygen", "web1")
        key = self.spec_key("web1")
        self.without_key_line("web1")
        self.varseal("machine", "keygen", "--force", "web1")
        self.assertNotEqual(self.assert_agree("web1"), key)

    def test_restore_refuses_a_record_of_another_key(self):
        self.varseal("machine", "keygen", "web1")
        key = self.spec_key("web1")
        _, other = self.key("other")
        write(self.record("web1"), other + "\n", 0o600)
        self.without_key_line("web1")
        before = self.snapshot()
        p = self.varseal("machine", "keygen", "-i", self.alice, "web1", expect=None)
        line = self.one_line_error(p)
        self.assertIn(key, line)
        self.assertIn(other, line)
        self.assert_unchanged(before)

    def test_restore_with_an_identity_that_cannot_open_it(self):
        self.varseal("machine", "keygen", "web1")
        self.without_key_line("web1")
        stranger, _ = self.key("stranger")
        before = self.snapshot()
        p = self.varseal("machine", "keygen", "-i", stranger, "web1", expect=None)
        self.assertIn("no identity matched", self.one_line_error(p, code=3))
        self.assert_unchanged(before)

    def test_restore_writes_a_missing_record(self):
        # Stores made before the record existed: restoring adds it.
        self.varseal("machine", "keygen", "web1")
        key = self.spec_key("web1")
        os.unlink(self.record("web1"))
        self.without_key_line("web1")
        self.varseal("machine", "keygen", "-i", self.alice, "web1")
        self.assertEqual(self.assert_agree("web1"), key)


# ---- 2. the record of the kept key, and what each refusal says -------------------------

class T2RecordAndRefusals(KeygenCase):
    def test_record_written_with_the_key(self):
        self.varseal("machine", "keygen", "web1")
        self.assert_agree("web1")

    def test_each_refusal_says_what_is_wrong(self):
        self.varseal("machine", "keygen", "web1")
        key = self.spec_key("web1")
        # Kept in the store: --force replaces it.
        line = self.one_line_error(self.varseal("machine", "keygen", "web1", expect=None))
        self.assertIn("--force replaces it", line)
        self.assertIn("kept", line)
        self.assertIn(key, line)
        # Made by keygen, then removed from the store: missing.
        shutil.rmtree(os.path.dirname(self.kept("web1")))
        line = self.one_line_error(self.varseal("machine", "keygen", "web1", expect=None))
        self.assertIn("missing", line)
        self.assertNotIn("not made by", line)
        self.assertIn("--force", line)
        # An SSH host key: its private key stays on its host.
        ssh = os.path.join(self.dir, "web2_ssh")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "web2", "-f", ssh], check=True)
        pub = read(ssh + ".pub").decode().strip()
        text = read(self.spec).decode()
        write(self.spec, text.replace("  web2:   # the second one\n",
                                      "  web2:   # the second one\n    key: \"%s\"\n" % pub), 0o644)
        line = self.one_line_error(self.varseal("machine", "keygen", "web2", expect=None))
        self.assertIn("SSH host key", line)
        # An age key made elsewhere: no record of it in the store.
        _, made_elsewhere = self.key("elsewhere")
        write(self.spec, text.replace("  web2:   # the second one\n",
                                      "  web2:   # the second one\n    key: %s\n" % made_elsewhere),
              0o644)
        line = self.one_line_error(self.varseal("machine", "keygen", "web2", expect=None))
        self.assertIn("not made by varseal machine keygen", line)
        self.assertNotIn("missing", line)
        # The spec names a key other than the kept one.
        self.varseal("machine", "keygen", "--force", "web2")
        kept = self.spec_key("web2")
        spec = read(self.spec).decode()
        write(self.spec, spec.replace(kept, made_elsewhere), 0o644)
        line = self.one_line_error(self.varseal("machine", "keygen", "web2", expect=None))
        self.assertIn(kept, line)
        self.assertIn(made_elsewhere, line)


# ---- 3. the spec edit in memory first; spec and store together -------------------------

class T3SpecAndStoreTogether(KeygenCase):
    @classmethod
    def setUpClass(cls):
        testkit.add_user(USER, "-U")

    @classmethod
    def tearDownClass(cls):
        testkit.remove_users(USER)

    def test_leftover_check_file_does_not_matter(self):
        # A vars.yaml.varseal-check left by an older run made every later
        # keygen fail, with the new key already in the store.
        leftover = write(os.path.join(self.dir, "vars.yaml.varseal-check"), "junk\n", 0o644)
        self.varseal("machine", "keygen", "web1")
        first = self.assert_agree("web1")
        self.varseal("machine", "keygen", "--force", "web1")
        self.assertNotEqual(self.assert_agree("web1"), first)
        self.assertEqual(read(leftover), b"junk\n")

    def as_user(self, *args):
        return testkit.as_user(USER, VARSEAL, *args, cwd=self.dir)

    def test_unwritable_spec_changes_nothing(self):
        # keygen wrote the key into the store before it found that it could
        # not write the spec.
        self.varseal("machine", "keygen", "web1")
        # The user may write the store and read the spec and the admin key,
        # but not create files beside the spec.
        os.chmod(self.dir, 0o755)
        for d, dirs, files in os.walk(self.vars):
            for n in [d] + [os.path.join(d, f) for f in dirs + files]:
                os.lchown(n, *_ids(USER))
        os.chown(self.alice, *_ids(USER))
        self.assertNotEqual(os.stat(self.dir).st_uid, _ids(USER)[0])
        # And a store of the user's that does not exist yet.
        os.mkdir(os.path.join(self.dir, "elsewhere"), 0o755)
        os.chown(os.path.join(self.dir, "elsewhere"), *_ids(USER))

        before = self.snapshot()
        for args in (["--force", "web1"], ["web2"], ["--store", "elsewhere", "web2"]):
            p = self.as_user("machine", "keygen", *args)
            line = self.one_line_error(p)
            self.assertIn("vars.yaml", line)
            self.assert_unchanged(before, "keygen %s" % " ".join(args))

        # Restoring a lost line (the record missing too) changes nothing either.
        os.unlink(self.record("web1"))
        self.without_key_line("web1")
        before = self.snapshot()
        p = self.as_user("machine", "keygen", "-i", self.alice, "web1")
        self.one_line_error(p)
        self.assert_unchanged(before)

    def test_missing_store_is_said_once(self):
        p = self.varseal("machine", "keygen", "web1")
        err = p.stderr.decode()
        m = re.fullmatch(r"varseal: creating a new store at (.+)/vars\n", err)
        self.assertTrue(m, repr(err))
        self.assertEqual(os.path.realpath(os.path.join(self.dir, m.group(1), "vars")),
                         os.path.realpath(self.vars))
        self.assert_agree("web1")
        p = self.varseal("machine", "keygen", "web2")
        self.assertEqual(p.stderr, b"")
        self.assert_agree("web2")


def _ids(user):
    import pwd
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


# ---- 4. SIGKILL at every step ------------------------------------------------------------

# Every syscall through which keygen changes a file or makes it durable:
# killing the process before the Nth call of each, for every N, stops it
# between any two changes it makes.
KILL_SYSCALLS = ("write", "pwrite64", "fchmod", "fchown", "linkat", "rename", "renameat",
                 "renameat2", "unlink", "unlinkat", "rmdir", "mkdir", "mkdirat", "fsync",
                 "fdatasync", "syncfs")


def strace_works():
    if not STRACE:
        return False
    p = run([STRACE, "-f", "-qq", "-o", "/dev/null", "true"], timeout=30)
    return p.returncode == 0


class T4Kill(KeygenCase):
    def setUp(self):
        super().setUp()
        self.points = 0
        self.states = set()

    def reset(self, template):
        """The test directory's spec and store as in template (a copy)."""
        shutil.rmtree(self.vars, ignore_errors=True)
        for name in os.listdir(self.dir):
            if name.startswith(".vars.yaml."):
                os.unlink(os.path.join(self.dir, name))
        if os.path.isdir(os.path.join(template, "vars")):
            shutil.copytree(os.path.join(template, "vars"), self.vars, symlinks=True)
        shutil.copy2(os.path.join(template, "vars.yaml"), self.spec)

    def save(self):
        template = testkit.temp_dir(self, "keygen_template.")
        if os.path.isdir(self.vars):
            shutil.copytree(self.vars, os.path.join(template, "vars"), symlinks=True)
        shutil.copy2(self.spec, os.path.join(template, "vars.yaml"))
        return template

    def kill_runs(self, args, template):
        """Runs keygen args once per kill point, yielding after each kill
        (the caller resets the directory); a run that ends by itself resets
        it here."""
        cmd = [VARSEAL, "machine", "keygen"] + list(args)
        env = dict(os.environ)
        # LeakSanitizer stops the world with ptrace, which strace holds.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        if not strace_works():  # kill after increasing delays instead
            for i in range(200):
                proc = subprocess.Popen(cmd, cwd=self.dir, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    proc.wait(i * 0.0005)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                proc.wait(TIMEOUT)
                if proc.returncode == -signal.SIGKILL:
                    yield "after %.1f ms" % (i * 0.5)
                else:
                    self.reset(template)
            return
        # Which of KILL_SYSCALLS keygen makes at all (one traced run).
        log = os.path.join(template, "strace.log")
        p = run([STRACE, "-f", "-qq", "-o", log, "-e", "trace=" + ",".join(KILL_SYSCALLS)] + cmd,
                cwd=self.dir, env=env)
        self.assertEqual(p.returncode, 0, describe(p))
        made = set(re.findall(r"(?m)^\d+\s+(\w+)\(", read(log).decode()))
        self.reset(template)
        for syscall in (s for s in KILL_SYSCALLS if s in made):
            for n in range(1, 1000):
                trace = [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall,
                         "-e", "inject=%s:signal=KILL:when=%d" % (syscall, n)]
                p = run(trace + cmd, cwd=self.dir, env=env)
                if p.returncode == 0:
                    self.reset(template)
                    break  # fewer than n calls: every kill point of syscall done
                self.assertIn(p.returncode, (-signal.SIGKILL, 128 + signal.SIGKILL), describe(p))
                yield "killed before %s #%d" % (syscall, n)

    def check_killed(self, where, old_spec, expected_spec, machines=("web1",)):
        """After a kill: the spec is the old or the new one (naming every
        machine's new key, or none), and each key it names is kept in the
        store (the real age opens it) and printed by varseal machine key.
        Returns the keys the spec names."""
        spec = read(self.spec).decode()
        keys = tuple(self.spec_key(m, spec) for m in machines)
        if spec != old_spec:
            for key in keys:
                self.assertRegex(key or "", RECIPIENT_RE, where)
            self.assertEqual(spec, expected_spec(*keys), "%s: a spec neither old nor new" % where)
        for machine, key in zip(machines, keys):
            kept = set()
            for leaf in ("secret", "secret.pending"):
                if os.path.exists(self.kept(machine, leaf)):
                    kept.add(self.kept_public_key(self.kept(machine, leaf)))
            if key:
                self.assertIn(key, kept, "%s: the spec names %s for %s, the store keeps %s" % (
                    where, key, machine, kept or "nothing"))
                self.assertEqual(self.public_key(self.printed_identity(machine)), key, where)
        self.states.add((spec == old_spec, tuple(sorted(
            re.sub(r"\.[0-9a-f]{12}\.tmp$", ".*.tmp", os.path.relpath(os.path.join(d, f), self.vars))
            for d, _, files in os.walk(self.vars) for f in files))))
        return keys

    def kill_everywhere(self, args, again, old_keys, expected_spec, machines=("web1",)):
        template = self.save()
        old_spec = read(self.spec).decode()
        for where in self.kill_runs(args, template):
            self.points += 1
            self.check_killed(where, old_spec, expected_spec, machines)
            p = self.varseal("machine", "keygen", *again, expect=None)
            if p.returncode:
                # Only a keygen that had done everything but exit is refused.
                self.assertIn("already has a key", self.one_line_error(p), where)
                self.assertNotIn("--force", again)
            keys = tuple(self.assert_agree(m) for m in machines)
            for key, old in zip(keys, old_keys):
                self.assertNotEqual(key, old, where)
            self.assertEqual(read(self.spec).decode(), expected_spec(*keys), where)
            self.assertEqual([n for n in os.listdir(self.dir) if n.startswith(".vars.yaml")],
                             [], where)
            self.reset(template)
        self.assertGreater(self.points, 10)
        sys.stderr.write("[%d kill points, %d distinct states] " % (self.points,
                                                                    len(self.states)))

    def test_kill_fresh_key(self):
        old = read(self.spec).decode()
        self.kill_everywhere(["web1"], ["-i", self.alice, "web1"], [None],
                             lambda k: old.replace("  web1:\n", "  web1:\n    key: %s\n" % k))

    def test_kill_force(self):
        self.varseal("machine", "keygen", "web1")
        old = read(self.spec).decode()
        old_key = self.spec_key("web1")
        self.kill_everywhere(["--force", "web1"], ["--force", "web1"], [old_key],
                             lambda k: old.replace(old_key, k))

    # Several machines in one keygen: one commit point for all of them.
    THREE = ("web1", "web2", "db1")

    def add_db1(self):
        """A third machine, after web2; the spec's text."""
        text = read(self.spec).decode()
        tail = "    generators: []\ngenerators: {}\n"
        self.assertTrue(text.endswith(tail))
        text = text[:-len(tail)] + "    generators: []\n  db1:\n    generators: []\ngenerators: {}\n"
        write(self.spec, text, 0o644)
        return text

    def test_kill_three_machines(self):
        old = self.add_db1()

        def spec(k1, k2, k3):
            return old.replace("  web1:\n", "  web1:\n    key: %s\n" % k1).replace(
                "  web2:   # the second one\n", "  web2:   # the second one\n    key: %s\n" % k2
            ).replace("  db1:\n", "  db1:\n    key: %s\n" % k3)
        self.kill_everywhere(list(self.THREE), ["-i", self.alice] + list(self.THREE),
                             [None] * 3, spec, self.THREE)

    def test_kill_three_machines_force(self):
        self.add_db1()
        self.varseal("machine", "keygen", *self.THREE)
        old = read(self.spec).decode()
        old_keys = [self.spec_key(m) for m in self.THREE]

        def spec(*keys):
            text = old
            for before, after in zip(old_keys, keys):
                text = text.replace(before, after)
            return text
        self.kill_everywhere(["--force"] + list(self.THREE), ["--force"] + list(self.THREE),
                             old_keys, spec, self.THREE)


if __name__ == "__main__":
    for tool in (VARSEAL, AGE, AGE_KEYGEN):
        if not os.access(tool, os.X_OK):
            sys.exit("keygen_test: %s is not an executable" % tool)
    unittest.main(verbosity=2)
