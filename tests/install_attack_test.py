#!/usr/bin/env python3
"""varinject install under attack (issue 8, items 1, 12 and 15).

`varinject install ... DIR` runs as root and writes DIR.generations/<N>/ and
the symlink DIR beside it; it removes the previous generation.  An
unprivileged user who can write DIR's parent (a world-writable sticky
directory such as /dev/shm) must not be able to make root follow a path the
user planted, delete through it, or keep a directory root writes secrets
into (docs/varinject.md, section "install").

The attacks are made by a real unprivileged user, vtest-install-atk (created
with useradd, removed at the end, a name no other test uses),
acting through runuser, in a root-owned mode 1777 directory under /dev/shm:

   1. DIR.generations/ made by the attacker before the first install, with
      DIR.generations/1 -> a victim directory full of root's files: install
      refuses with one line naming the path and why, every victim file
      survives, nothing is written into the attacker's directory.
   2. DIR, or DIR.new-1 (the link install renames over DIR), pre-planted by
      the attacker as a symlink: refused, left alone.
   3. DIR.generations/ owned by the attacker and empty: refused, stays empty.
   4. DIR's parent: world-writable without the sticky bit, owned by the
      attacker, or reached through the attacker's symlink (systemd-tmpfiles'
      "unsafe path transition"): refused before anything is created.
   5. After a legitimate install, DIR.generations/N planted as a symlink to
      the victim directory: install does not follow it (refuses; the victim
      and the live generation are untouched).
   6. Generation entries of the wrong type or owner (a regular file, a FIFO,
      a directory owned by the attacker): refused, left alone.

And the behaviours of items 12 and 15:

   7. Numeric owners and groups ("65534", and "54321", which names no one)
      are taken as ids, as install(1) and chown(1) take them.
   8. `install DIR/` (trailing slashes) works, twice; "/" is refused.
   9. A failed first install leaves no DIR.generations/ behind.

Needs root, runuser, useradd and /dev/shm on tmpfs.  Binaries come from
VARINJECT, VARGEN and VARSEAL (defaults under build/ of this checkout).  Run
as `python3 tests/install_attack_test.py` (a few seconds).  Standard library
only.
"""
import functools
import os
import pwd
import shutil
import stat
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import (VARGEN, VARINJECT, VARSEAL, as_user, checked, group_exists,  # noqa: E402
                     on_ram, remove_users, user_exists)

TIMEOUT = 30
MACHINE = "host1"
ATTACKER = "vtest-install-atk"   # this file's own: other tests create theirs

SPEC = """\
admins:
  alice: @ADMIN@
machines:
  host1:
    generators: [app]
generators:
  app:
    files:
      token: {kind: random, length: 32, owner: "@OWNER@", group: "@GROUP@", mode: "0440"}
      password: {kind: password, length: 20, owner: "@OWNER2@", group: "@GROUP2@"}
"""


# ---- helpers ---------------------------------------------------------------------

run = functools.partial(testkit.run, timeout=TIMEOUT)
checked = functools.partial(checked, timeout=TIMEOUT)
describe = functools.partial(testkit.describe, keep=2000)


def as_attacker(*cmd):
    """Runs cmd as the unprivileged attacker; it must succeed."""
    return as_user(ATTACKER, *cmd, timeout=TIMEOUT, check=True)


def tree(path):
    """Every entry under path (not following symlinks): relative name ->
    (type, uid, mode, content of regular files, target of symlinks)."""
    return {name: (stat.S_IFMT(st.st_mode), st.st_uid, stat.S_IMODE(st.st_mode), data)
            for name, st, data in testkit.walk_entries(path, read_links=True)}


# ---- the attacker, the store ---------------------------------------------------------

W = {}


def _remove_attacker():
    remove_users(ATTACKER)


def write_spec(name, owner="root", group="root", owner2="root", group2="root"):
    path = os.path.join(W["work"], name)
    with open(path, "w") as f:
        f.write(SPEC.replace("@ADMIN@", W["admin_pub"])
                .replace("@OWNER@", owner).replace("@GROUP@", group)
                .replace("@OWNER2@", owner2).replace("@GROUP2@", group2))
    return path


