#!/usr/bin/env python3
"""Issue 8, items 13 and 14: varseal's output files and the terminal prompts.

13. `varseal decrypt -o OUT` and `varseal encrypt -o OUT` replace OUT
    atomically but keep what age keeps: an existing OUT's owner, group and
    permissions, and a symlink given as OUT is followed to the file it
    names (which is written; the link stays). A failing run leaves the old
    file as it was. The real age 1.1.1 runs on the same setups.

14. Ctrl-C (or SIGTERM) at any terminal prompt of varseal or vargen ends
    the program at once, killed by that signal (status 130 or 143 in a
    shell), with the terminal's echo back on and no output file made.
    Ctrl-Z at a hidden prompt stops the program with echo back on; after
    SIGCONT the prompt is asked again with echo off.

The prompts are driven through a fresh pseudo-terminal, with the program
run as the foreground job of a tiny job-control shell (a session leader's
own process group is orphaned, and the kernel discards Ctrl-Z there).

Standard library only. The binaries come from $VARSEAL and $VARGEN.
"""
import os
import fcntl
import select
import shutil
import signal
import stat
import subprocess
import sys
import termios
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import VARGEN, VARSEAL, read, write  # noqa: E402

AGE = shutil.which("age") or "/usr/bin/age"

TIMEOUT = 120     # seconds, for any process that should just finish
INTERRUPT = 10    # seconds: generous; the unfixed tools wait for Enter forever
NOGROUP = 65534   # Debian's nogroup / nobody

SANITIZER_MARKERS = ("Sanitizer", "runtime error")

PASS = b"correct horse battery staple"
PLAINTEXT = b"the new plaintext\n"


def run(cmd, cwd=None, stdin=None, check=True):
    """Runs cmd in its own session with stdin bytes (an empty pipe if None);
    a sanitizer report on stderr fails."""
    p = testkit.run(cmd, stdin or b"", TIMEOUT, check, cwd=cwd, start_new_session=True)
    assert_clean(p.stderr.decode(errors="replace"))
    return p


def assert_clean(stderr):
    for marker in SANITIZER_MARKERS:
        if marker in stderr:
            raise AssertionError("sanitizer report: %s" % stderr)


def meta(path):
    """What a replacement must keep: (mode, uid, gid), following links."""
    st = os.stat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def shell_status(rc):
    """The status a shell reports ($?): 128+N for death by signal N."""
    return 128 - rc if rc < 0 else rc


# ---- 13. -o keeps the target's metadata and follows a symlink -------------------

