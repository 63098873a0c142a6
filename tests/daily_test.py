#!/usr/bin/env python3
"""Day-to-day administration (issue 12, first points).

- The spec is found as git finds its repository: -f, else $VARS_SPEC, else
  vars.yaml in the working directory or its nearest parent; the store is
  beside the spec whatever the working directory (also from inside vars/).
- A public key given where an identity belongs (a .pub file, an age1...
  recipient, an SSH public key line) is called a public key, before any
  permission check.
- Global options before the verb: `vargen -f SPEC check`, `varseal -f SPEC
  get ...`, `varinject -f SPEC ... install DIR`, in every form getopt takes
  (`--file=SPEC`, `-fSPEC`); an unknown one is a usage error naming it.
- `-o FILE` on `varseal get` and `varseal machine key`: written atomically
  with mode 0600 whatever the umask, never replacing what is there without
  --force (a symlink at FILE is never written through), in a directory no
  other user could swap it in; the example units use it.
- `varseal machine keygen M...`: several machines in one transaction; one
  refused changes nothing for any.

Run as `python3 tests/daily_test.py` with VARGEN and VARSEAL set. Standard
library only.
"""
import os
import re
import shutil
import stat
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import (VARGEN, VARINJECT, VARSEAL, ROOT, checked, describe, read, run,  # noqa: E402
                     write)
from vars_test import AGE, RECIPIENT_RE, VarsCase  # noqa: E402

USER = "vars-daily-test"  # an unprivileged user, for the -o parent directory check

SPEC = """\
admins:
  alice: @A@
machines:
  web1:
    generators: [api]
generators:
  api:
    files:
      token: {kind: random}
"""


class SpecFromAnywhere(VarsCase):
    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(SPEC, a=self.alice_r)
        self.varseal("machine", "keygen", "web1")
        self.vargen("generate")

    def test_from_a_subdirectory(self):
        deep = os.path.join(self.vars, "per-machine", "web1", "api")
        for cwd in (deep, self.vars, os.path.join(self.dir, "vars")):
            with self.subTest(cwd=cwd):
                p = run([VARGEN, "check"], cwd=cwd)
                self.assertEqual((p.returncode, p.stdout), (0, b"check: all 2 ok\n"), describe(p))
                p = run([VARSEAL, "get", "-i", self.alice, "web1", "api/token"], cwd=cwd)
                self.assertEqual(p.returncode, 0, describe(p))
                self.assertEqual(len(p.stdout), 44)
        # The spec's errors name it as reached from there.
        write(self.spec, read(self.spec).decode().replace("kind: random", "kind: randomm"),
              0o644)
        p = run([VARGEN, "check"], cwd=deep)
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertRegex(p.stderr.decode(), r"^vargen: error: \.\./\.\./\.\./\.\./vars\.yaml:\d+:\d+: ")

    def test_vars_spec_and_f(self):
        elsewhere = os.path.join(self.dir, "elsewhere")
        os.mkdir(elsewhere)
        env = dict(os.environ, VARS_SPEC=self.spec)
        p = run([VARGEN, "check"], cwd=elsewhere, env=env)
        self.assertEqual((p.returncode, p.stdout), (0, b"check: all 2 ok\n"), describe(p))
        # -f wins over VARS_SPEC.
        other = os.path.join(elsewhere, "vars.yaml")
        write(other, "admins: {}\nmachines: {}\ngenerators: {}\n", 0o644)
        p = run([VARGEN, "check", "-f", other], cwd=elsewhere, env=env)
        self.assertIn(b"no store at", p.stderr, describe(p))
        # No spec here or above: one line saying where it looked and what to do.
        os.unlink(other)
        env.pop("VARS_SPEC")
        p = run([VARGEN, "check"], cwd="/", env=env)
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertEqual(p.stderr.decode(), "vargen: error: no vars.yaml here or in any parent "
                         "directory (give -f SPEC, or set VARS_SPEC)\n")