def setUpModule():
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (creates a user, runs install as root)")
    testkit.skip_unless_built(VARINJECT, VARGEN, VARSEAL)
    for tool in ("runuser", "useradd", "userdel"):
        if not shutil.which(tool):
            raise unittest.SkipTest("needs " + tool)
    if not os.path.isdir("/dev/shm") or not on_ram("/dev/shm"):
        raise unittest.SkipTest("needs /dev/shm on tmpfs")

    unittest.addModuleCleanup(_remove_attacker)
    _remove_attacker()   # a leftover of an interrupted run
    testkit.add_user(ATTACKER, "-U")
    W["uid"] = pwd.getpwnam(ATTACKER).pw_uid
    W["gid"] = pwd.getpwnam(ATTACKER).pw_gid

    work = tempfile.mkdtemp(prefix="vtest-install-attack.", dir="/dev/shm")
    unittest.addModuleCleanup(shutil.rmtree, work, ignore_errors=True)
    os.chmod(work, 0o711)   # the attacker reaches its playgrounds, lists nothing
    W["work"] = work
    W["admin"] = os.path.join(work, "admin.key")
    W["host"] = os.path.join(work, "host.key")
    store = testkit.TempStore(work, timeout=TIMEOUT)
    W["admin_pub"] = store.make_admin()
    W["spec"] = write_spec("vars.yaml")
    store.machine_key(MACHINE, W["host"])
    checked([VARGEN, "generate", "-f", W["spec"]])
    W["values"] = {
        f: checked([VARSEAL, "get", "-f", W["spec"], "-i", W["admin"], MACHINE,
                    "app/" + f]).stdout
        for f in ("token", "password")}


def install(target, spec=None, identity=None):
    return run([VARINJECT, "install", "-f", spec or W["spec"], "--machine", MACHINE,
                "-i", identity or W["host"], target])


class Base(unittest.TestCase):
    def workdir(self, name, mode=0o711, uid=0):
        d = tempfile.mkdtemp(prefix=name + ".", dir=W["work"])
        os.chown(d, uid, uid and W["gid"])
        os.chmod(d, mode)
        return d

    def sticky(self, name):
        """A root-owned world-writable sticky directory, like /dev/shm."""
        return self.workdir(name, 0o1777)

    def victim(self):
        """Root's directory full of root's files, and its tree to compare."""
        d = self.workdir("victim", 0o755)
        os.mkdir(os.path.join(d, "sub"), 0o700)
        for name in ("a", "b", "sub/c"):
            with open(os.path.join(d, name), "w") as f:
                f.write("root's " + name)
        return d, tree(d)

    def assert_victim_intact(self, v):
        d, before = v
        self.assertEqual(tree(d), before, "files under %s changed by install" % d)

    def assert_installed(self, target):
        self.assertTrue(os.path.islink(target), "%s is not a symlink" % target)
        for f, v in W["values"].items():
            with open(os.path.join(target, "app", f), "rb") as fh:
                self.assertEqual(fh.read(), v, "app/" + f)

    def assert_refused(self, p, *needles):
        """One line on stderr naming what was refused and why, nothing on stdout."""
        self.assertNotEqual(p.returncode, 0, describe(p))
        lines = p.stderr.decode(errors="replace").splitlines()
        if os.environ.get("VTEST_VERBOSE"):
            print("\n    " + "\n    ".join(lines), file=sys.stderr)
        self.assertEqual(len(lines), 1, "expected a one-line error:\n" + describe(p))
        self.assertTrue(lines[0].startswith("varinject: error: "), lines[0])
        for n in needles:
            self.assertIn(n, lines[0])
        self.assertEqual(p.stdout, b"", describe(p))


# ---- 1-3. planted before the first install ---------------------------------------------

