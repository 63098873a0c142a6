#!/usr/bin/env python3
"""varseal edit (issue 12): a stored var changed in an editor, as `sops FILE`
and `agenix -e` do.

The editor is a scripted $EDITOR (editor.py below, written by each test)
whose behaviour the test chooses through the environment, which varseal
hands on: it records what it was given (its argv, the file's and the
directory's mode, the file system, a hash of the content, never the
content), then writes new content, keeps it, fails, or waits while the test
signals varseal. The secret is a distinctive random string; after a run
that was stopped, no file under the RAM directory used, /tmp, /dev/shm,
the store or the working directory may hold it, and a process that kept
the temporary file open must see only zeros: varseal wiped it before
removing it.

Run as `python3 tests/edit_test.py` with VARSEAL and VARGEN set. Standard
library only.
"""
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from ptyrun import run_pty  # noqa: E402
from testkit import VARGEN, VARSEAL, describe, read, run, write  # noqa: E402
from vars_test import VarsCase, parse_states, tree  # noqa: E402

AGE = shutil.which("age") or "/usr/bin/age"
WAIT = 60  # seconds: generous bounds for what would otherwise hang

# A name with every shell quoting character the spec allows in a file name
# (no space, '/' or leading '.'): a path spliced into shell text would run
# the $(...) and the backquotes, or break on the quotes.
ODD = "q'\"$(touch${IFS}pwned)`touch${IFS}pwned2`;x.env"
ODD_YAML = ODD.replace("\\", "\\\\").replace('"', '\\"')

SPEC = """\
admins:
  alice: @A@
machines:
  web1:
    generators: [api, pub, wg]
generators:
  wg:
    kind: wireguard
  api:
    files:
      token: {secret: true}
      "@ODD@": {secret: true}
      later: {secret: true}
    script: "true"
  pub:
    files:
      motd: {secret: false}
    script: "true"
"""

EDITOR = r'''#!/usr/bin/python3
"""A scripted editor for edit_test.py: EDIT_ACTION says what it does."""
import hashlib, json, os, signal, subprocess, sys, time

path = sys.argv[-1]
action = os.environ.get("EDIT_ACTION", "keep")
record = os.environ["EDIT_RECORD"]
st = os.lstat(path)
dst = os.lstat(os.path.dirname(path))
with open(path, "rb") as f:
    before = f.read()
info = {
    "argv": sys.argv[1:], "path": path, "pid": os.getpid(), "name": os.environ.get("EDIT_NAME"),
    "mode": st.st_mode, "uid": st.st_uid, "dir_mode": dst.st_mode, "dir_uid": dst.st_uid,
    "fs": subprocess.run(["stat", "-f", "-c", "%T", os.path.dirname(path)],
                         capture_output=True).stdout.decode().strip(),
    "sha256": hashlib.sha256(before).hexdigest(), "len": len(before),
}

def save(**more):
    info.update(more)
    tmp = record + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.rename(tmp, record)

def put(data):
    with open(path, "wb") as f:
        f.write(data)

new = bytes.fromhex(os.environ.get("EDIT_NEW", ""))
if action == "write":
    put(new)
    save()
elif action == "keep":
    save()
elif action == "fail":
    put(new)
    save()
    sys.exit(1)
elif action == "hold":
    # A process of our own keeps the file open, in its own session so that
    # no signal meant for varseal reaches it: what it reads later is what
    # varseal left in the file (zeros), not what the editor wrote.
    # A swap file beside it, as vi makes, holding the text too.
    swap = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".swp")
    with open(swap, "wb") as f:
        f.write(b"swap:" + before)
    holders = [subprocess.Popen(["sleep", "600"], stdin=open(p, "rb"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True).pid for p in (path, swap)]
    save(holders=holders)
    time.sleep(600)
elif action == "ctrl-c":
    got = []
    signal.signal(signal.SIGINT, lambda s, f: got.append(s))
    with open("/dev/tty", "w") as tty:
        tty.write("EDITOR-READY\n")
    deadline = time.monotonic() + 60
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    put(new)
    save(sigint=bool(got))
elif action == "concurrent":
    # Another writer changes the sealed file while the editor runs.
    other = bytes.fromhex(os.environ["EDIT_OTHER"])
    p = subprocess.run([os.environ["VARSEAL"], "set", "web1", os.environ["EDIT_NAME"]],
                       input=other, capture_output=True, cwd=os.environ["EDIT_CWD"])
    put(new)
    save(other_rc=p.returncode, other_err=p.stderr.decode())
else:
    sys.exit(99)
'''


