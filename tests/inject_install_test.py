#!/usr/bin/env python3
"""varinject install: a machine's secrets as files on the host.

`varinject install [-f SPEC] [--store DIR] --machine M -i IDENTITY
[--allow-persistent] DIR` writes DIR.generations/<N>/<generator>/<file> with
each file's owner, group and mode from the spec, then points DIR (a symlink)
at it with one rename and removes the previous generation (docs/varinject.md,
section "install").

One store is built for the whole module with varseal and vargen: machine
host1 with a per-machine generator `app` (kinds random and password, owners
and groups of test users, modes 0400, 0440, 0600, and a public value with
mode 0444) and a shared generator `common`.  A copy of the store is kept
(store A), then `vargen generate --regenerate` makes store B, whose every
value differs.

   1. install: every file at DIR/<gen>/<file>, nothing else, with the spec's
      exact owner, group and mode and the value `varseal get` prints; DIR a
      symlink into DIR.generations/; every directory 0711.
   2. Permissions as the kernel enforces them, read with runuser: the owner
      reads its 0400 file; a member of the group reads the 0440 file but not
      the 0400 or 0600 ones; another user reads only the public 0444 file
      and cannot list a directory.
   3. Atomic swap: a reader process loops as fast as it can while 20 installs
      alternate stores A and B.  Each round opens DIR once (O_DIRECTORY,
      which resolves the symlink once and pins that generation) and reads
      every file relative to that descriptor; each value is classified as A,
      B or neither.  A round holding both A and B values (an in-place
      rewrite), a value that is neither (a torn or empty file), or a file
      missing from the generation DIR still points at (a switch before the
      set is complete) fails the test.  Rounds whose generation was removed
      under them (the old generation, removed after the switch) are counted
      but allowed.  Both value sets must have been seen.
   4. After an install only the new generation is left in DIR.generations/,
      its number above the previous one.
   5. Errors, each leaving DIR pointing at the previous generation and no
      new generation directory: an owner (and a group) that does not exist
      on the host (a one-line error naming it); a DIR that is a real
      directory; a DIR on a persistent file system without
      --allow-persistent (accepted with it); a wrong identity.

Needs root (it creates the users vtest-svc1, vtest-member, vtest-other and
the group vtest-grp, and removes them at the end, even on failure) and
runuser.  Work files go under /dev/shm.  Binaries come from VARINJECT,
VARGEN and VARSEAL (defaults under build/ of this checkout).  Run as
`python3 tests/inject_install_test.py` (a few seconds).  Standard library
only.
"""
import base64
import functools
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import VARGEN, VARINJECT, VARSEAL, as_user, on_ram, remove_users  # noqa: E402

TIMEOUT = 30
MACHINE = "host1"
GROUP = "vtest-grp"
OWNER = "vtest-svc1"
MEMBER = "vtest-member"     # in GROUP, not the owner
OTHER = "vtest-other"       # in neither
USERS = (OWNER, MEMBER, OTHER)

# (generator, file) -> (owner, group, mode), as the spec below says.
FILES = {
    ("app", "db-password"): (OWNER, GROUP, 0o400),
    ("app", "api-key"): (OWNER, GROUP, 0o440),
    ("app", "session-key"): (OWNER, GROUP, 0o600),
    ("app", "client-id"): (OWNER, GROUP, 0o444),        # public value
    ("common", "cluster-token"): ("root", GROUP, 0o440),  # shared generator
}

SPEC = """\
admins:
  alice: @ADMIN@
machines:
  host1:
    generators: [app, common]
generators:
  app:
    files:
      db-password: {kind: password, length: 24, owner: @OWNER_DB@, group: @GROUP_DB@, mode: "0400"}
      api-key: {kind: random, length: 32, owner: vtest-svc1, group: vtest-grp, mode: "0440"}
      session-key: {kind: random, length: 48, encoding: hex, owner: vtest-svc1, group: vtest-grp, mode: "0600"}
      client-id: {kind: password, length: 20, secret: false, owner: vtest-svc1, group: vtest-grp, mode: "0444"}
  common:
    share: true
    files:
      cluster-token: {kind: random, owner: root, group: vtest-grp, mode: "0440"}
"""

