"""Drives a program that reads from its controlling terminal (age's
passphrase prompts) from a test: a fresh pseudo-terminal becomes the
child's controlling terminal, and replies are typed as prompts appear.
Shared by interop_test.py and ssh_test.py."""
import errno
import fcntl
import os
import select
import subprocess
import termios
import time


def run_pty(cmd, answers, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            timeout=120):
    """Runs cmd with a pseudo-terminal as its controlling terminal.

    answers is a list of (prompt, reply) byte strings: each reply (plus a
    newline) is typed once its prompt has appeared on the terminal, in
    order. Returns (returncode, terminal output, stderr, unanswered
    prompts). Never blocks longer than timeout."""
    master, slave = os.openpty()

    def make_controlling_tty():
        # start_new_session already made the child a session leader.
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen(
            cmd,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=make_controlling_tty,
            pass_fds=(slave,),
        )
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    os.close(slave)  # the child holds it now: EIO on master once it exits
    pending = list(answers)
    tty_out = b""
    seen = 0
    err_chunks = []
    err_fd = proc.stderr.fileno()
    open_fds = [master, err_fd]
    deadline = time.monotonic() + timeout
    try:
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise AssertionError(
                    "%r timed out; terminal said %r, unanswered %r"
                    % (cmd, tty_out, [p for p, _ in pending]))
            ready, _, _ = select.select(open_fds, [], [], min(left, 0.5))
            if not ready:
                if proc.poll() is not None and master in open_fds:
                    # Exited; nothing more can come from the terminal.
                    open_fds.remove(master)
                continue
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    open_fds.remove(fd)
                    continue
                if fd == err_fd:
                    err_chunks.append(data)
                    continue
                tty_out += data
                while pending and pending[0][0] in tty_out[seen:]:
                    prompt, reply = pending.pop(0)
                    seen = tty_out.index(prompt, seen) + len(prompt)
                    os.write(master, reply + b"\n")
        rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        os.close(master)
    return rc, tty_out, b"".join(err_chunks), [p for p, _ in pending]