class OutputFile(unittest.TestCase):
    """varseal's -o against the real age on the same files."""

    def setUp(self):
        self.dir = testkit.temp_dir(self, "seal_attack.")
        self.key = os.path.join(self.dir, "key")
        run([VARSEAL, "keygen", "-o", self.key])
        self.recipient = run([VARSEAL, "pubkey", self.key]).stdout.decode().strip()
        self.wrong_key = os.path.join(self.dir, "wrong")
        run([VARSEAL, "keygen", "-o", self.wrong_key])
        self.input = write(self.p("input"), PLAINTEXT)
        self.ct = self.p("ct.age")
        run([VARSEAL, "encrypt", "-r", self.recipient, "-o", self.ct, self.input])

    def p(self, *names):
        return os.path.join(self.dir, *names)

    def decrypt(self, tool, out, key=None, check=True):
        cmd = [VARSEAL, "decrypt"] if tool == "varseal" else [AGE, "-d"]
        return run(cmd + ["-i", key or self.key, "-o", out, self.ct], check=check)

    def existing(self, path, mode=0o640, uid=0, gid=NOGROUP, data=b"old contents\n"):
        write(path, data, mode)
        os.chown(path, uid, gid)
        return path

    def leftovers(self, *dirs):
        """Hidden temporary files left in dirs."""
        return [n for d in dirs for n in os.listdir(d) if n.startswith(".")]

    def assert_failure_keeps(self, out, real):
        """A failing decrypt (wrong key) leaves real (what out names) untouched."""
        before = os.lstat(real), read(real), os.path.islink(out)
        p = self.decrypt("varseal", out, key=self.wrong_key, check=False)
        self.assertEqual(p.returncode, 3, p.stderr)  # no identity matched
        after = os.lstat(real)
        self.assertEqual((after.st_ino, after.st_mode, after.st_uid, after.st_gid),
                         (before[0].st_ino, before[0].st_mode, before[0].st_uid,
                          before[0].st_gid))
        self.assertEqual(read(real), before[1])
        self.assertEqual(os.path.islink(out), before[2])

    def test_decrypt_keeps_mode_owner_and_group(self):
        for tool in ("age", "varseal"):
            with self.subTest(tool=tool):
                out = self.existing(self.p("out-" + tool))
                if tool == "varseal":
                    self.assert_failure_keeps(out, out)
                self.decrypt(tool, out)
                self.assertEqual(read(out), PLAINTEXT)
                self.assertFalse(os.path.islink(out))
                self.assertEqual(meta(out), (0o640, 0, NOGROUP))
        # Another owner too (root may give the file back to its owner).
        out = self.existing(self.p("out-nobody"), mode=0o604, uid=NOGROUP)
        self.decrypt("varseal", out)
        self.assertEqual((read(out), meta(out)), (PLAINTEXT, (0o604, NOGROUP, NOGROUP)))
        self.assertEqual(self.leftovers(self.dir), [])

    def test_encrypt_keeps_mode_owner_and_group(self):
        out = self.existing(self.p("out.age"), mode=0o644)
        run([VARSEAL, "encrypt", "-r", self.recipient, "-o", out, self.input])
        self.assertEqual(meta(out), (0o644, 0, NOGROUP))
        self.assertEqual(run([AGE, "-d", "-i", self.key, out]).stdout, PLAINTEXT)

    def test_dangling_symlink_writes_its_target(self):
        os.mkdir(self.p("elsewhere"))
        for tool in ("age", "varseal"):
            with self.subTest(tool=tool):
                # A relative link into another directory.
                link = self.p("link-" + tool)
                os.symlink(os.path.join("elsewhere", "target-" + tool), link)
                self.decrypt(tool, link)
                self.assertTrue(os.path.islink(link))
                self.assertEqual(os.readlink(link), os.path.join("elsewhere", "target-" + tool))
                self.assertEqual(read(self.p("elsewhere", "target-" + tool)), PLAINTEXT)
        # New files are private (age uses its umask instead: documented).
        self.assertEqual(meta(self.p("elsewhere", "target-varseal")), (0o600, 0, 0))
        self.assertEqual(self.leftovers(self.dir, self.p("elsewhere")), [])

    def test_symlink_to_existing_file_keeps_its_metadata(self):
        os.mkdir(self.p("sub"))
        for tool in ("age", "varseal"):
            with self.subTest(tool=tool):
                real = self.existing(self.p("sub", "real-" + tool))
                # An absolute link to a relative link to the file.
                os.symlink("real-" + tool, self.p("sub", "hop-" + tool))
                link = self.p("link-" + tool)
                os.symlink(self.p("sub", "hop-" + tool), link)
                if tool == "varseal":
                    self.assert_failure_keeps(link, real)
                self.decrypt(tool, link)
                self.assertTrue(os.path.islink(link))
                self.assertTrue(os.path.islink(self.p("sub", "hop-" + tool)))
                self.assertEqual(read(real), PLAINTEXT)
                self.assertEqual(meta(real), (0o640, 0, NOGROUP))
        self.assertEqual(self.leftovers(self.dir, self.p("sub")), [])

    def test_owner_that_cannot_be_kept_is_refused(self):
        # nobody may replace root's world-writable file in its own
        # directory, but cannot give the new file to root: it must refuse
        # rather than hand root's file over to itself.
        box = self.p("box")
        os.mkdir(box, 0o755)
        os.chown(box, NOGROUP, NOGROUP)
        os.chmod(self.dir, 0o755)
        key = self.p("box", "key")
        shutil.copy(self.key, key)
        os.chown(key, NOGROUP, NOGROUP)
        os.chmod(self.ct, 0o644)
        out = self.existing(self.p("box", "out"), mode=0o666, uid=0, gid=0)
        before = os.stat(out)
        p = subprocess.run([VARSEAL, "decrypt", "-i", key, "-o", out, self.ct],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=TIMEOUT, user=NOGROUP,
                           group=NOGROUP, extra_groups=[])
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"owner and group", p.stderr)
        after = os.stat(out)
        self.assertEqual((after.st_ino, after.st_mode, after.st_uid, after.st_gid),
                         (before.st_ino, before.st_mode, 0, 0))
        self.assertEqual(read(out), b"old contents\n")
        self.assertEqual(self.leftovers(box), [])

    def test_symlink_loop_is_refused(self):
        os.symlink("loop-b", self.p("loop-a"))
        os.symlink("loop-a", self.p("loop-b"))
        p = self.decrypt("varseal", self.p("loop-a"), check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"symbolic links", p.stderr)
        self.assertEqual(os.readlink(self.p("loop-a")), "loop-b")
        self.assertEqual(os.readlink(self.p("loop-b")), "loop-a")
        self.assertEqual(self.leftovers(self.dir), [])