# The reader of test 3, run as its own process so that it reads truly
# concurrently with varinject.  argv: DIR, a JSON file with the file list and
# both value sets, a stop file.  Prints "ready" as it starts its rounds, then
# loops until the stop file exists and prints its tally as JSON.  It also ends
# when the test that started it is gone (killed by a ctest timeout, or a run
# stopped by hand): left behind, it spun on a whole core for an hour, and every
# test after it ran on one.
READER = r"""
import base64, json, os, sys
dir_, spec_path, stop = sys.argv[1:4]
parent = os.getppid()
with open(spec_path) as f:
    spec = json.load(f)
files = spec["files"]
sets = {k: [base64.b64decode(v) for v in spec[k]] for k in ("A", "B")}
t = {"rounds": 0, "A": 0, "B": 0, "mixed": 0, "unknown": 0, "removed": 0,
     "missing_live": 0, "no_dir": 0, "examples": [], "generations": []}
gens = set()
def example(what):
    if len(t["examples"]) < 5:
        t["examples"].append(what)
print("ready", flush=True)
while not os.path.exists(stop):
    if os.getppid() != parent:
        sys.exit(1)
    try:
        target = os.readlink(dir_)          # informational only
        fd = os.open(dir_, os.O_RDONLY | os.O_DIRECTORY)   # one resolution
    except FileNotFoundError:
        t["no_dir"] += 1
        example("DIR missing")
        continue
    labels, vals, aborted = [], [], False
    try:
        for i, rel in enumerate(files):
            try:
                f = os.open(rel, os.O_RDONLY, dir_fd=fd)
            except FileNotFoundError:
                # Legitimate only if this generation is no longer DIR's.
                here = os.fstat(fd)
                try:
                    live = os.stat(dir_)
                    same = (live.st_dev, live.st_ino) == (here.st_dev, here.st_ino)
                except FileNotFoundError:
                    same = False
                if same:
                    t["missing_live"] += 1
                    example("%s missing from the live generation %s" % (rel, target))
                else:
                    t["removed"] += 1
                aborted = True
                break
            try:
                chunks = []
                while True:
                    b = os.read(f, 65536)
                    if not b:
                        break
                    chunks.append(b)
                v = b"".join(chunks)
            finally:
                os.close(f)
            vals.append(v)
            labels.append("A" if v == sets["A"][i] else "B" if v == sets["B"][i] else "?")
    finally:
        os.close(fd)
    if aborted:
        continue
    t["rounds"] += 1
    gens.add(target)
    kinds = set(labels)
    if "?" in kinds:
        t["unknown"] += 1
        example("round in %s: %s has an unknown value (%d bytes)"
                % (target, files[labels.index("?")], len(vals[labels.index("?")])))
    elif kinds == {"A", "B"}:
        t["mixed"] += 1
        example("round in %s mixed: %s" % (target, " ".join(
            "%s=%s" % (n, l) for n, l in zip(files, labels))))
    else:
        t[labels[0]] += 1
t["generations"] = sorted(gens)
print(json.dumps(t), flush=True)
"""


# ---- helpers -------------------------------------------------------------------

run = functools.partial(testkit.run, timeout=TIMEOUT)
checked = functools.partial(testkit.checked, timeout=TIMEOUT)
describe = functools.partial(testkit.describe, keep=2000)


def snapshot(d):
    """Everything about an install target: the link, the generations, and every
    file's metadata and content.  Compared before and after a failed install."""
    parent = os.path.dirname(d)
    base = os.path.basename(d)
    snap = {"parent": sorted(n for n in os.listdir(parent)
                             if n == base or n.startswith(base + "."))}
    snap["link"] = os.readlink(d) if os.path.islink(d) else None
    snap["tree"] = {name: (st.st_ino, st.st_mode, st.st_uid, st.st_gid, data)
                    for name, st, data in testkit.walk_entries(d + ".generations")}
    return snap


# ---- users, group and store for the module -----------------------------------------

W = {}  # work directory, keys and the two value sets


def _remove_test_accounts():
    remove_users(*USERS, groups=(GROUP,))  # USERGROUPS_ENAB may leave a per-user group


