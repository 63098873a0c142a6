#!/usr/bin/env python3
"""Every command that writes, on a disk that is full, out of inodes, or
read-only: one error line, nothing half-written, nothing lost.

Each command runs on a store copied onto a tmpfs of its own (a private
mount namespace, so every mount goes when the test ends), after the
file system was made to refuse it:

  space      a filler file takes every free block;
  inodes     empty files take every free inode;
  read-only  the tmpfs is remounted read-only.

Then, for each command and condition:

  1. it exits 1 with one line on stderr, `TOOL: error: ...`, ending in
     the system's word for the condition ("No space left on device",
     "Read-only file system"); a command that only removes files (prune)
     may instead succeed on a full disk, and then its work must be whole;
  2. the tree is what it was, byte for byte (no temporary, no empty
     directory, no spec or store changed alone);
  3. once the space or the write access is back, the same command
     succeeds, and `vargen check` finds the store in order.

The commands: vargen generate, accept, prune, import clan (a new spec and
store); varseal set, edit, rekey, machine keygen, import-sops; and varseal
encrypt -o and keygen -o, whose output file must not exist after a
failure.

Needs root (mount). Run as `python3 tests/full_disk_test.py` with VARGEN,
VARSEAL and SHARED_DIR set (tests/CMakeLists.txt does). Standard library
only.
"""
import ctypes
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import SHARED_DIR, VARGEN, VARSEAL, checked, describe, read, run, write  # noqa: E402

SOPS_DIR = os.path.join(SHARED_DIR, "testdata", "sops", "sops-age")
CLAN_DIR = os.path.join(SHARED_DIR, "testdata", "sops", "clan-core")

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

# Two machines, a per-machine random value, a shared password and a
# script generator (the one `accept` is tried on).
SPEC = """\
admins:
  alice: @ALICE@
machines:
  web1:
    generators: [api, db, notes]
  web2:
    generators: [api, db]
generators:
  api:
    files:
      token: {kind: random}
  db:
    share: true
    files:
      password: {kind: password}
  notes:
    files:
      motd: {secret: false}
    script: |
      # the first version
      printf 'hello' > "$out/motd"
"""

ERRNO_TEXT = {"space": "No space left on device", "inodes": "No space left on device",
              "read-only": "Read-only file system"}


def private_mounts():
    """This process's own mount namespace, private from / down; None, or
    why not."""
    if os.geteuid() != 0:
        return "needs root (mount)"
    if not shutil.which("mount"):
        return "no mount"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        return "unshare(CLONE_NEWNS): " + os.strerror(ctypes.get_errno())
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return "making / private: " + os.strerror(ctypes.get_errno())
    return None


def setUpModule():
    why = private_mounts()
    if why:
        raise unittest.SkipTest(why)
    testkit.skip_unless_built(VARGEN, VARSEAL)


def tree(top, skip=()):
    """{path: (kind, mode, sha256 or link target)} of everything under top,
    top's own entries named in skip left out."""
    out = {}
    for d, dirs, files in os.walk(top):
        if d == top:
            dirs[:] = [x for x in dirs if x not in skip]
            files = [x for x in files if x not in skip]
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(read(p)).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            else:
                what = ""
            out[os.path.relpath(p, top)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                            what)
    return out