# ---- 14. Ctrl-C, SIGTERM and Ctrl-Z at a prompt -----------------------------------

# Runs argv[2:] as the foreground job of the terminal on fd argv[1] (this
# process's controlling terminal); prints the job's pid, then its exit
# status as os.waitstatus_to_exitcode gives it.
MINI_SHELL = r"""
import os, signal, sys
tty, cmd = int(sys.argv[1]), sys.argv[2:]
job = os.fork()
if job == 0:
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        os.tcsetpgrp(tty, os.getpgrp())
        for s in (signal.SIGTTOU, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
            signal.signal(s, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(tty)
        os.execv(cmd[0], cmd)
    finally:
        os._exit(127)
try:
    os.setpgid(job, job)
except OSError:
    pass
print(job, flush=True)
_, status = os.waitpid(job, 0)
print(os.waitstatus_to_exitcode(status), flush=True)
"""


class PtyJob:
    """cmd run with a fresh pseudo-terminal as its controlling terminal."""

    def __init__(self, cmd, cwd):
        self.master, self.slave = os.openpty()
        slave = self.slave

        def make_controlling_tty():
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [sys.executable, "-c", MINI_SHELL, str(slave)] + cmd, cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=make_controlling_tty, pass_fds=(slave,))
        self.screen = b""
        self.status_lines = b""
        self.status_eof = False
        self.pid = int(self._status_line(TIMEOUT))

    def _pump(self, timeout):
        """Reads what is there (terminal and status pipe) for up to timeout."""
        fds = [self.master] + ([] if self.status_eof else [self.proc.stdout.fileno()])
        ready, _, _ = select.select(fds, [], [], timeout)
        for fd in ready:
            data = os.read(fd, 65536)
            if fd == self.master:
                self.screen += data
            elif data:
                self.status_lines += data
            else:
                self.status_eof = True

    def _status_line(self, timeout):
        """The shell's next line, or None if none comes within timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.status_lines:
            left = deadline - time.monotonic()
            if left <= 0 or self.status_eof:
                return None
            self._pump(min(left, 0.2))
        line, self.status_lines = self.status_lines.split(b"\n", 1)
        return line

    def expect(self, text, count=1, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while self.screen.count(text) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on the terminal after %ss; it shows %r"
                                     % (text, timeout, self.screen))
            self._pump(min(left, 0.2))

    def send(self, data):
        os.write(self.master, data)

    def wait(self, timeout):
        """The job's exit status (negative: killed by that signal)."""
        line = self._status_line(timeout)
        if line is None:
            raise AssertionError("still running %ss later; the terminal shows %r"
                                 % (timeout, self.screen))
        return int(line)

    def state(self):
        with open("/proc/%d/stat" % self.pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]

    def wait_state(self, want, timeout):
        deadline = time.monotonic() + timeout
        while self.state() != want:
            if time.monotonic() > deadline:
                raise AssertionError("state %s, not %s, after %ss; terminal %r"
                                     % (self.state(), want, timeout, self.screen))
            self._pump(0.1)

    def echo(self):
        return bool(termios.tcgetattr(self.slave)[3] & termios.ECHO)

    def stderr(self):
        if not hasattr(self, "_stderr"):
            self._stderr = self.proc.stderr.read().decode(errors="replace")
            assert_clean(self._stderr)
        return self._stderr

    def close(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)  # the shell has not reaped it yet
            except ProcessLookupError:
                pass
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        os.close(self.master)
        os.close(self.slave)