def setUpModule():
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (creates users, chowns files)")
    testkit.skip_unless_built(VARINJECT, VARGEN, VARSEAL)
    if not shutil.which("runuser") or not os.path.isdir("/dev/shm") or not on_ram("/dev/shm"):
        raise unittest.SkipTest("needs runuser and /dev/shm on tmpfs")

    # Cleanups first, so that whatever happens below is undone.
    unittest.addModuleCleanup(_remove_test_accounts)
    _remove_test_accounts()  # leftovers of an interrupted run
    testkit.add_group(GROUP)
    testkit.add_user(OWNER, "-N", "-g", GROUP)
    testkit.add_user(MEMBER, "-N", "-g", GROUP)
    testkit.add_user(OTHER, "-U")

    work = tempfile.mkdtemp(prefix="vtest-install.", dir="/dev/shm")
    unittest.addModuleCleanup(shutil.rmtree, work, ignore_errors=True)
    os.chmod(work, 0o711)  # the test users must reach the install targets
    W["work"] = work
    W["admin"] = os.path.join(work, "admin.key")
    W["host"] = os.path.join(work, "host.key")
    W["spec"] = os.path.join(work, "vars.yaml")
    W["a"] = os.path.join(work, "store-a")
    W["b"] = os.path.join(work, "store-b")

    store = testkit.TempStore(work, timeout=TIMEOUT)
    store.make_admin()
    store.write_spec(SPEC.replace("@OWNER_DB@", OWNER).replace("@GROUP_DB@", GROUP))
    store.machine_key(MACHINE, W["host"])

    checked([VARGEN, "generate", "-f", W["spec"]])
    os.mkdir(W["a"])
    shutil.copytree(os.path.join(work, "vars"), os.path.join(W["a"], "vars"))
    checked([VARGEN, "generate", "-f", W["spec"], "--regenerate", "--all", "--yes"])
    os.mkdir(W["b"])
    shutil.copytree(os.path.join(work, "vars"), os.path.join(W["b"], "vars"))

    for k in ("a", "b"):
        W["values_" + k] = {
            key: checked([VARSEAL, "get", "-f", W["spec"], "--store", W[k], "-i", W["admin"],
                          MACHINE, "%s/%s" % key]).stdout
            for key in FILES}
    for key in FILES:
        if not W["values_a"][key] or W["values_a"][key] == W["values_b"][key]:
            raise AssertionError("store setup: %s/%s is empty or unchanged by --regenerate"
                                 % key)


def install(target, store=None, spec=None, identity=None, extra=()):
    cmd = [VARINJECT, "install", "-f", spec or W["spec"], "--machine", MACHINE,
           "-i", identity or W["host"]]
    if store:
        cmd += ["--store", store]
    return run(cmd + list(extra) + [target])


class Base(unittest.TestCase):
    def target(self, name):
        """A fresh install target DIR, under the module's /dev/shm directory."""
        d = tempfile.mkdtemp(prefix=name + ".", dir=W["work"])
        os.chmod(d, 0o711)
        return os.path.join(d, "secrets")

    def install_ok(self, target, **kw):
        p = install(target, **kw)
        self.assertEqual(p.returncode, 0, describe(p))
        return p

    def assert_values(self, target, values):
        for (g, f), v in values.items():
            with open(os.path.join(target, g, f), "rb") as fh:
                self.assertEqual(fh.read(), v, "%s/%s" % (g, f))


# ---- 1. install ----------------------------------------------------------------------