class PublicKeyAsIdentity(VarsCase):
    def test_public_keys_are_named(self):
        self.admins("alice")
        sealed = os.path.join(self.dir, "x.age")
        checked([VARSEAL, "encrypt", "-r", self.alice_r, "-o", sealed], stdin=b"x")
        age_pub = os.path.join(self.dir, "alice.pub")
        write(age_pub, self.alice_r + "\n", 0o644)
        ssh = os.path.join(self.dir, "id")
        checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ssh])
        os.chmod(ssh + ".pub", 0o644)
        for pub in (age_pub, ssh + ".pub"):
            for extra in ((), ("--insecure-permissions",)):
                with self.subTest(pub=pub, extra=extra):
                    p = run([VARSEAL, "decrypt", "-i", pub, *extra, sealed])
                    line = self.assert_one_line_error(p, "varseal")
                    self.assertEqual(line, "varseal: error: %s: is a public key; give the "
                                     "private key (the identity file it was made from)" % pub)
        # The private key itself still works.
        p = run([VARSEAL, "decrypt", "-i", self.alice, sealed])
        self.assertEqual((p.returncode, p.stdout), (0, b"x"), describe(p))


class GlobalOptions(VarsCase):
    """Options before the verb are the verb's, in every form getopt takes."""

    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(SPEC, a=self.alice_r)
        self.varseal("machine", "keygen", "web1")
        self.vargen("generate")
        self.elsewhere = os.path.join(self.dir, "elsewhere")
        os.mkdir(self.elsewhere)
        self.token = self.varseal("get", "-i", self.alice, "web1", "api/token").stdout
        self.assertEqual(len(self.token), 44)

    def test_vargen(self):
        for lead in (["-f", self.spec], ["--file", self.spec], ["--file=" + self.spec],
                     ["-f" + self.spec], ["--fi", self.spec], ["--store", self.dir, "-f", self.spec],
                     ["--store=" + self.dir, "--file=" + self.spec]):
            with self.subTest(lead=lead):
                p = run([VARGEN] + lead + ["check"], cwd=self.elsewhere)
                self.assertEqual((p.returncode, p.stdout), (0, b"check: all 2 ok\n"), describe(p))
        # Before and after the verb at once; the verb's own options after it.
        p = run([VARGEN, "--store", self.dir, "list", "-f", self.spec, "--json"],
                cwd=self.elsewhere)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn(b'"problems":0', p.stdout)
        # A store elsewhere given before the verb is the one used.
        p = run([VARGEN, "--store", self.elsewhere, "-f", self.spec, "list"], cwd=self.elsewhere)
        self.assertIn(b"no store at", p.stderr, describe(p))

    def test_varseal(self):
        for lead in (["-f", self.spec], ["--file=" + self.spec], ["-f" + self.spec],
                     ["-f", self.spec, "-i", self.alice], ["--store", self.dir, "-f", self.spec],
                     ["--file", self.spec, "--identity=" + self.alice]):
            args = [] if "-i" in lead or any(a.startswith("--identity") for a in lead) \
                else ["-i", self.alice]
            with self.subTest(lead=lead):
                p = run([VARSEAL] + lead + ["get"] + args + ["web1", "api/token"],
                        cwd=self.elsewhere)
                self.assertEqual((p.returncode, p.stdout), (0, self.token), describe(p))
        # machine has a sub-verb: the options go after it.
        p = run([VARSEAL, "-f", self.spec, "-i", self.alice, "machine", "key", "web1"],
                cwd=self.elsewhere)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn(b"AGE-SECRET-KEY-1", p.stdout)
        p = run([VARSEAL, "--file", self.spec, "rekey", "--plan"], cwd=self.elsewhere)
        self.assertEqual(p.returncode, 0, describe(p))
        p = run([VARSEAL, "-f", self.spec, "set", "web1", "api/token"], stdin=b"x" * 44,
                cwd=self.elsewhere)
        self.assertEqual(p.returncode, 0, describe(p))
        p = run([VARSEAL, "-f", self.spec, "get", "-i", self.alice, "web1", "api/token"],
                cwd=self.elsewhere)
        self.assertEqual((p.returncode, p.stdout), (0, b"x" * 44), describe(p))

    def test_varinject_install(self):
        key = os.path.join(self.dir, "web1.key")
        self.varseal("machine", "key", "-i", self.alice, "-o", key, "web1", expect=None)
        if not os.path.exists(key):
            write(key, self.varseal("machine", "key", "-i", self.alice, "web1").stdout, 0o600)
        target = os.path.join(self.elsewhere, "secrets")
        p = run([VARINJECT, "-f", self.spec, "--machine", "web1", "-i", key, "install",
                 "--allow-persistent", target], cwd=self.elsewhere)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(read(os.path.join(target, "api", "token")), self.token)

    def test_help_and_version_still_work(self):
        for tool in (VARGEN, VARSEAL):
            for args in (["--help"], ["-h"], ["help"], ["-f", self.spec, "--help"]):
                with self.subTest(tool=tool, args=args):
                    p = run([tool] + args)
                    self.assertEqual(p.returncode, 0, describe(p))
                    self.assertTrue(p.stdout.startswith(b"Usage: "), describe(p))
            p = run([tool, "--version"])
            self.assertEqual(p.returncode, 0, describe(p))
        p = run([VARGEN, "-f", self.spec, "help", "check"])
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertTrue(p.stdout.startswith(b"Usage: vargen check"), describe(p))
        for args in (["machine", "--help"], ["machine", "key", "--help"], ["help", "machine"]):
            p = run([VARSEAL, "-f", self.spec] + args)
            self.assertEqual(p.returncode, 0, describe(p))
            self.assertTrue(p.stdout.startswith(b"Usage: varseal machine"), describe(p))
        p = run([VARGEN, "-f", self.spec, "check", "--help"])
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertTrue(p.stdout.startswith(b"Usage: vargen check"), describe(p))

    def test_usage_errors(self):
        cases = [
            ([VARGEN, "-x", "check"], "'-x'"),
            ([VARGEN, "--bogus", "check"], "'--bogus'"),
            ([VARGEN, "--bogus=1", "check"], "'--bogus'"),
            ([VARGEN, "-f"], "-f"),
            ([VARGEN, "--file"], "--file"),
            ([VARGEN, "--store=x", "--file=" + self.spec], "command"),
            ([VARSEAL, "-q", "get", "web1", "api/token"], "'-q'"),
            ([VARSEAL, "--nope", "get", "web1", "api/token"], "'--nope'"),
            ([VARSEAL, "--insecure-permissions=yes", "get", "web1", "api/token"],
             "--insecure-permissions"),
            ([VARSEAL, "-m", "web1", "rekey"], "'-m'"),
            # Options before the verb are the store commands': not decrypt's.
            ([VARSEAL, "-f", self.spec, "decrypt", "x.age"], "decrypt"),
            ([VARSEAL, "-i", self.alice, "decrypt", "x.age"], "decrypt"),
            ([VARSEAL, "--store", self.dir, "keygen"], "keygen"),
            # A control byte in the word is escaped, not sent to the terminal.
            ([VARGEN, "--x\x1b[2J", "check"], "'--x\\x1b[2J'"),
        ]
        for cmd, named in cases:
            with self.subTest(cmd=cmd[1:]):
                p = run(cmd, cwd=self.elsewhere)
                self.assertEqual(p.returncode, 2, describe(p))
                self.assertEqual(p.stdout, b"", describe(p))
                err = p.stderr.decode()
                self.assertIn("usage", err.lower(), describe(p))
                self.assertIn(named, err, describe(p))
                self.assertNotIn("unknown command '-", err)
                self.assertNotIn("\x1b", err)