class T1PlantedBeforeInstall(Base):
    def test_generations_with_symlink_to_victim(self):
        parent = self.sticky("t1")
        d = os.path.join(parent, "secrets")
        gens = d + ".generations"
        victim = self.victim()
        as_attacker("mkdir", "-m", "0755", gens)
        as_attacker("ln", "-s", victim[0], gens + "/1")
        planted = tree(gens)

        p = install(d)
        self.assert_victim_intact(victim)
        self.assert_refused(p, gens, "owned by " + ATTACKER)
        self.assertEqual(tree(gens), planted, "install wrote into the attacker's directory")
        self.assertEqual(os.lstat(gens).st_uid, W["uid"])
        self.assertFalse(os.path.lexists(d), "DIR created beside the attacker's directory")

    def test_attacker_symlink_as_dir(self):
        parent = self.sticky("t2")
        d = os.path.join(parent, "secrets")
        mine = self.workdir("t2-attacker", 0o755, W["uid"])
        as_attacker("ln", "-s", mine, d)

        p = install(d)
        self.assert_refused(p, d, "owned by " + ATTACKER)
        self.assertEqual(os.readlink(d), mine)
        self.assertEqual(os.lstat(d).st_uid, W["uid"])
        self.assertEqual(os.listdir(mine), [])
        self.assertEqual(sorted(os.listdir(parent)), ["secrets"], "install created files")

    def test_attacker_owned_generations(self):
        parent = self.sticky("t3")
        d = os.path.join(parent, "secrets")
        gens = d + ".generations"
        as_attacker("mkdir", "-m", "0777", gens)

        p = install(d)
        self.assert_refused(p, gens, "owned by " + ATTACKER)
        self.assertEqual(os.listdir(gens), [], "secrets written into the attacker's directory")
        self.assertEqual(os.lstat(gens).st_uid, W["uid"])
        self.assertFalse(os.path.lexists(d))

    def test_attacker_temporary_link(self):
        """DIR.new-1, the name install gives the link that replaces DIR."""
        parent = self.sticky("t2b")
        d = os.path.join(parent, "secrets")
        victim = self.victim()
        as_attacker("ln", "-s", victim[0], d + ".new-1")

        p = install(d)
        self.assert_victim_intact(victim)
        self.assert_refused(p, d + ".new-1", "owned by " + ATTACKER)
        self.assertEqual(os.readlink(d + ".new-1"), victim[0])
        self.assertEqual(sorted(os.listdir(parent)), ["secrets.new-1"],
                         "a failed install left this behind")

    def test_generations_is_attacker_symlink(self):
        parent = self.sticky("t3b")
        d = os.path.join(parent, "secrets")
        mine = self.workdir("t3b-attacker", 0o777, W["uid"])
        as_attacker("ln", "-s", mine, d + ".generations")

        p = install(d)
        self.assert_refused(p, d + ".generations")
        self.assertEqual(os.listdir(mine), [], "secrets written through the attacker's link")


# ---- 4. DIR's parent -------------------------------------------------------------------

class T4Parent(Base):
    def assert_parent_refused(self, parent, d, *needles):
        before = sorted(os.listdir(parent))
        p = install(d)
        self.assert_refused(p, *needles)
        self.assertEqual(sorted(os.listdir(parent)), before, "install created files")

    def test_world_writable_without_sticky(self):
        parent = self.workdir("t4-0777", 0o777)
        self.assert_parent_refused(parent, os.path.join(parent, "secrets"), parent, "sticky")

    def test_group_writable_without_sticky(self):
        parent = self.workdir("t4-0770", 0o770)
        os.chown(parent, 0, W["gid"])
        self.assert_parent_refused(parent, os.path.join(parent, "secrets"), parent, "sticky")

    def test_owned_by_attacker(self):
        parent = self.workdir("t4-attacker", 0o755, W["uid"])
        self.assert_parent_refused(parent, os.path.join(parent, "secrets"), parent,
                                   ATTACKER)

    def test_through_attacker_symlink(self):
        """A symlink of the attacker's, in a sticky directory, to a root-owned
        directory: an unsafe path transition, as systemd-tmpfiles calls it."""
        sticky = self.sticky("t4-link")
        rootdir = self.workdir("t4-rootdir", 0o755)
        link = os.path.join(sticky, "link")
        as_attacker("ln", "-s", rootdir, link)
        self.assert_parent_refused(rootdir, os.path.join(link, "secrets"), link,
                                   "unsafe path transition")


# ---- 5, 6. planted in DIR.generations after a legitimate install ---------------------------