class T1Install(Base):
    def setUp(self):
        self.dir = self.target("t1")
        p = self.install_ok(self.dir)
        self.stdout = p.stdout.decode()

    def test_files_owner_group_mode_content(self):
        values = W["values_b"]  # the store beside the spec holds B
        for (g, f), (owner, group, mode) in FILES.items():
            path = os.path.join(self.dir, g, f)
            with self.subTest(file="%s/%s" % (g, f)):
                st = os.lstat(path)
                self.assertTrue(stat.S_ISREG(st.st_mode), "%s is not a regular file" % path)
                self.assertEqual(st.st_uid, pwd.getpwnam(owner).pw_uid, "owner of " + path)
                self.assertEqual(st.st_gid, grp.getgrnam(group).gr_gid, "group of " + path)
                self.assertEqual(oct(stat.S_IMODE(st.st_mode)), oct(mode), "mode of " + path)
                with open(path, "rb") as fh:
                    self.assertEqual(fh.read(), values[(g, f)], "content of " + path)

    def test_exactly_the_spec_files(self):
        want = {}
        for g, f in FILES:
            want.setdefault(g, set()).add(f)
        self.assertEqual(set(os.listdir(self.dir)), set(want))
        for g, names in want.items():
            self.assertEqual(set(os.listdir(os.path.join(self.dir, g))), names, g)

    def test_symlink_into_generations(self):
        self.assertTrue(os.path.islink(self.dir), "%s is not a symlink" % self.dir)
        gens = self.dir + ".generations"
        real = os.path.realpath(self.dir)
        self.assertEqual(os.path.dirname(real), os.path.realpath(gens), os.readlink(self.dir))
        self.assertTrue(os.path.basename(real).isdigit(), real)
        self.assertTrue(os.path.isdir(real))

    def test_directories_0711(self):
        gens = self.dir + ".generations"
        real = os.path.realpath(self.dir)
        for d in [gens, real] + [os.path.join(real, g) for g in {g for g, _ in FILES}]:
            with self.subTest(dir=d):
                st = os.lstat(d)
                self.assertTrue(stat.S_ISDIR(st.st_mode))
                self.assertEqual(oct(stat.S_IMODE(st.st_mode)), oct(0o711), d)

    def test_report_names_no_secret(self):
        self.assertIn(MACHINE, self.stdout)
        self.assertIn(self.dir, self.stdout)
        for key, v in W["values_b"].items():
            if key != ("app", "client-id"):   # the public value may appear
                self.assertNotIn(v.decode(errors="replace"), self.stdout)


# ---- 2. permissions as seen by the users -------------------------------------------------

class T2Permissions(Base):
    @classmethod
    def setUpClass(cls):
        d = tempfile.mkdtemp(prefix="t2.", dir=W["work"])
        os.chmod(d, 0o711)
        cls.dir = os.path.join(d, "secrets")
        p = install(cls.dir)
        if p.returncode != 0:
            raise AssertionError(describe(p))

    def read_as(self, user, g, f):
        return as_user(user, "cat", os.path.join(self.dir, g, f), timeout=TIMEOUT)

    def assert_reads(self, user, g, f):
        p = self.read_as(user, g, f)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(p.stdout, W["values_b"][(g, f)])

    def assert_denied(self, user, g, f):
        p = self.read_as(user, g, f)
        self.assertNotEqual(p.returncode, 0, "%s could read %s/%s" % (user, g, f))
        self.assertEqual(p.stdout, b"")
        self.assertIn(b"Permission denied", p.stderr, describe(p))

    def test_owner_reads_its_0400_file(self):
        self.assert_reads(OWNER, "app", "db-password")
        self.assert_reads(OWNER, "app", "session-key")

    def test_other_user_denied(self):
        self.assert_denied(OTHER, "app", "db-password")
        self.assert_denied(OTHER, "app", "api-key")
        self.assert_denied(OTHER, "app", "session-key")
        self.assert_denied(OTHER, "common", "cluster-token")

    def test_group_member(self):
        self.assert_reads(MEMBER, "app", "api-key")           # 0440
        self.assert_reads(MEMBER, "common", "cluster-token")  # 0440, owner root
        self.assert_denied(MEMBER, "app", "db-password")      # 0400
        self.assert_denied(MEMBER, "app", "session-key")      # 0600

    def test_public_value_readable_by_anyone(self):
        self.assert_reads(OTHER, "app", "client-id")

    def test_directories_not_listable(self):
        p = as_user(OTHER, "ls", os.path.join(self.dir, "app"), timeout=TIMEOUT)
        self.assertNotEqual(p.returncode, 0, describe(p))
        self.assertIn(b"Permission denied", p.stderr, describe(p))


# ---- 3. atomic swap under a concurrent reader ---------------------------------------------