class FullDisk(unittest.TestCase):
    """One store, made once; each case works on a copy on its own tmpfs."""

    @classmethod
    def setUpClass(cls):
        cls.top = tempfile.mkdtemp(prefix="full-disk-")
        cls.keys = os.path.join(cls.top, "keys")
        os.mkdir(cls.keys, 0o700)
        cls.alice = os.path.join(cls.keys, "alice.key")
        cls.bob = os.path.join(cls.keys, "bob.key")
        checked([VARSEAL, "keygen", "-o", cls.alice])
        checked([VARSEAL, "keygen", "-o", cls.bob])
        cls.alice_r = checked([VARSEAL, "pubkey", cls.alice]).stdout.decode().strip()
        cls.bob_r = checked([VARSEAL, "pubkey", cls.bob]).stdout.decode().strip()
        cls.sops_key = write(os.path.join(cls.keys, "sops.key"),
                             read(os.path.join(SOPS_DIR, "key.txt")), 0o600)
        cls.clan_keys = [write(os.path.join(cls.keys, "clan%d.key" % i), read(src), 0o600)
                         for i, src in enumerate((os.path.join(CLAN_DIR, "test-age-key.txt"),
                                                  os.path.join(CLAN_DIR, "legacy-secrets",
                                                               "key.age")))]
        cls.editor = write(os.path.join(cls.keys, "editor"),
                           b'#!/bin/sh\nprintf edited > "$1"\n', 0o700)
        cls.src = os.path.join(cls.top, "src")
        os.mkdir(cls.src, 0o755)
        write(os.path.join(cls.src, "vars.yaml"), SPEC.replace("@ALICE@", cls.alice_r).encode(),
              0o644)
        for m in ("web1", "web2"):
            checked([VARSEAL, "machine", "keygen", m], cwd=cls.src)
        checked([VARGEN, "generate"], cwd=cls.src)
        checked([VARGEN, "check"], cwd=cls.src)
        cls.mnt = os.path.join(cls.top, "mnt")
        os.mkdir(cls.mnt, 0o755)

    @classmethod
    def tearDownClass(cls):
        if os.path.ismount(cls.mnt):
            subprocess.run(["umount", "-l", cls.mnt], check=False)
        shutil.rmtree(cls.top, ignore_errors=True)

    # ---- the file system ------------------------------------------------

    def mount(self):
        """A fresh tmpfs at mnt holding a copy of the store; the last
        case's goes first. Inodes and blocks to spare for the store and
        its work, few enough to fill in a moment."""
        if os.path.ismount(self.mnt):
            checked(["umount", self.mnt])
        checked(["mount", "-t", "tmpfs", "-o", "size=8m,nr_inodes=1000,mode=0755", "tmpfs",
                 self.mnt])
        self.store = os.path.join(self.mnt, "store")
        self.fill = os.path.join(self.mnt, "fill")
        self.work = self.store  # where the command runs
        checked(["cp", "-a", self.src, self.store])
        os.mkdir(self.fill, 0o700)

    def refuse(self, condition):
        """Makes the tmpfs refuse writes as condition says."""
        if condition == "space":
            fd = os.open(os.path.join(self.fill, "blocks"), os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                         0o600)
            try:
                for size in (1 << 20, 4096, 1):  # the rest, then what is left of it
                    try:
                        while os.write(fd, b"\0" * size):
                            pass
                    except OSError:
                        pass
            finally:
                os.close(fd)
        elif condition == "inodes":
            i = 0
            while True:
                try:
                    os.close(os.open(os.path.join(self.fill, "i%d" % i),
                                     os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                except OSError:
                    break
                i += 1
        else:
            checked(["mount", "-o", "remount,ro", self.mnt])

    def restore(self, condition):
        if condition == "read-only":
            checked(["mount", "-o", "remount,rw", self.mnt])
        else:
            shutil.rmtree(self.fill)

    def snapshot(self):
        return tree(self.mnt, skip=("fill",))

    # ---- the cases ------------------------------------------------------

    def spec(self):
        return os.path.join(self.store, "vars.yaml")

    def edit_spec(self, old, new):
        text = read(self.spec()).decode()
        self.assertIn(old, text)
        write(self.spec(), text.replace(old, new, 1).encode(), 0o644)

    def tool(self, cmd, stdin=None):
        env = dict(os.environ, EDITOR=self.editor, VISUAL=self.editor)
        env.pop("VARS_SPEC", None)
        return run(cmd, cwd=self.work, stdin=stdin, env=env)

    def refused(self, condition, cmd, stdin=None, removes_only=False, output=None):
        """cmd on a store the file system refuses as condition says: see the
        module's docstring. output: a file cmd is to write (must not exist
        after a failure)."""
        self.mount()
        prepare = getattr(self, "prepared", None)
        if prepare:
            prepare()
        before_src = self.snapshot()
        self.refuse(condition)
        before = self.snapshot()
        self.assertEqual(before, before_src, "filling the disk changed the store")
        p = self.tool(cmd, stdin=stdin)
        what = "%s %s (%s)" % (os.path.basename(cmd[0]), cmd[1], condition)
        if p.returncode == 0 and removes_only and condition != "read-only":
            checked([VARGEN, "check"], cwd=self.work)
            print("  %s: done, it only removes; check ok" % what, file=sys.stderr)
            return
        tool = os.path.basename(cmd[0])
        lines = p.stderr.decode(errors="replace").splitlines()
        self.assertEqual(p.returncode, 1, describe(p))
        # One line; edit adds that the value is kept, as it does for
        # any failure after the editor ran.
        extra = [x for x in lines[1:] if not x.startswith("varseal: edit: nothing saved: ")]
        self.assertEqual((len(lines[:1]), extra), (1, []), describe(p))
        self.assertTrue(lines[0].startswith(tool + ": error: "), describe(p))
        self.assertIn(": " + ERRNO_TEXT[condition], lines[0], describe(p))
        after = self.snapshot()
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
        self.assertEqual((added, removed, changed), ([], [], []),
                         "the tree changed: %s" % describe(p))
        if output:
            self.assertFalse(os.path.lexists(output))
        print("  %s: %s" % (what, lines[0]), file=sys.stderr)
        # The space or write access back: the same command does its work.
        self.restore(condition)
        p = self.tool(cmd, stdin=stdin)
        self.assertEqual(p.returncode, 0, describe(p))
        if output:
            self.assertTrue(os.path.isfile(output))
        checked([VARGEN, "check"], cwd=self.work)

    def each(self, cmd, **kw):
        for condition in ("space", "inodes", "read-only"):
            with self.subTest(condition=condition):
                self.refused(condition, cmd, **kw)

    # generate: a new generator for both machines.
    def test_generate(self):
        def prepared():
            self.edit_spec("generators: [api, db]\n", "generators: [api, db, extra]\n")
            self.edit_spec("generators:\n  api:", "generators:\n  extra:\n    files:\n"
                           "      k: {kind: random}\n  api:")
        self.prepared = prepared
        self.each([VARGEN, "generate"])

    # accept: the script's comment changed, its values kept.
    def test_accept(self):
        self.prepared = lambda: self.edit_spec("# the first version", "# the second version")
        self.each([VARGEN, "accept", "--generator", "notes"])

    # prune: a generator dropped from web1; removing may work on a full disk.
    def test_prune(self):
        self.prepared = lambda: self.edit_spec("generators: [api, db, notes]",
                                               "generators: [api, db]")
        self.each([VARGEN, "prune", "--yes"], removes_only=True)

    # rekey: a second admin.
    def test_rekey(self):
        self.prepared = lambda: self.edit_spec("admins:\n", "admins:\n  bob: %s\n" % self.bob_r)
        self.each([VARSEAL, "rekey", "-i", self.alice])

    def test_set(self):
        self.each([VARSEAL, "set", "web1", "api/token"], stdin=b"a value set by hand")

    def test_edit(self):
        self.each([VARSEAL, "edit", "-i", self.alice, "web1", "api/token"])

    # machine keygen: a third machine, recorded in the spec and the store.
    def test_machine_keygen(self):
        self.prepared = lambda: self.edit_spec("machines:\n", "machines:\n  web3:\n"
                                               "    generators: []\n")
        self.each([VARSEAL, "machine", "keygen", "web3"])

    def test_import_sops(self):
        self.each([VARSEAL, "import-sops", os.path.join(SOPS_DIR, "secret.enc.yaml"), "-i",
                   self.sops_key, "--to", "web2", "from-sops"])

    # import clan: a new spec and store in an empty directory.
    def test_import_clan(self):
        def prepared():
            self.work = os.path.join(self.mnt, "new")
            os.mkdir(self.work, 0o755)
        self.prepared = prepared
        keys = [a for k in self.clan_keys for a in ("-i", k)]
        self.each([VARGEN, "import", "clan", os.path.join(CLAN_DIR, "garage-store")] + keys)

    def test_encrypt_output(self):
        out = os.path.join(self.mnt, "store", "out.age")
        self.each([VARSEAL, "encrypt", "-r", self.alice_r, "-o", out, "vars.yaml"], output=out)

    def test_keygen_output(self):
        out = os.path.join(self.mnt, "store", "new.key")
        self.each([VARSEAL, "keygen", "-o", out], output=out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