class T5PlantedAfterInstall(Base):
    def installed(self, name):
        d = os.path.join(self.sticky(name), "secrets")
        p = install(d)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assert_installed(d)
        return d, os.readlink(d), tree(d + ".generations")

    def assert_untouched(self, d, link, gens_before):
        self.assertEqual(os.readlink(d), link, "DIR switched by a refused install")
        self.assertEqual(tree(d + ".generations"), gens_before)
        self.assert_installed(d)

    def test_generation_symlink_not_followed(self):
        d, link, _ = self.installed("t5")
        victim = self.victim()
        planted = os.path.join(d + ".generations", "5")
        os.symlink(victim[0], planted)
        os.lchown(planted, W["uid"], W["gid"])
        before = tree(d + ".generations")

        p = install(d)
        self.assert_victim_intact(victim)
        self.assert_refused(p, planted, "symlink")
        self.assert_untouched(d, link, before)

    def test_generation_root_symlink_not_followed(self):
        """Even root's own symlink there is not a generation install made."""
        d, link, _ = self.installed("t5-root")
        victim = self.victim()
        planted = os.path.join(d + ".generations", "9")
        os.symlink(victim[0], planted)
        before = tree(d + ".generations")

        p = install(d)
        self.assert_victim_intact(victim)
        self.assert_refused(p, planted, "symlink")
        self.assert_untouched(d, link, before)

    def test_generation_wrong_type_or_owner(self):
        def regular(path):
            with open(path, "w") as f:
                f.write("not a generation")

        def attacker_dir(path):
            os.mkdir(path, 0o755)
            with open(os.path.join(path, "keep"), "w") as f:
                f.write("the attacker's")
            os.chown(os.path.join(path, "keep"), W["uid"], W["gid"])
            os.chown(path, W["uid"], W["gid"])

        for what, make, reason in (("regular file", regular, "regular file"),
                                   ("fifo", os.mkfifo, "FIFO"),
                                   ("attacker's directory", attacker_dir,
                                    "owned by " + ATTACKER)):
            with self.subTest(entry=what):
                d, link, _ = self.installed("t6")
                planted = os.path.join(d + ".generations", "7")
                make(planted)
                before = tree(d + ".generations")
                p = install(d)
                self.assert_refused(p, planted, reason)
                self.assert_untouched(d, link, before)


# ---- 7. numeric owners and groups ----------------------------------------------------------

class T7NumericIds(Base):
    def test_numeric_owner_and_group(self):
        for n in ("65534", "54321"):
            self.assertFalse(user_exists(n) or group_exists(n),
                             "%s names a user or group on this host" % n)
        spec = write_spec("numeric.yaml", "65534", "65534", "54321", "54321")
        d = os.path.join(self.workdir("t7"), "secrets")
        p = install(d, spec=spec)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assert_installed(d)
        for f, (uid, gid, mode) in (("token", (65534, 65534, 0o440)),
                                    ("password", (54321, 54321, 0o400))):
            st = os.lstat(os.path.join(d, "app", f))
            self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                             (uid, gid, mode), "app/" + f)

    def test_name_still_looked_up(self):
        spec = write_spec("named.yaml", ATTACKER, ATTACKER)
        d = os.path.join(self.workdir("t7-named"), "secrets")
        p = install(d, spec=spec)
        self.assertEqual(p.returncode, 0, describe(p))
        st = os.lstat(os.path.join(d, "app", "token"))
        self.assertEqual((st.st_uid, st.st_gid), (W["uid"], W["gid"]))


# ---- 8, 9. DIR/ and failed installs ----------------------------------------------------------

class T8Errors(Base):
    def test_trailing_slash(self):
        parent = self.workdir("t8")
        d = os.path.join(parent, "secrets")
        for arg in (d + "/", d + "//"):
            with self.subTest(arg=arg):
                p = install(arg)
                self.assertEqual(p.returncode, 0, describe(p))
                self.assert_installed(d)
                self.assertEqual(sorted(os.listdir(parent)),
                                 ["secrets", "secrets.generations"])
                self.assertEqual(len(os.listdir(d + ".generations")), 1)

    def test_root_refused(self):
        for arg in ("/", "//"):
            with self.subTest(arg=arg):
                p = install(arg)
                self.assert_refused(p)
                self.assertFalse(os.path.lexists("/.generations"))

    def test_failed_first_install_leaves_nothing(self):
        other = os.path.join(W["work"], "other.key")
        if not os.path.exists(other):
            checked([VARSEAL, "keygen", "-o", other])
            os.chmod(other, 0o600)
        for what, kw, needle in (
                ("unknown owner", {"spec": write_spec("nosuch.yaml", "vtest-nosuch")},
                 "vtest-nosuch"),
                ("wrong identity", {"identity": other}, "")):
            with self.subTest(failure=what):
                parent = self.workdir("t9")
                p = install(os.path.join(parent, "secrets"), **kw)
                self.assertNotEqual(p.returncode, 0, describe(p))
                self.assertIn(needle, p.stderr.decode(errors="replace"))
                self.assertEqual(os.listdir(parent), [], "a failed install left this behind")


if __name__ == "__main__":
    unittest.main(verbosity=2)