class T3AtomicSwap(Base):
    INSTALLS = 20

    def test_reader_never_sees_a_mix(self):
        d = self.target("t3")
        keys = sorted(FILES)
        spec = os.path.join(os.path.dirname(d), "reader.json")
        with open(spec, "w") as f:
            json.dump({"files": ["%s/%s" % k for k in keys],
                       "A": [base64.b64encode(W["values_a"][k]).decode() for k in keys],
                       "B": [base64.b64encode(W["values_b"][k]).decode() for k in keys]}, f)
        os.chmod(spec, 0o600)
        stop = os.path.join(os.path.dirname(d), "stop")

        self.install_ok(d, store=W["a"])
        self.assert_values(d, W["values_a"])
        reader = subprocess.Popen([sys.executable, "-c", READER, d, spec, stop],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(reader.stdout.readline(), b"ready\n", "reader did not start")
            failures, leftovers = [], []
            for i in range(self.INSTALLS):
                which = "b" if i % 2 == 0 else "a"
                p = install(d, store=W[which])
                if p.returncode != 0:
                    failures.append(describe(p))
                gens = os.listdir(d + ".generations")
                if len(gens) != 1:
                    leftovers.append(gens)
                time.sleep(0.01)   # let the reader finish rounds on each set
            time.sleep(0.05)
        finally:
            with open(stop, "w"):
                pass
            try:
                out, err = reader.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                reader.kill()
                out, err = reader.communicate()
        self.assertEqual(failures, [])
        self.assertEqual(reader.returncode, 0, err.decode(errors="replace"))
        tally = json.loads(out.decode().strip().splitlines()[-1])
        summary = "reader tally: %s" % {k: v for k, v in tally.items() if k != "generations"}
        if "-v" in sys.argv or os.environ.get("VTEST_VERBOSE"):
            print(summary, file=sys.stderr)
        self.assertEqual(tally["mixed"], 0, summary)
        self.assertEqual(tally["unknown"], 0, summary)
        self.assertEqual(tally["missing_live"], 0, summary)
        self.assertEqual(tally["no_dir"], 0, summary)
        self.assertGreater(tally["A"], 0, summary)
        self.assertGreater(tally["B"], 0, summary)
        self.assertGreaterEqual(len(tally["generations"]), 3, summary)
        self.assertEqual(leftovers, [], "generations left beside the current one")
        # The last install (i = 19) used store A.
        self.assert_values(d, W["values_a"])


# ---- 4. the old generation is removed -------------------------------------------------------

class T4OldGenerationRemoved(Base):
    def test_only_new_generation_left(self):
        d = self.target("t4")
        gens = d + ".generations"
        self.install_ok(d, store=W["a"])
        first = os.readlink(d)
        first_dir = os.path.realpath(d)
        self.assertEqual(os.listdir(gens), [os.path.basename(first_dir)])

        self.install_ok(d, store=W["b"])
        second = os.readlink(d)
        self.assertNotEqual(first, second)
        self.assertFalse(os.path.exists(first_dir), "old generation %s still there" % first_dir)
        self.assertEqual(os.listdir(gens), [os.path.basename(os.path.realpath(d))])
        self.assertGreater(int(os.path.basename(second)), int(os.path.basename(first)))
        self.assert_values(d, W["values_b"])
        # Nothing else left beside DIR (no temporary link).
        parent = os.path.dirname(d)
        self.assertEqual(sorted(n for n in os.listdir(parent) if n.startswith("secrets")),
                         ["secrets", "secrets.generations"])


# ---- 5. errors -----------------------------------------------------------------------------------

class T5Errors(Base):
    def prepared(self, name):
        d = self.target(name)
        self.install_ok(d, store=W["a"])
        return d, snapshot(d)

    def assert_unchanged(self, d, before):
        self.assertEqual(snapshot(d), before, "install target changed by a failed install")
        self.assert_values(d, W["values_a"])

    def bad_spec(self, owner, group):
        with open(W["spec"]) as f:
            text = f.read()
        # Change only db-password's owner/group (not hashed: not stale).
        line = [l for l in text.splitlines() if l.strip().startswith("db-password:")][0]
        new = line.replace("owner: %s" % OWNER, "owner: %s" % owner) \
                  .replace("group: %s" % GROUP, "group: %s" % group)
        self.assertNotEqual(line, new)
        path = os.path.join(W["work"], "bad-%s-%s.yaml" % (owner, group))
        with open(path, "w") as f:
            f.write(text.replace(line, new))
        return path

    def assert_one_line_error(self, p, *needles):
        self.assertNotEqual(p.returncode, 0, describe(p))
        err = p.stderr.decode(errors="replace")
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, "expected a one-line error:\n" + err)
        for n in needles:
            self.assertIn(n, lines[0])
        for v in list(W["values_a"].values()) + list(W["values_b"].values()):
            self.assertNotIn(v, p.stdout + p.stderr, "a value in varinject's output")

    def test_unknown_owner(self):
        d, before = self.prepared("t5-owner")
        p = install(d, spec=self.bad_spec("vtest-nosuch", GROUP), store=W["work"])
        self.assert_one_line_error(p, "vtest-nosuch")
        self.assert_unchanged(d, before)

    def test_unknown_group(self):
        d, before = self.prepared("t5-group")
        p = install(d, spec=self.bad_spec(OWNER, "vtest-nosuchgrp"), store=W["work"])
        self.assert_one_line_error(p, "vtest-nosuchgrp")
        self.assert_unchanged(d, before)

    def test_unknown_owner_first_install(self):
        d = self.target("t5-owner-first")
        p = install(d, spec=self.bad_spec("vtest-nosuch", GROUP), store=W["work"])
        self.assert_one_line_error(p, "vtest-nosuch")
        self.assertFalse(os.path.lexists(d), "DIR created by a failed install")
        gens = d + ".generations"
        left = os.listdir(gens) if os.path.isdir(gens) else []
        self.assertEqual(left, [], "half-made generation left")

    def test_real_directory_refused(self):
        d = self.target("t5-realdir")
        os.mkdir(d, 0o755)
        marker = os.path.join(d, "keep")
        with open(marker, "w") as f:
            f.write("mine")
        p = install(d)
        self.assert_one_line_error(p, d)
        st = os.lstat(d)
        self.assertTrue(stat.S_ISDIR(st.st_mode), "the directory was replaced")
        self.assertEqual(os.listdir(d), ["keep"])
        with open(marker) as f:
            self.assertEqual(f.read(), "mine")
        gens = d + ".generations"
        left = os.listdir(gens) if os.path.isdir(gens) else []
        self.assertEqual(left, [], "secrets written although the target was refused")

    def test_persistent_refused_unless_allowed(self):
        parent = None
        for cand in ("/tmp", "/var/tmp"):
            if os.path.isdir(cand) and not on_ram(cand):
                parent = cand
                break
        if parent is None:
            self.skipTest("no persistent file system among /tmp, /var/tmp")
        base = tempfile.mkdtemp(prefix="vtest-install.", dir=parent)
        self.addCleanup(shutil.rmtree, base, ignore_errors=True)
        d = os.path.join(base, "secrets")
        p = install(d)
        self.assert_one_line_error(p, base)
        self.assertEqual(os.listdir(base), [], "something written on a persistent disk")

        p = install(d, extra=["--allow-persistent"])
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertTrue(os.path.islink(d))
        self.assert_values(d, W["values_b"])

    def test_wrong_identity(self):
        d, before = self.prepared("t5-identity")
        other = os.path.join(os.path.dirname(d), "other.key")
        checked([VARSEAL, "keygen", "-o", other])
        os.chmod(other, 0o600)
        p = install(d, store=W["b"], identity=other)
        self.assertNotEqual(p.returncode, 0, describe(p))
        self.assertTrue(p.stderr.strip(), "no error message")
        self.assert_unchanged(d, before)

