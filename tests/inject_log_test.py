#!/usr/bin/env python3
"""varinject's messages and notifications to systemd, and libsystemd loaded
only for them (issue 15: linked at start, libsystemd and the six libraries
it needs cost every run about 3.4 ms).

  1. A run outside systemd never loads libsystemd (the loader's own log,
     LD_DEBUG=files, names every object it maps); the ELF file does not
     need it.
  2. Under a unit that asked for notifications (NOTIFY_SOCKET), it is
     loaded and READY=1 arrives.
  3. JOURNAL_STREAM is trusted only when it names stderr itself, as
     systemd.exec(5) says: a unit's child whose stderr goes elsewhere
     (a file, a pipe) gets its error on stderr. It used to send it to the
     journal, or, with no journal socket, lose it.
  4. With stderr the journal's stream, an error becomes a journal entry
     with its priority, and nothing is written on the stream. No journald
     runs here: in a private mount namespace a tmpfs over /run holds a
     datagram socket at journald's documented address,
     /run/systemd/journal/socket, that reads what libsystemd sends.
  5. With libsystemd unloadable (an empty file bound over it, in a private
     mount namespace): the error goes to the stream instead, and a
     notification names why it cannot be sent, once; the VM still runs.

The hypervisor is /bin/true in QEMU mode: varinject writes the credentials,
launches it, notifies and reaps it, which is all this needs. 4 and 5 need
root and unshare(1); they are skipped otherwise. Standard library only.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import testkit  # noqa: E402
from testkit import ROOT, VARGEN, VARINJECT, VARSEAL, describe  # noqa: E402

UNSHARE = shutil.which("unshare")
READELF = shutil.which("readelf")
MISSING_SPEC = "/nonexistent/vars.yaml"
MISSING_SPEC_ERROR = "error: /nonexistent/vars.yaml: No such file or directory"


def clean_env(**extra):
    """No systemd context, and no loader log unless asked for."""
    return testkit.env_without_systemd(drop=("LD_DEBUG", "LD_DEBUG_OUTPUT"), **extra)


def stream_of(fd):
    """JOURNAL_STREAM's value for fd: its device and inode, as systemd writes it."""
    st = os.fstat(fd)
    return "%d:%d" % (st.st_dev, st.st_ino)


def mentions(log, what):
    """The loader log's lines that name what (short enough for a message)."""
    return [line.strip() for line in log.splitlines() if what in line]


def journal_fields(datagram):
    """The fields of one native-protocol datagram (the simple form: KEY=VALUE
    lines; our messages hold no newline, so libsystemd uses no other)."""
    return dict(line.split("=", 1) for line in datagram.decode().splitlines() if "=" in line)