class OutputFile(VarsCase):
    """-o FILE on get and machine key: 0600 whatever the umask, atomic,
    never replacing (or writing through) what is there unless --force."""

    @classmethod
    def setUpClass(cls):
        testkit.add_user(USER, "-U")

    @classmethod
    def tearDownClass(cls):
        testkit.remove_users(USER)

    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(SPEC, a=self.alice_r)
        self.varseal("machine", "keygen", "web1")
        self.vargen("generate")
        self.token = self.varseal("get", "-i", self.alice, "web1", "api/token").stdout
        self.identity = self.varseal("machine", "key", "-i", self.alice, "web1").stdout
        self.verbs = {"get": (["get", "-i", self.alice, "web1", "api/token"], self.token),
                      "key": (["machine", "key", "-i", self.alice, "web1"], self.identity)}

    def out(self, verb, target, *extra, umask=0o022, expect=0, cwd=None):
        args, _ = self.verbs[verb]
        cut = 2 if verb == "key" else 1
        cmd = [VARSEAL] + args[:cut] + ["-o", target] + list(extra) + args[cut:]
        p = run(cmd, cwd=cwd or self.dir, preexec_fn=lambda: os.umask(umask))
        if expect is not None:
            self.assertEqual(p.returncode, expect, describe(p))
        return p

    def assert_private(self, path, content):
        st = os.lstat(path)
        self.assertTrue(stat.S_ISREG(st.st_mode), path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, path)
        self.assertEqual(read(path), content, path)

    def test_mode_0600_whatever_the_umask(self):
        for verb, (_, content) in self.verbs.items():
            for umask in (0o000, 0o022, 0o077, 0o277):
                with self.subTest(verb=verb, umask=oct(umask)):
                    target = os.path.join(self.dir, "%s-%o.out" % (verb, umask))
                    p = self.out(verb, target, umask=umask)
                    self.assertEqual((p.stdout, p.stderr), (b"", b""), describe(p))
                    self.assert_private(target, content)
                    # A relative name, and --output, from another directory.
                    sub = os.path.join(self.dir, "sub-%s-%o" % (verb, umask))
                    os.mkdir(sub)
                    args, _ = self.verbs[verb]
                    p = run([VARSEAL, "-f", self.spec] + args + ["--output", "k.out"], cwd=sub,
                            preexec_fn=lambda: os.umask(umask))
                    self.assertEqual(p.returncode, 0, describe(p))
                    self.assert_private(os.path.join(sub, "k.out"), content)
        # No temporary left beside them.
        self.assertEqual([n for n in os.listdir(self.dir) if n.startswith(".")], [])

    def test_dash_is_standard_output(self):
        for verb, (_, content) in self.verbs.items():
            p = self.out(verb, "-")
            self.assertEqual(p.stdout, content, describe(p))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "-")))

    def test_refuses_an_existing_file(self):
        for verb in self.verbs:
            with self.subTest(verb=verb):
                target = write(os.path.join(self.dir, "web1.key"), "old\n", 0o644)
                before = os.stat(target)
                p = self.out(verb, "web1.key", expect=None)
                line = self.assert_one_line_error(p, "varseal")
                self.assertEqual(line, "varseal: error: web1.key: exists (give --force to "
                                 "replace it)")
                after = os.stat(target)
                self.assertEqual((read(target), after.st_ino, stat.S_IMODE(after.st_mode)),
                                 (b"old\n", before.st_ino, 0o644))
                # --force replaces it: a new file, 0600, whatever the old mode was.
                self.out(verb, "web1.key", "--force")
                self.assert_private(target, self.verbs[verb][1])
                self.assertNotEqual(os.stat(target).st_ino, before.st_ino)
                os.unlink(target)
        # A directory is refused even with --force.
        os.mkdir(os.path.join(self.dir, "d"))
        p = self.out("key", "d", "--force", expect=None)
        self.assertIn("d: ", self.assert_one_line_error(p, "varseal"))
        self.assertEqual(os.listdir(os.path.join(self.dir, "d")), [])

    def test_symlink_is_never_written_through(self):
        elsewhere = os.path.join(self.dir, "elsewhere")
        os.mkdir(elsewhere)
        victim = write(os.path.join(elsewhere, "victim"), "victim\n", 0o644)
        for verb in self.verbs:
            for dest in (victim, os.path.join(elsewhere, "dangling")):
                with self.subTest(verb=verb, dest=dest):
                    link = os.path.join(self.dir, "web1.key")
                    if os.path.lexists(link):
                        os.unlink(link)
                    os.symlink(dest, link)
                    p = self.out(verb, link, expect=None)
                    self.assertIn("exists (give --force", self.assert_one_line_error(p, "varseal"))
                    self.assertEqual(os.readlink(link), dest)
                    # --force replaces the link itself, never what it names.
                    self.out(verb, link, "--force")
                    self.assert_private(link, self.verbs[verb][1])
                    self.assertEqual(read(victim), b"victim\n")
                    self.assertEqual(stat.S_IMODE(os.stat(victim).st_mode), 0o644)
                    self.assertFalse(os.path.lexists(os.path.join(elsewhere, "dangling")))
                    os.unlink(link)

    def test_directory_another_user_could_swap(self):
        uid, gid = _ids(USER)
        theirs = os.path.join(self.dir, "theirs")
        os.mkdir(theirs, 0o755)
        os.chown(theirs, uid, gid)
        shared = os.path.join(self.dir, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        for d, why in ((theirs, "owned by %s" % USER), (shared, "writable by group or others")):
            for verb in self.verbs:
                with self.subTest(dir=d, verb=verb):
                    target = os.path.join(d, "web1.key")
                    p = self.out(verb, target, "--force", expect=None)
                    line = self.assert_one_line_error(p, "varseal")
                    self.assertIn(d, line)
                    self.assertIn(why, line)
                    self.assertEqual(os.listdir(d), [])
        # The user cannot redirect it by planting the file's name either:
        # a sticky world-writable directory (/tmp's kind) is fine, and a
        # symlink of theirs planted there is refused, or replaced with --force.
        sticky = os.path.join(self.dir, "sticky")
        os.mkdir(sticky)
        os.chmod(sticky, 0o1777)
        os.chmod(self.dir, 0o755)
        mine = os.path.join(self.dir, "mine")
        os.mkdir(mine, 0o700)
        link = os.path.join(sticky, "web1.key")
        p = testkit.as_user(USER, "ln", "-s", os.path.join(mine, "stolen"), link)
        self.assertEqual(p.returncode, 0, describe(p))
        p = self.out("key", link, expect=None)
        self.assertIn("exists", self.assert_one_line_error(p, "varseal"))
        self.out("key", link, "--force")
        self.assert_private(link, self.identity)
        self.assertEqual(os.stat(link).st_uid, 0)
        self.assertEqual(os.listdir(mine), [])
        # In a directory of its own, the user writes its own files.
        os.chown(self.alice, uid, gid)
        for name in ("vars.yaml",):
            os.chmod(os.path.join(self.dir, name), 0o644)
        for top, dirs, files in os.walk(self.vars):
            os.chmod(top, 0o755)
            for f in files:
                os.chmod(os.path.join(top, f), 0o644)
        p = testkit.as_user(USER, VARSEAL, "get", "-f", self.spec, "-i", self.alice,
                            "-o", os.path.join(theirs, "token"), "web1", "api/token")
        self.assertEqual(p.returncode, 0, describe(p))
        self.assert_private(os.path.join(theirs, "token"), self.token)
        self.assertEqual(os.stat(os.path.join(theirs, "token")).st_uid, uid)

    def test_varinject_takes_the_key_file(self):
        target = os.path.join(self.dir, "secrets")
        self.out("key", "web1.key", umask=0o022)
        p = run([VARINJECT, "install", "-f", self.spec, "--machine", "web1", "-i", "web1.key",
                 "--allow-persistent", target], cwd=self.dir)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(read(os.path.join(target, "api", "token")), self.token)
        # What a shell redirect under umask 022 leaves, varinject refuses.
        redirected = write(os.path.join(self.dir, "redirected.key"), self.identity, 0o644)
        p = run([VARINJECT, "install", "-f", self.spec, "--machine", "web1", "-i", redirected,
                 "--allow-persistent", target + "2"], cwd=self.dir)
        self.assertNotEqual(p.returncode, 0, describe(p))

    def test_example_units_use_o(self):
        units = os.path.join(ROOT, "examples", "systemd")
        for name in ("microvm@.service", "microvm-qemu@.service"):
            with self.subTest(unit=name):
                text = read(os.path.join(units, name)).decode()
                lines = [l for l in text.splitlines() if "varseal machine key " in l]
                self.assertTrue(lines, "%s does not say how to install the key" % name)
                for line in lines:
                    self.assertIn(" -o ", line)
                    self.assertNotIn(">", line)
        for doc in ("README.md", "docs/varseal.md", "man/varseal.1.in", "man/vargen.1.in"):
            text = read(os.path.join(ROOT, doc)).decode()
            self.assertIsNone(re.search(r"machine key [^\n]*>", text), doc)


def _ids(user):
    import pwd
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


THREE = """\
admins:
  alice: @A@   # the admin
machines:
  web1:
    generators: [api]
  web2:   # the second
    generators: [api]
  db1:
    # the database
    generators: [api]
generators:
  api:
    files:
      token: {kind: random}
"""


class KeygenSeveral(VarsCase):
    """varseal machine keygen M...: one transaction for all of them."""

    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(THREE, a=self.alice_r)

    def snapshot(self):
        return {name: (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), data)
                for name, st, data in testkit.walk_entries(self.dir)}

    def test_three_machines_in_one_call(self):
        p = self.varseal("machine", "keygen", "web1", "web2", "db1")
        out = p.stdout.decode()
        keys = {}
        for m in ("web1", "web2", "db1"):
            found = re.search(r"(?m)^machine %s: (age1\S+)$" % m, out)
            self.assertTrue(found, out)
            keys[m] = found.group(1)
            self.assertRegex(keys[m], RECIPIENT_RE)
        self.assertEqual(len(set(keys.values())), 3)
        # The spec names each, its comments and layout kept.
        text = read(self.spec).decode()
        self.assertIn("  web1:\n    key: %s\n    generators: [api]\n" % keys["web1"], text)
        self.assertIn("  db1:\n    key: %s\n    # the database\n" % keys["db1"], text)
        self.assertIn("  web2:   # the second\n    key: %s\n" % keys["web2"], text)
        self.assertIn("alice: %s   # the admin" % self.alice_r, text)
        # Each key is kept and printed; the real age opens what is sealed to it.
        self.vargen("generate")
        for m, rec in keys.items():
            with self.subTest(machine=m):
                path = os.path.join(self.dir, m + ".key")
                write(path, self.varseal("machine", "key", "-i", self.alice, m).stdout, 0o600)
                p = run([VARSEAL, "pubkey", path])
                self.assertEqual(p.stdout.decode().strip(), rec, describe(p))
                sealed = os.path.join(self.dir, m + ".age")
                checked([VARSEAL, "encrypt", "-r", rec, "-o", sealed], stdin=b"to " + m.encode())
                p = run([AGE, "-d", "-i", path, sealed])
                self.assertEqual((p.returncode, p.stdout), (0, b"to " + m.encode()), describe(p))
                p = run([AGE, "-d", "-i", path, self.path(m, "api", "token")])
                self.assertEqual(p.returncode, 0, describe(p))
        p = self.vargen("check")
        self.assertEqual(p.stdout, b"check: all 6 ok\n", describe(p))
        # --force makes new keys for several at once.
        self.varseal("machine", "keygen", "--force", "web1", "db1")
        text = read(self.spec).decode()
        self.assertNotIn(keys["web1"], text)
        self.assertNotIn(keys["db1"], text)
        self.assertIn(keys["web2"], text)

    def test_one_refused_changes_nothing(self):
        self.varseal("machine", "keygen", "web2")
        cases = [
            (["web1", "nosuch", "db1"], 1, "nosuch"),
            (["web1", "db1", "web1"], 2, "web1"),
            (["web1", "web2", "db1"], 1, "web2"),   # already has a key, no --force
        ]
        for args, code, named in cases:
            with self.subTest(args=args):
                before = self.snapshot()
                p = self.varseal("machine", "keygen", *args, expect=None)
                self.assertEqual(p.returncode, code, describe(p))
                self.assertEqual(p.stdout, b"", describe(p))
                self.assertIn(named, p.stderr.decode())
                self.assertEqual(self.snapshot(), before)
        # A fresh store: nothing made either, not even vars/.
        shutil.rmtree(self.vars)
        self.write_spec(THREE, a=self.alice_r)
        before = self.snapshot()
        p = self.varseal("machine", "keygen", "web1", "nosuch", expect=None)
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertEqual(self.snapshot(), before)

    def test_restores_a_lost_line_with_the_others(self):
        self.varseal("machine", "keygen", "web1")
        text = read(self.spec).decode()
        key = re.search(r"key: (age1\S+)", text).group(1)
        write(self.spec, text.replace("    key: %s\n" % key, ""), 0o644)
        # Without an identity the kept key cannot be restored: nothing changes.
        before = self.snapshot()
        p = self.varseal("machine", "keygen", "web1", "db1", expect=None)
        self.assertIn("restores it", self.assert_one_line_error(p, "varseal"))
        self.assertEqual(self.snapshot(), before)
        out = self.varseal("machine", "keygen", "-i", self.alice, "web1", "db1").stdout.decode()
        self.assertIn("machine web1: %s\n  restored" % key, out)
        self.assertRegex(out, r"(?m)^machine db1: age1")
        self.assertIn("  web1:\n    key: %s\n" % key, read(self.spec).decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