# ---- 6. concurrent installs ------------------------------------------------------------

class T6Concurrent(Base):
    def test_concurrent_installs_leave_a_complete_generation(self):
        """Installs started together are serialised: whichever ends last wins,
        DIR always resolves to a complete generation and only it remains."""
        target = self.target("concurrent")
        for round_ in range(25):
            procs = []
            for k in range(4):
                store = W["a"] if k % 2 == 0 else W["b"]
                cmd = [VARINJECT, "install", "-f", W["spec"], "--machine", MACHINE,
                       "-i", W["host"], "--store", store, target]
                procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.PIPE))
            codes = [p.wait(timeout=60) for p in procs]
            errors = [p.stderr.read().decode(errors="replace") for p in procs]
            self.assertEqual(codes, [0, 0, 0, 0], "round %d: %s" % (round_, errors))
            self.assertTrue(os.path.islink(target))
            live = os.path.realpath(target)
            self.assertTrue(os.path.isdir(live), "round %d: DIR -> %s, missing" % (round_, live))
            generations = os.listdir(target + ".generations")
            self.assertEqual(len(generations), 1, "round %d: %s" % (round_, generations))
            values = {}
            for key in FILES:
                with open(os.path.join(target, *key), "rb") as fh:
                    values[key] = fh.read()
            self.assertIn(values, (W["values_a"], W["values_b"]), "round %d: mixed" % round_)


if __name__ == "__main__":
    unittest.main(verbosity=2)