class PromptCase(unittest.TestCase):
    def setUp(self):
        self.dir = testkit.temp_dir(self, "seal_attack.")
        self.input = write(self.p("input"), PLAINTEXT)

    def p(self, *names):
        return os.path.join(self.dir, *names)

    def start(self, cmd):
        job = PtyJob(cmd, self.dir)
        self.addCleanup(job.close)
        return job

    def files(self):
        return sorted(os.listdir(self.dir))

    def interrupt(self, cmd, prompt, how, typed=b"secr", hidden=True):
        """Waits for prompt, types something, interrupts; checks the job
        died at once by the signal with echo back on and no new file."""
        before = self.files()
        job = self.start(cmd)
        job.expect(prompt)
        job.send(typed)
        if how == "ctrl-c":
            job.send(b"\x03")
            want = 130
        else:
            os.kill(job.pid, signal.SIGTERM)
            want = 143
        rc = job.wait(INTERRUPT)
        self.assertEqual(shell_status(rc), want, job.stderr())
        self.assertEqual(job.stderr(), "")
        self.assertTrue(job.echo(), "the terminal's echo is still off")
        if hidden:
            self.assertNotIn(typed, job.screen)
        self.assertEqual(self.files(), before)
        return job


class SealPrompts(PromptCase):
    def test_encrypt_passphrase(self):
        for how in ("ctrl-c", "sigterm"):
            with self.subTest(how=how):
                self.interrupt([VARSEAL, "encrypt", "-p", "-o", self.p("out.age"), self.input],
                               b"Enter passphrase", how)

    def test_encrypt_confirmation(self):
        job = self.start([VARSEAL, "encrypt", "-p", "-o", self.p("out.age"), self.input])
        job.expect(b"Enter passphrase")
        job.send(PASS + b"\n")
        job.expect(b"Confirm passphrase")
        job.send(b"\x03")
        self.assertEqual(shell_status(job.wait(INTERRUPT)), 130)
        self.assertTrue(job.echo())
        self.assertFalse(os.path.exists(self.p("out.age")))

    def test_decrypt_passphrase_file(self):
        pf = write(self.p("pass"), PASS + b"\n")
        ct = self.p("ct.age")
        run([VARSEAL, "encrypt", "--passphrase-file", pf, "--work-factor", "10", "-o", ct,
             self.input])
        for how in ("ctrl-c", "sigterm"):
            with self.subTest(how=how):
                self.interrupt([VARSEAL, "decrypt", "-o", self.p("out"), ct],
                               b"Enter passphrase", how)

    def test_decrypt_with_protected_identity(self):
        key = self.p("key")
        run([VARSEAL, "keygen", "-o", key])
        recipient = run([VARSEAL, "pubkey", key]).stdout.decode().strip()
        pf = write(self.p("pass"), PASS + b"\n")
        locked = self.p("key.age")
        run([VARSEAL, "encrypt", "--passphrase-file", pf, "--work-factor", "10", "-o", locked,
             key])
        os.chmod(locked, 0o600)
        ct = self.p("ct.age")
        run([VARSEAL, "encrypt", "-r", recipient, "-o", ct, self.input])
        self.interrupt([VARSEAL, "decrypt", "-i", locked, "-o", self.p("out"), ct],
                       b"Enter passphrase for identity file", "ctrl-c")

    def test_ctrl_z_restores_the_terminal_and_asks_again(self):
        out = self.p("out.age")
        job = self.start([VARSEAL, "encrypt", "-p", "--work-factor", "10", "-o", out,
                          self.input])
        job.expect(b"Enter passphrase")
        self.assertFalse(job.echo())
        job.send(b"half")
        job.send(b"\x1a")
        job.wait_state("T", INTERRUPT)
        self.assertTrue(job.echo(), "stopped with the terminal's echo off")
        os.kill(job.pid, signal.SIGCONT)
        job.expect(b"Enter passphrase", count=2, timeout=INTERRUPT)
        self.assertFalse(job.echo(), "asked again with echo on")
        job.send(PASS + b"\n")
        job.expect(b"Confirm passphrase")
        job.send(PASS + b"\n")
        self.assertEqual(job.wait(TIMEOUT), 0, job.stderr())
        self.assertTrue(job.echo())
        pf = write(self.p("pass"), PASS + b"\n")
        self.assertEqual(run([VARSEAL, "decrypt", "--passphrase-file", pf, out]).stdout,
                         PLAINTEXT)