def random_secret():
    return ("edit-secret-" + secrets.token_hex(24)).encode()


def pid_gone(pid):
    return not os.path.exists("/proc/%d" % pid)


def files_holding(top, needle, since=None):
    """Regular files under top (not following symlinks, staying on its file
    system) whose content holds needle; with since, only files changed
    (ctime) since then: anything written after the test began."""
    found = []
    top_dev = os.lstat(top).st_dev
    for d, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if os.lstat(os.path.join(d, x)).st_dev == top_dev]
        for name in files:
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
                if not stat.S_ISREG(st.st_mode) or st.st_size > (64 << 20):
                    continue
                if since is not None and st.st_ctime < since:
                    continue
                if needle in read(p):
                    found.append(p)
            except OSError:
                continue
    return found


class EditCase(VarsCase):
    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(SPEC.replace("@ODD@", ODD_YAML), a=self.alice_r)
        self.varseal("machine", "keygen", "web1")
        self.secret = random_secret()
        self.varseal("set", "web1", "api/token", stdin=self.secret)
        self.varseal("set", "web1", "pub/motd", stdin=b"hello\n")
        self.sealed = self.path("web1", "api", "token")
        # A RAM directory of the test's own, with a space and quotes in its
        # name, as $XDG_RUNTIME_DIR: varseal's private directory goes in it.
        self.runtime = tempfile.mkdtemp(prefix="edit test 'q\" ", dir="/dev/shm")
        self.addCleanup(shutil.rmtree, self.runtime, True)
        os.chmod(self.runtime, 0o700)
        self.editor = write(os.path.join(self.dir, "editor.py"), EDITOR, 0o755)
        self.record = os.path.join(self.dir, "record.json")
        self.started = time.time() - 1

    def env(self, action="keep", new=b"", **more):
        env = dict(os.environ, XDG_RUNTIME_DIR=self.runtime, EDITOR=self.editor,
                   EDIT_ACTION=action, EDIT_NEW=new.hex(), EDIT_RECORD=self.record,
                   VARSEAL=VARSEAL, EDIT_CWD=self.dir)
        env.pop("VISUAL", None)
        env.update(more)
        return env

    def edit(self, *args, expect=0, **env):
        p = run([VARSEAL, "edit"] + list(args), cwd=self.dir, env=self.env(**env),
                timeout=WAIT)
        if expect is not None:
            self.assertEqual(p.returncode, expect, describe(p))
        return p

    def recorded(self):
        with open(self.record) as f:
            return json.load(f)

    def state(self, name):
        return parse_states(self.vargen("list").stdout.decode())["web1/" + name]

    def assert_cleaned(self, info):
        """The temporary file and its directory are gone; the RAM directory
        holds nothing of ours."""
        self.assertFalse(os.path.lexists(info["path"]), info["path"])
        self.assertFalse(os.path.lexists(os.path.dirname(info["path"])))
        self.assertEqual(os.listdir(self.runtime), [])

    def assert_no_plaintext(self, needle):
        places = [(self.runtime, None), (self.dir, None), ("/tmp", self.started),
                  ("/dev/shm", self.started)]
        for top, since in places:
            self.assertEqual(files_holding(top, needle, since), [], top)