# --------------------------------------------------------- in the namespace
# Run by the tests below as `unshare --mount --propagation private python3
# THIS --in-namespace JSON`; prints what the journal socket and the stream
# received as JSON.
def in_namespace(plan):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run"], check=True)
    os.makedirs("/run/systemd/journal")
    journal = testkit.datagram_socket("/run/systemd/journal/socket", 0.2)
    if plan.get("hide_libsystemd"):
        empty = "/run/empty.so"
        open(empty, "wb").close()
        subprocess.run(["mount", "--bind", empty, plan["hide_libsystemd"]], check=True)
    notify = None
    env = dict(plan["env"])
    if plan.get("notify"):
        notify = testkit.datagram_socket("/run/notify.sock", 0.2)
        env["NOTIFY_SOCKET"] = "/run/notify.sock"
    # stderr a stream socket, as systemd gives a unit's stderr to journald
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env["JOURNAL_STREAM"] = stream_of(theirs.fileno())
    env["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef"
    p = subprocess.run(plan["cmd"], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=theirs.fileno(), timeout=60)
    theirs.close()
    stream = b""
    ours.settimeout(1)
    while True:
        chunk = ours.recv(65536)
        if not chunk:
            break
        stream += chunk
    out = {"rc": p.returncode, "stdout": p.stdout.decode(errors="replace"),
           "stream": stream.decode(errors="replace"),
           "journal": [journal_fields(d) for d in testkit.recv_all(journal)],
           "notify": [d.decode() for d in testkit.recv_all(notify)] if notify else []}
    print(json.dumps(out))


# ------------------------------------------------------------------- tests
class LogCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        testkit.skip_unless_built(VARSEAL, VARGEN, VARINJECT)
        # The seed's store (examples/vars.yaml) with a kept machine key, in
        # a RAM directory: the credentials go there.
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        cls.dir = tempfile.mkdtemp(prefix="inject_log.", dir=base)
        cls.creds = os.path.join(cls.dir, "creds")
        os.mkdir(cls.creds, 0o700)
        d = cls.dir
        testkit.checked([VARSEAL, "keygen", "-o", d + "/admin.key"])
        admin = testkit.checked([VARSEAL, "pubkey", d + "/admin.key"]).stdout.decode().strip()
        spec = open(os.path.join(ROOT, "examples", "vars.yaml")).read()
        spec = "\n".join("  alice: " + admin if line.startswith("  alice: ") else line
                         for line in spec.splitlines()) + "\n"
        testkit.write(d + "/vars.yaml", spec.encode())
        testkit.checked([VARSEAL, "machine", "keygen", "-f", d + "/vars.yaml", "test-vm"])
        testkit.checked([VARGEN, "generate", "-f", d + "/vars.yaml"])
        testkit.checked([VARSEAL, "machine", "key", "-f", d + "/vars.yaml", "-i",
                         d + "/admin.key", "-o", d + "/machine.key", "test-vm"])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def launch_cmd(self):
        d = self.dir
        return [VARINJECT, "-f", d + "/vars.yaml", "--machine", "test-vm", "-i",
                d + "/machine.key", "--credentials-dir", self.creds, "--hypervisor", "qemu",
                "--", "/bin/true"]

    def failing_cmd(self):
        return [VARINJECT, "-f", MISSING_SPEC, "--machine", "test-vm", "-i",
                self.dir + "/machine.key", "--dry-run", "--", "qemu-system-x86_64"]

    def loaded_objects(self, cmd, **env):
        """Run cmd with the loader's log on; return (process, log text)."""
        log_dir = tempfile.mkdtemp(dir=self.dir)
        p = testkit.run(cmd, env=clean_env(LD_DEBUG="files",
                                           LD_DEBUG_OUTPUT=log_dir + "/ld", **env))
        text = "".join(testkit.read(os.path.join(log_dir, f)).decode()
                       for f in sorted(os.listdir(log_dir)))
        return p, text


class T1Loading(LogCase):
    @unittest.skipUnless(READELF, "readelf not installed (binutils)")
    def test_not_needed_by_the_elf_file(self):
        dyn = testkit.checked([READELF, "-d", VARINJECT]).stdout.decode()
        needed = [line for line in dyn.splitlines() if "(NEEDED)" in line]
        self.assertTrue(needed, dyn)  # the check reads what it thinks it reads
        self.assertFalse([n for n in needed if "libsystemd" in n], needed)

    def test_not_loaded_outside_systemd(self):
        p, log = self.loaded_objects(self.launch_cmd())
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("file=libcrypto.so", log)  # the log names what was loaded
        self.assertEqual(mentions(log, "libsystemd"), [])
        # nor for a message (this one an error)
        p, log = self.loaded_objects(self.failing_cmd())
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn(MISSING_SPEC_ERROR, p.stderr.decode())
        self.assertEqual(mentions(log, "libsystemd"), [])

    def test_loaded_to_notify(self):
        path = os.path.join(self.dir, "notify.sock")
        sock = testkit.datagram_socket(path, 0.2)
        self.addCleanup(sock.close)
        p, log = self.loaded_objects(self.launch_cmd(), NOTIFY_SOCKET=path)
        self.assertEqual(p.returncode, 0, describe(p))
        msgs = testkit.recv_all(sock)
        self.assertTrue(any(b"READY=1" in m.split(b"\n") for m in msgs), msgs)
        self.assertTrue(any(b"STOPPING=1" in m.split(b"\n") for m in msgs), msgs)
        self.assertTrue([line for line in mentions(log, "file=libsystemd.so.0 ")
                         if "dynamically loaded by" in line], mentions(log, "libsystemd"))
        self.assertEqual(p.stderr, b"")


class T2JournalStreamElsewhere(LogCase):
    def test_error_on_stderr_when_it_is_not_the_stream(self):
        # A unit's script that runs varinject 2>file: JOURNAL_STREAM is
        # inherited, but names the unit's stream, not this stderr (a pipe).
        # Another file's device and inode, as the unit's stream would be.
        other = os.stat(self.dir + "/vars.yaml")
        env = clean_env(JOURNAL_STREAM="%d:%d" % (other.st_dev, other.st_ino),
                        INVOCATION_ID="0123456789abcdef0123456789abcdef")
        for value in (env["JOURNAL_STREAM"], "garbage", "1:2:3", "", ":", "1:",
                      "99999999999999999999999:1"):
            with self.subTest(JOURNAL_STREAM=value):
                env["JOURNAL_STREAM"] = value
                p = testkit.run(self.failing_cmd(), env=env)
                self.assertEqual(p.returncode, 1, describe(p))
                self.assertEqual(p.stderr.decode(), "varinject: " + MISSING_SPEC_ERROR + "\n")

    def test_only_the_exact_value_names_stderr(self):
        # stderr a pipe whose device and inode the test knows: the exact
        # value sends the error the journal's way (no journal socket here,
        # so libsystemd drops it: nothing on stderr), and every value that
        # only looks like it (a sign, blanks, another separator) is refused
        # and the error comes on stderr.
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        exact = stream_of(w)
        dev, ino = exact.split(":")
        env = clean_env(INVOCATION_ID="0123456789abcdef0123456789abcdef")
        cases = {exact: "", " " + exact: None, "+" + exact: None, exact + " ": None,
                 exact + "\n": None, dev + ":+" + ino: None, dev + ": " + ino: None,
                 dev + "::" + ino: None, dev + "-" + ino: None}
        try:
            for value, want in cases.items():
                with self.subTest(JOURNAL_STREAM=value):
                    env["JOURNAL_STREAM"] = value
                    p = subprocess.run(self.failing_cmd(), env=env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=w, timeout=60)
                    self.assertEqual(p.returncode, 1)
                    os.set_blocking(r, False)
                    try:
                        got = os.read(r, 65536).decode()
                    except BlockingIOError:
                        got = ""
                    if want is None:
                        want = "varinject: " + MISSING_SPEC_ERROR + "\n"
                    self.assertEqual(got, want)
        finally:
            os.close(w)


def can_unshare():
    if os.geteuid() != 0 or UNSHARE is None:
        return False
    p = subprocess.run([UNSHARE, "--mount", "--propagation", "private", "true"],
                       capture_output=True)
    return p.returncode == 0


@unittest.skipUnless(can_unshare(), "needs root and unshare --mount")
class T3UnderSystemd(LogCase):
    def in_namespace(self, cmd, **plan):
        plan.update(cmd=cmd, env=clean_env())
        p = testkit.run([UNSHARE, "--mount", "--propagation", "private", sys.executable,
                         os.path.abspath(__file__), "--in-namespace", json.dumps(plan)])
        self.assertEqual(p.returncode, 0, describe(p))
        return json.loads(p.stdout)

    def test_error_is_a_journal_entry(self):
        r = self.in_namespace(self.failing_cmd())
        self.assertEqual(r["rc"], 1, r)
        self.assertEqual(r["stream"], "", r)
        self.assertEqual(len(r["journal"]), 1, r)
        entry = r["journal"][0]
        self.assertEqual(entry.get("MESSAGE"), MISSING_SPEC_ERROR, r)
        self.assertEqual(entry.get("PRIORITY"), "3", r)  # LOG_ERR

    def test_without_libsystemd(self):
        lib = self.libsystemd_path()
        r = self.in_namespace(self.failing_cmd(), hide_libsystemd=lib)
        self.assertEqual(r["rc"], 1, r)
        self.assertEqual(r["journal"], [], r)
        self.assertEqual(r["stream"], "varinject: " + MISSING_SPEC_ERROR + "\n", r)

        r = self.in_namespace(self.launch_cmd(), hide_libsystemd=lib, notify=True)
        self.assertEqual(r["rc"], 0, r)  # the VM ran all the same
        self.assertEqual(r["notify"], [], r)
        lines = r["stream"].splitlines()
        self.assertEqual(len(lines), 1, r)  # said once, not per notification
        self.assertRegex(lines[0], r"^varinject: warning: cannot notify systemd: "
                         r"\S*libsystemd\.so\.0: .+$")

    def libsystemd_path(self):
        # The file the loader would map for the soname (its cache's entry).
        out = testkit.checked(["ldconfig", "-p"]).stdout.decode()
        for line in out.splitlines():
            name, _, path = line.strip().partition(" => ")
            if name.startswith("libsystemd.so.0 ") and "x86-64" in name:
                return os.path.realpath(path)
        self.skipTest("libsystemd.so.0 not in the loader's cache")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--in-namespace":
        in_namespace(json.loads(sys.argv[2]))
        sys.exit(0)
    unittest.main()