class GenPrompts(PromptCase):
    SPEC = """\
admins:
  alice: %s
machines:
  vm:
    generators: [asked]
generators:
  asked:
    prompts:
      answer: {type: %s, description: "the answer"}
    files:
      copy: {}
    script: |
      cp "$prompts/answer" "$out/copy"
"""

    def generate(self, kind, how):
        key = self.p("alice.key")
        run([VARSEAL, "keygen", "-o", key])
        recipient = run([VARSEAL, "pubkey", key]).stdout.decode().strip()
        write(self.p("vars.yaml"), (self.SPEC % (recipient, kind)).encode(), 0o644)
        run([VARSEAL, "machine", "keygen", "vm"], cwd=self.dir)
        store = sorted(os.path.relpath(os.path.join(d, n), self.dir)
                       for d, _, names in os.walk(self.p("vars")) for n in names)
        self.interrupt([VARGEN, "generate"], b"asked/answer", how,
                       typed=b"first line\nsecr" if kind == "multiline" else b"secr",
                       hidden=kind == "hidden")
        after = sorted(os.path.relpath(os.path.join(d, n), self.dir)
                       for d, _, names in os.walk(self.p("vars")) for n in names)
        self.assertEqual(after, store)

    def test_hidden(self):
        self.generate("hidden", "ctrl-c")

    def test_line(self):
        self.generate("line", "ctrl-c")

    def test_multiline(self):
        self.generate("multiline", "ctrl-c")

    def test_hidden_sigterm(self):
        self.generate("hidden", "sigterm")


class KeygenOutput(unittest.TestCase):
    """varseal keygen -o writes its identity all-or-nothing and never
    replaces a file: a keygen killed or failing on the way leaves nothing
    at the path, and an existing file (or symlink) there stays as it was."""

    STRACE = shutil.which("strace") or "/usr/bin/strace"

    def setUp(self):
        self.dir = testkit.temp_dir(self, "keygen_test.")
        self.path = os.path.join(self.dir, "key.txt")

    def keygen_with_fsync(self, inject):
        """keygen -o with its first fsync made to fail as inject says (strace
        fault injection), so the moment is exact on any machine."""
        if not os.access(self.STRACE, os.X_OK):
            self.skipTest("strace is not installed")
        # LeakSanitizer (in sanitizer builds) cannot work under ptrace.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                      "detect_leaks=0"]))
        p = testkit.run([self.STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync",
                         "-e", "inject=fsync:" + inject, VARSEAL, "keygen", "-o", self.path],
                        b"", TIMEOUT, False, env=env, start_new_session=True)
        assert_clean(p.stderr.decode(errors="replace"))
        return p

    def test_killed_keygen_leaves_no_file(self):
        p = self.keygen_with_fsync("signal=KILL")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(os.listdir(self.dir), [])

    def test_failing_keygen_leaves_no_file(self):
        p = self.keygen_with_fsync("error=EIO")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"error:", p.stderr)
        self.assertEqual(os.listdir(self.dir), [])

    def test_existing_file_refused_and_untouched(self):
        write(self.path, b"not a key, but mine\n", 0o640)
        before = os.stat(self.path)
        p = run([VARSEAL, "keygen", "-o", self.path], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"already exists", p.stderr)
        self.assertEqual(read(self.path), b"not a key, but mine\n")
        after = os.stat(self.path)
        self.assertEqual((after.st_ino, after.st_mode, after.st_mtime_ns),
                         (before.st_ino, before.st_mode, before.st_mtime_ns))
        self.assertEqual(sorted(os.listdir(self.dir)), ["key.txt"])

    def test_existing_symlink_refused_and_untouched(self):
        target = os.path.join(self.dir, "target")
        os.symlink(target, self.path)
        p = run([VARSEAL, "keygen", "-o", self.path], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"already exists", p.stderr)
        self.assertEqual(os.readlink(self.path), target)
        self.assertFalse(os.path.lexists(target))
        self.assertEqual(sorted(os.listdir(self.dir)), ["key.txt"])


if __name__ == "__main__":
    unittest.main()