class Edit(EditCase):
    def test_changed_is_resealed(self):
        new = random_secret()
        p = self.edit("-i", self.alice, "web1", "api/token", action="write", new=new)
        info = self.recorded()
        # The editor saw the secret, in a private file on a RAM file system
        # named after the var, in a private directory under $XDG_RUNTIME_DIR.
        self.assertEqual(info["sha256"], hashlib.sha256(self.secret).hexdigest())
        self.assertEqual(os.path.basename(info["path"]), "token")
        self.assertEqual(os.path.dirname(os.path.dirname(info["path"])), self.runtime)
        self.assertEqual(stat.S_IMODE(info["mode"]), 0o600)
        self.assertTrue(stat.S_ISREG(info["mode"]))
        self.assertEqual(stat.S_IMODE(info["dir_mode"]), 0o700)
        self.assertEqual((info["uid"], info["dir_uid"]), (os.geteuid(), os.geteuid()))
        self.assertEqual(info["fs"], "tmpfs")
        self.assert_cleaned(info)
        # Resealed: varseal get, the real age and check agree.
        self.assertEqual(self.varseal("get", "-i", self.alice, "web1", "api/token").stdout, new)
        q = run([AGE, "-d", "-i", self.alice, self.sealed])
        self.assertEqual((q.returncode, q.stdout), (0, new), describe(q))
        self.assertEqual(self.state("api/token"), ("secret", "hand-set"))
        self.assertNotIn(b"no change", p.stderr)

    def test_unchanged_is_not_rewritten(self):
        before = tree(self.vars)
        time.sleep(0.02)  # a rewrite would show in the mtimes
        p = self.edit("-i", self.alice, "web1", "api/token", action="keep")
        self.assertEqual(tree(self.vars), before)
        self.assertIn(b"no change", p.stderr)
        self.assertEqual(p.stderr.count(b"\n"), 1, describe(p))
        self.assert_cleaned(self.recorded())

    def test_editor_failure_saves_nothing(self):
        before = tree(self.vars)
        p = self.edit("-i", self.alice, "web1", "api/token", action="fail",
                      new=random_secret(), expect=None)
        self.assertNotEqual(p.returncode, 0, describe(p))
        self.assertIn(b"nothing saved", p.stderr)
        self.assertEqual(tree(self.vars), before)
        self.assert_cleaned(self.recorded())

    def test_public_file(self):
        p = self.edit("web1", "pub/motd", action="write", new=b"welcome\n")
        self.assertEqual(self.recorded()["sha256"], hashlib.sha256(b"hello\n").hexdigest())
        self.assertEqual(read(self.path("web1", "pub", "motd", "value")), b"welcome\n")
        self.assertEqual(self.varseal("get", "web1", "pub/motd").stdout, b"welcome\n")
        self.assertEqual(self.state("pub/motd"), ("value", "hand-set"))
        self.assert_cleaned(self.recorded())
        self.assertEqual(p.stdout, b"")

    def test_not_yet_set_starts_empty(self):
        # No key is needed to start a secret that is not there yet.
        p = self.edit("web1", "api/later", action="write", new=b"first")
        self.assertIn(b"starting from an empty file", p.stderr)
        self.assertEqual(self.recorded()["len"], 0)
        self.assertEqual(self.varseal("get", "-i", self.alice, "web1", "api/later").stdout,
                         b"first")
        self.assertEqual(self.state("api/later"), ("secret", "hand-set"))

    def test_visual_wins_over_editor(self):
        visual = write(os.path.join(self.dir, "visual.sh"),
                       '#!/bin/sh\necho "$1" > "$VISUAL_RAN"\n', 0o755)
        ran = os.path.join(self.dir, "visual-ran")
        p = self.edit("-i", self.alice, "web1", "api/token", action="write", new=b"x",
                      VISUAL=visual, VISUAL_RAN=ran)
        self.assertTrue(os.path.exists(ran), describe(p))
        self.assertFalse(os.path.exists(self.record), "EDITOR ran although VISUAL is set")
        self.assertIn(b"no change", p.stderr)

    def test_editor_with_arguments(self):
        cmd = "python3 %s --flag 'two words'" % self.editor
        self.edit("-i", self.alice, "web1", "api/token", action="write", new=b"y", EDITOR=cmd)
        info = self.recorded()
        self.assertEqual(info["argv"], ["--flag", "two words", info["path"]])
        self.assertEqual(self.varseal("get", "-i", self.alice, "web1", "api/token").stdout, b"y")

    def test_default_editor_is_vi(self):
        bin_dir = os.path.join(self.dir, "bin")
        os.mkdir(bin_dir)
        os.symlink(self.editor, os.path.join(bin_dir, "vi"))
        env = self.env(action="write", new=b"by-vi")
        env.pop("EDITOR")
        env["PATH"] = bin_dir + ":" + env["PATH"]
        p = run([VARSEAL, "edit", "-i", self.alice, "web1", "api/token"], cwd=self.dir,
                env=env, timeout=WAIT)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(self.varseal("get", "-i", self.alice, "web1", "api/token").stdout,
                         b"by-vi")

    def test_odd_file_name_reaches_the_editor_intact(self):
        name = "api/" + ODD
        self.edit("-i", self.alice, "web1", name, action="write", new=b"odd")
        info = self.recorded()
        self.assertEqual(os.path.basename(info["path"]), ODD)
        self.assertEqual(info["argv"], [info["path"]])
        self.assertEqual(self.varseal("get", "-i", self.alice, "web1", name).stdout, b"odd")
        for top in (self.dir, self.runtime):
            for d, _, files in os.walk(top):
                self.assertNotIn("pwned", files, d)
                self.assertNotIn("pwned2", files, d)

    def test_wrong_key_opens_nothing(self):
        stranger, _ = self.key("stranger")
        p = self.edit("-i", stranger, "web1", "api/token", expect=3)
        self.assertFalse(os.path.exists(self.record), "the editor ran")
        self.assertEqual(os.listdir(self.runtime), [])
        self.assertIn(b"no identity matched", p.stderr)
        p = self.edit("web1", "api/token", expect=1)
        self.assertIn(b"no identity given", p.stderr)

    def test_reseal_error_keeps_the_old_file(self):
        """The store's writer lock is held by another process during the
        save: the old sealed file stays, the message says nothing was saved,
        the edited copy is wiped."""
        before = tree(self.vars)
        new = random_secret()
        fd = os.open(self.vars, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            p = self.edit("-i", self.alice, "web1", "api/token", action="write", new=new,
                          expect=None)
        finally:
            os.close(fd)
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn(b"nothing saved", p.stderr)
        self.assertIn(b"another vargen or varseal is writing this store", p.stderr)
        self.assertEqual(tree(self.vars), before)
        self.assert_cleaned(self.recorded())
        self.assert_no_plaintext(new)
        self.assert_no_plaintext(self.secret)

    def test_concurrent_change_is_not_overwritten(self):
        other = random_secret()
        new = random_secret()
        p = self.edit("-i", self.alice, "web1", "api/token", action="concurrent", new=new,
                      EDIT_OTHER=other.hex(), EDIT_NAME="api/token", expect=None)
        info = self.recorded()
        self.assertEqual(info["other_rc"], 0, info["other_err"])
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn(b"changed while", p.stderr)
        self.assertIn(b"nothing saved", p.stderr)
        self.assertEqual(self.varseal("get", "-i", self.alice, "web1", "api/token").stdout,
                         other)
        self.assert_cleaned(info)

    def test_help(self):
        p = self.varseal("edit", "--help")
        for word in (b"VISUAL", b"EDITOR", b"-i, --identity", b"SIGINT"):
            self.assertIn(word, p.stdout)


class EditPairs(EditCase):
    """A key pair's halves stay consistent through edit, as through set."""

    def setUp(self):
        super().setUp()
        self.vargen("generate", "--generator", "wg")

    def test_private_half_recomputes_the_public_half(self):
        new = subprocess.run(["wg", "genkey"], check=True, capture_output=True).stdout
        self.edit("-i", self.alice, "web1", "wg/private", action="write", new=new)
        pub = subprocess.run(["wg", "pubkey"], input=new, check=True,
                             capture_output=True).stdout.strip()
        self.assertEqual(self.varseal("get", "web1", "wg/public").stdout.strip(), pub)
        p = run([VARGEN, "check", "-i", self.alice, "--generator", "wg"], cwd=self.dir)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assert_cleaned(self.recorded())

    def test_invalid_private_half_saves_nothing(self):
        before = tree(self.vars)
        p = self.edit("-i", self.alice, "web1", "wg/private", action="write",
                      new=b"notakey\n", expect=1)
        self.assertIn(b"nothing saved", p.stderr)
        self.assertEqual(tree(self.vars), before)
        self.assert_cleaned(self.recorded())

    def test_public_half_is_refused_before_the_editor(self):
        p = self.edit("web1", "wg/public", action="write", new=b"x", expect=1)
        self.assertIn(b"public half of a WireGuard key pair", p.stderr)
        self.assertFalse(os.path.exists(self.record), "the editor ran")


class EditSignals(EditCase):
    def stopped_by(self, sig):
        env = self.env(action="hold")
        proc = subprocess.Popen([VARSEAL, "edit", "-i", self.alice, "web1", "api/token"],
                                cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        holders = []
        try:
            deadline = time.monotonic() + WAIT
            while not os.path.exists(self.record):
                self.assertIsNone(proc.poll(), "varseal ended before the editor ran")
                self.assertLess(time.monotonic(), deadline, "the editor never started")
                time.sleep(0.05)
            info = self.recorded()
            holders = info["holders"]
            os.kill(proc.pid, sig)
            out, err = proc.communicate(timeout=WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        try:
            self.assertEqual(proc.returncode, -sig, "stderr: %s" % err.decode(errors="replace"))
            self.assertTrue(pid_gone(info["pid"]), "the editor outlived varseal")
            self.assert_cleaned(info)
            # What the holders still have open: varseal's temporary file
            # and the editor's swap file, unlinked, and overwritten with
            # zeros of their size.
            self.assertEqual(read("/proc/%d/fd/0" % holders[0]), b"\0" * len(self.secret))
            self.assertEqual(read("/proc/%d/fd/0" % holders[1]),
                             b"\0" * len(b"swap:" + self.secret))
            self.assert_no_plaintext(self.secret)
            # The sealed value is as it was.
            self.assertEqual(self.varseal("get", "-i", self.alice, "web1", "api/token").stdout,
                             self.secret)
        finally:
            for pid in holders:
                os.kill(pid, signal.SIGKILL)

    def test_sigterm(self):
        self.stopped_by(signal.SIGTERM)

    def test_sighup(self):
        self.stopped_by(signal.SIGHUP)

    def test_kill_int(self):
        self.stopped_by(signal.SIGINT)

    def test_ctrl_c_on_the_terminal_does_not_abort(self):
        """A Ctrl-C typed on the terminal goes to the editor (its whole
        foreground process group): varseal keeps waiting for the editor,
        which here handles it and saves."""
        new = random_secret()
        env = self.env(action="ctrl-c", new=new)
        cmd = ["/usr/bin/env"] + ["%s=%s" % kv for kv in env.items()] + [
            VARSEAL, "edit", "-i", self.alice, "web1", "api/token"]
        old = os.getcwd()
        os.chdir(self.dir)
        try:
            rc, tty, err, unanswered = run_pty(cmd, [(b"EDITOR-READY", b"\x03")], timeout=WAIT)
        finally:
            os.chdir(old)
        self.assertEqual((rc, unanswered), (0, []), "terminal: %r stderr: %r" % (tty, err))
        self.assertTrue(self.recorded()["sigint"], "the editor got no SIGINT")
        self.assertEqual(self.varseal("get", "-i", self.alice, "web1", "api/token").stdout, new)
        self.assert_cleaned(self.recorded())


class NoRamDirectory(EditCase):
    def test_refused_without_a_ram_directory(self):
        """$XDG_RUNTIME_DIR on a disk and /dev/shm replaced by a disk
        directory (a private mount namespace): one line, nothing run."""
        if not shutil.which("unshare"):
            self.skipTest("no unshare")
        disk = os.path.join(self.dir, "disk")
        os.mkdir(disk, 0o700)
        self.assertFalse(testkit.on_ram(disk))
        env = self.env(action="write", new=b"z", XDG_RUNTIME_DIR=disk)
        script = 'mount --bind "$1" /dev/shm && shift && exec "$@"'
        p = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                 disk, VARSEAL, "edit", "-i", self.alice, "web1", "api/token"],
                cwd=self.dir, env=env, timeout=WAIT)
        if b"unshare failed" in p.stderr or b"mount:" in p.stderr:
            self.skipTest("no mount namespace here: %s" % p.stderr.decode(errors="replace"))
        self.assertEqual(p.returncode, 1, describe(p))
        lines = p.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, describe(p))
        self.assertIn("RAM", lines[0])
        self.assertFalse(os.path.exists(self.record), "the editor ran")
        self.assertEqual(os.listdir(disk), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
