#!/usr/bin/env python3
"""Issue 8, varinject's launch path: hostile names, kills, FIFOs, fw_cfg slots.

  2. Every QEMU option value varinject builds is escaped (QemuOpts doubles a
     ',' inside a value): the built command lines are parsed back with
     QEMU's rules (util/qemu-option.c, modelled below) and give exactly the
     intended names and paths; a real QEMU shows, through its
     fw_cfg_add_file trace, the entry names it made and what it read.
  3. Credential names that a transport cannot carry unambiguously ('=',
     '/', control characters, '..', ...) are refused with one error line;
     the issue's `x,file=m.key,name=b,` never reaches QEMU, which would have
     read `m.key` from the working directory into the guest.
  5. SIGKILL of varinject takes the hypervisor with it (QEMU and the
     cloud-hypervisor stand-in); the credential files are removed as soon as
     QEMU has read them, while it runs; stale runtime directories of killed
     runs are removed at the next start, and nothing else is.
 10. A FIFO in --from-credentials-dir is refused at once; SIGTERM stops a
     varinject blocked on a FIFO (the store, the identity).
 11. fw_cfg file slots: QEMU's own use is measured against the installed
     QEMU; varinject refuses one credential more than its limit before
     launch, and the maximum it accepts boots a busybox guest that receives
     every credential (and QEMU itself aborts where varinject used to send
     it on).
  And what fuzz/fuzz_cmdline found: argv mode with --oem-string read
  beyond its value (a crash).

Run as root (`python3 tests/inject_attack_test.py`); binaries from VARINJECT,
VARGEN, VARSEAL (defaults under build/), QEMU from QEMU (default
qemu-system-x86_64), the busybox guest from tests/guest/ cached in
GUEST_CACHE. One guest boot (TCG); the other QEMU runs stop before the guest
starts (-S). Standard library only.
"""
import functools
import hashlib
import os
import re
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import testkit  # noqa: E402
from testkit import BUILD, VARGEN, VARINJECT, VARSEAL  # noqa: E402

QEMU = (os.environ.get("QEMU") or shutil.which("qemu-system-x86_64")
        or "/usr/bin/qemu-system-x86_64")
STANDIN = os.path.join(HERE, "ch", "cloud-hypervisor")
GUEST_CACHE = os.environ.get("GUEST_CACHE", BUILD + "/guest-cache")

TIMEOUT = 60            # any one run that should end by itself (generous: TCG, shared CPUs)
BOOT_TIMEOUT = 240      # a busybox guest boots to poweroff in seconds under TCG
PREFIX = "opt/io.systemd.credentials/"
TRACE_RE = re.compile(r"fw_cfg_add_file \S+ #\d+: (.*) \((\d+) bytes\)")
CRED_RE = re.compile(r"CRED (\S+) ([0-9a-f]{64}) (\d+)")

# QEMU's fw_cfg files for `-M q35 -kernel ...` under TCG, measured with
# `-trace fw_cfg_add_file` (test_qemu_own_fw_cfg_files checks it still
# holds): etc/boot-fail-wait, etc/e820, genroms/kvmvapic.bin,
# genroms/linuxboot_dma.bin, etc/system-states, etc/smi/{supported,
# requested}-features, etc/smi/features-ok, etc/acpi/tables,
# etc/table-loader, etc/tpm/log, etc/acpi/rsdp, etc/smbios/smbios-{tables,
# anchor}, bootorder, bios-geometry. 32 slots by default.
QEMU_OWN = {"q35": 16, "pc": 13, "microvm": 9}
SLOTS = 32
HEADROOM = 4            # varinject keeps this many free for files QEMU options add
LIMIT = {m: SLOTS - own - HEADROOM for m, own in QEMU_OWN.items()}


# ---- QEMU's option syntax (util/qemu-option.c, QEMU 7.2) ---------------------------

def qemu_get_opt_value(s, i):
    """get_opt_value: the value from s[i] to the first single ','; ',,' is
    one ','. Returns (value, index of the ending ',' or len(s))."""
    out = []
    while True:
        j = s.find(",", i)
        if j < 0:
            out.append(s[i:])
            return "".join(out), len(s)
        if j + 1 < len(s) and s[j + 1] == ",":
            out.append(s[i:j + 1])
            i = j + 2
            continue
        out.append(s[i:j])
        return "".join(out), j


def qemu_opts(s, implied=None):
    """opts_do_parse: [(name, value)] in order, as QEMU reads them. A part
    without '=' is the implied option's value when first, else a flag
    ("foo" -> foo=on, "nofoo" -> foo=off)."""
    out = []
    i = 0
    first = True
    while i < len(s):
        n = i
        while n < len(s) and s[n] not in "=,":
            n += 1
        if n == len(s) or s[n] != "=":
            if first and implied:
                value, j = qemu_get_opt_value(s, i)
                name = implied
            else:
                name, j = s[i:n], n
                value = "on"
                if name.startswith("no"):
                    name, value = name[2:], "off"
        else:
            name = s[i:n]
            value, j = qemu_get_opt_value(s, n + 1)
        if j < len(s):
            j += 1      # the separating ','
        out.append((name, value))
        first = False
        i = j
    return out


class QemuOptsModel(unittest.TestCase):
    """The model against QEMU's documented behaviour."""

    def test_rules(self):
        self.assertEqual(qemu_opts("name=a,,b,file=c"), [("name", "a,b"), ("file", "c")])
        self.assertEqual(qemu_opts("a,file=x", implied="name"), [("name", "a"), ("file", "x")])
        self.assertEqual(qemu_opts("name=x,file,nofoo"),
                         [("name", "x"), ("file", "on"), ("foo", "off")])
        # The issue's attack, unescaped: QEMU reads m.key, and the last name wins.
        self.assertEqual(qemu_opts("name=opt/x,file=m.key,name=b,,file=/run/f"),
                         [("name", "opt/x"), ("file", "m.key"), ("name", "b,file=/run/f")])
        self.assertEqual(qemu_opts("name=b,,,file=f"), [("name", "b,"), ("file", "f")])


# ---- helpers -----------------------------------------------------------------------

run = functools.partial(testkit.run, timeout=TIMEOUT)
describe = functools.partial(testkit.describe, keep=-4000)


def clean_env(**extra):
    return testkit.env_without_systemd(
        drop=[k for k in os.environ if k.startswith("CH_STANDIN_")], **extra)


write = functools.partial(testkit.write, exclusive=True)


def cmdline_of(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def alive(pid):
    """Running and not a zombie."""
    return testkit.proc_state("/proc/%d/stat" % pid) not in (None, "Z")


def opening_a_fifo(pid):
    """Whether pid is asleep in an open() (open, openat, openat2) that waits
    for the other end of a FIFO. /proc/PID/syscall names the call it is in
    (root may read it); wchan names where the kernel sleeps, where symbols
    are shown (elsewhere it reads 0, and the call alone decides)."""
    try:
        call = proc_read_text(pid, "syscall").split()
        wchan = proc_read_text(pid, "wchan").strip()
    except OSError:
        return False
    if not call or call[0] not in ("2", "257", "437"):   # x86-64 open, openat, openat2
        return False
    return wchan in ("wait_for_partner", "0", "")


def proc_read_text(pid, name):
    with open("/proc/%d/%s" % (pid, name)) as f:
        return f.read()


def wait_until(what, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = what()
        if v:
            return v
        time.sleep(step)
    return what()


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def kernel():
    k = sorted(f for f in os.listdir("/boot") if re.match(r"vmlinuz-.*-cloud-amd64$", f))
    return os.path.join("/boot", k[-1]) if k else None


class Started:
    """A background varinject with its output collected as it comes."""

    def __init__(self, cmd, cwd=None, env=None):
        self.p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env or clean_env())
        self.out, self.err = [], []
        self.threads = [threading.Thread(target=self._read, args=(self.p.stdout, self.out),
                                         daemon=True),
                        threading.Thread(target=self._read, args=(self.p.stderr, self.err),
                                         daemon=True)]
        for t in self.threads:
            t.start()

    @staticmethod
    def _read(stream, sink):
        try:
            while True:
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    break
                sink.append(chunk)
        except (OSError, ValueError):
            pass        # closed by wait() while an orphan still held the pipe

    @property
    def stdout(self):
        return b"".join(self.out)

    @property
    def stderr(self):
        return b"".join(self.err)

    def text(self):
        return (self.stdout + self.stderr).decode(errors="replace").replace("\r", "")

    def wait(self, timeout=TIMEOUT):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self.threads:
            t.join(10)
        self.p.stdout.close()
        self.p.stderr.close()
        return self.p.returncode

    def hypervisor(self, prefix):
        """The pid of the child of varinject whose argv[0] base name starts with prefix."""
        for q in testkit.children(self.p.pid):
            argv = cmdline_of(q)
            if argv and any(os.path.basename(a.decode(errors="replace")).startswith(prefix)
                            for a in argv[:2]):
                return q
        return None

    def describe(self):
        return describe(self.p, self.stdout, self.stderr)


def setUpModule():
    if os.geteuid() != 0:
        raise RuntimeError("run as root: the stale-directory test uses another owner")
    for tool in testkit.not_executable(VARINJECT, VARGEN, VARSEAL, QEMU):
        raise RuntimeError("%s is not an executable" % tool)


class Case(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        tmp = tempfile.mkdtemp(prefix="inject_attack_test.")
        self.addCleanup(shutil.rmtree, tmp, True)
        self.dir = tmp
        # The runtime directory's parent: a RAM file system only this test uses.
        self.shm = tempfile.mkdtemp(prefix="inject_attack_test.", dir="/dev/shm")
        self.addCleanup(shutil.rmtree, self.shm, True)
        self.rundir = os.path.join(self.shm, "run")
        os.mkdir(self.rundir, 0o755)
        self.pids = []          # hypervisors to make sure of, by pid
        self.addCleanup(self.reap)

    def reap(self):
        for pid in self.pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def cred_dir(self, files, name="creds"):
        d = os.path.join(self.dir, name)
        os.mkdir(d, 0o700)
        for n, v in files.items():
            write(os.path.join(d, n), v, 0o400)
        return d

    def inject_cmd(self, options, hv, rundir=None):
        return ([VARINJECT] + list(options) + ["--credentials-dir", rundir or self.rundir,
                                               "--"] + list(hv))

    def dry_run(self, options, hv, rundir=None):
        p = run(self.inject_cmd(list(options) + ["--dry-run"], hv, rundir), cwd=self.dir,
                env=clean_env())
        return p

    def assert_refused(self, p, pattern):
        """Non-zero, exactly one error line matching pattern, nothing launched."""
        self.assertNotEqual(p.returncode, 0, describe(p))
        lines = p.stderr.decode(errors="replace").splitlines()
        self.assertEqual(len(lines), 1, "expected one line on stderr: %s" % describe(p))
        self.assertRegex(lines[0], r"^varinject: error: ")
        self.assertRegex(lines[0], pattern)
        self.assertNotIn(b"command:", p.stdout, "a command line was built: %s" % describe(p))
        return lines[0]

    def private_dirs(self, parent=None):
        parent = parent or self.rundir
        return [os.path.join(parent, e) for e in os.listdir(parent)
                if e.startswith("varinject.")]

    def regular_files(self, parent=None):
        """Regular files in the private directories under parent (credential files)."""
        found = []
        for d in self.private_dirs(parent):
            try:
                for e in os.listdir(d):
                    if stat.S_ISREG(os.lstat(os.path.join(d, e)).st_mode):
                        found.append(os.path.join(d, e))
            except OSError:
                pass
        return found


def parse_dry_run(out):
    """(argv, {path: shown}) from --dry-run's `command:` and `file:` lines."""
    argv, files = None, {}
    for line in out.decode(errors="surrogateescape").splitlines():
        if line.startswith("command: "):
            argv = shlex.split(line[len("command: "):])
        m = re.match(r"file: (.*) \(0400\): (.*)$", line)
        if m:
            files[m.group(1)] = m.group(2)
    return argv, files


def options_of(argv, flag):
    return [argv[i + 1] for i in range(len(argv) - 1) if argv[i] == flag]


# ---- 2. QEMU option values are escaped ----------------------------------------------

class T2Escaping(Case):
    # Names systemd accepts that QemuOpts would split: ',' never escaped
    # before the fix. (Names with '=' are refused: item 3.)
    NAMES = ["x,file", "c,", "a,,b", ",lead", "d,nofile,id"]

    # Names QEMU takes without complaint when unescaped, but reads as other
    # entries ("x", "a,b", "d"): for the real QEMU.
    QUIET = ["x,file", "a,,b", "d,nofile"]

    def values(self, names=None):
        return {n: ("value-%d-" % i).encode() + secrets.token_hex(8 + i).encode()
                for i, n in enumerate(names or self.NAMES)}

    def test_dry_run_command_line_parses_back(self):
        vals = self.values()
        creds = self.cred_dir(vals)
        # A runtime directory whose path holds the issue's whole payload.
        parent = os.path.join(self.shm, "p,file=m.key,name=b,")
        os.mkdir(parent, 0o755)
        for extra in ([], ["--oem-string", "io.example=1"]):
            p = self.dry_run(["--from-credentials-dir=" + creds, "--name-style", "verbatim",
                              "--fw-cfg"] + extra, [QEMU, "-M", "q35"], rundir=parent)
            self.assertEqual(p.returncode, 0, describe(p))
            argv, files = parse_dry_run(p.stdout)
            self.assertIsNotNone(argv, describe(p))
            fw = [qemu_opts(v, implied="name") for v in options_of(argv, "-fw_cfg")]
            got = {}
            for opts in fw:
                self.assertEqual([k for k, _ in opts], ["name", "file"],
                                 "QEMU would read these options: %r" % (opts,))
                name, path = opts[0][1], opts[1][1]
                self.assertTrue(name.startswith(PREFIX), name)
                got[name[len(PREFIX):]] = path
            self.assertEqual(sorted(got), sorted(self.NAMES), argv)
            for n, path in got.items():
                self.assertIn(path, files, "QEMU would read %r, not a file varinject writes"
                              % path)
                self.assertTrue(path.startswith(parent + "/varinject."), path)
                self.assertEqual(files[path], "<secret: %d bytes>" % len(vals[n]))
            smbios = [qemu_opts(v) for v in options_of(argv, "-smbios")]
            self.assertEqual(len(smbios), len(extra) // 2, argv)
            for opts in smbios:
                self.assertEqual([k for k, _ in opts], ["type", "path"], opts)
                self.assertEqual(opts[0][1], "11")
                self.assertIn(opts[1][1], files)

    def test_real_qemu_reads_what_was_meant(self):
        # QEMU itself, stopped before the guest runs (-S), tells through its
        # fw_cfg_add_file trace which entries it made and how many bytes it
        # read into each. Files named "on" (what a flag 'file' reads) and
        # m.key wait in the working directory with sizes of their own.
        vals = self.values(self.QUIET)
        creds = self.cred_dir(vals)
        write(os.path.join(self.dir, "on"), b"o" * 333)
        write(os.path.join(self.dir, "m.key"), b"k" * 777)
        hv = [QEMU, "-accel", "tcg", "-M", "q35", "-m", "128", "-display", "none", "-S",
              "-net", "none", "-trace", "fw_cfg_add_file"]
        run_ = Started(self.inject_cmd(["--from-credentials-dir=" + creds, "--name-style",
                                        "verbatim", "--fw-cfg"], hv), cwd=self.dir)
        try:
            entries = wait_until(lambda: self.trace_done(run_), TIMEOUT, 0.1)
            qemu = run_.hypervisor("qemu-system")
            if qemu:
                self.pids.append(qemu)
        finally:
            if run_.p.poll() is None:
                run_.p.send_signal(signal.SIGTERM)
            rc = run_.wait()
        self.assertIsNotNone(rc, "varinject did not stop on SIGTERM\n" + run_.describe())
        self.assertTrue(entries, "no fw_cfg trace from QEMU\n" + run_.describe())
        ours = {n[len(PREFIX):]: size for n, size in entries if n.startswith(PREFIX)}
        self.assertEqual(ours, {n: len(v) for n, v in vals.items()},
                         "QEMU's fw_cfg entries are not the credentials\n" + run_.describe())
        sizes = [size for _, size in entries]
        self.assertNotIn(333, sizes, "QEMU read the file 'on'")
        self.assertNotIn(777, sizes, "QEMU read m.key")

    @staticmethod
    def trace_done(run_):
        """The fw_cfg entries QEMU traced, once its last own file is in."""
        text = run_.stderr.decode(errors="replace")
        if "bios-geometry" not in text and run_.p.poll() is None:
            return None
        return [(m.group(1), int(m.group(2))) for m in TRACE_RE.finditer(text)] or None


class TFuzzFindings(Case):
    def test_argv_mode_with_a_static_oem_string(self):
        # fuzz_cmdline: argv mode printed --oem-string values with %s from
        # guarded memory without a terminator (a crash, or bytes beyond).
        creds = self.cred_dir({"ok": b"value-ok"})
        p = self.dry_run(["--from-credentials-dir=" + creds, "--argv", "--oem-string",
                          "io.example=1"], [STANDIN, "--kernel", "/x"])
        self.assertEqual(p.returncode, 0, describe(p))
        argv, _ = parse_dry_run(p.stdout)
        self.assertEqual(options_of(argv, "--platform"),
                         ["oem_strings=[io.example=1,io.systemd.credential:OK=<secret: 8 bytes>]"])


# ---- 3. names a transport cannot carry ------------------------------------------------

class T3Names(Case):
    ATTACK = "x,file=m.key,name=b,"

    def test_equals_refused_from_a_credentials_dir(self):
        for style in ("verbatim", "seed"):
            creds = self.cred_dir({"DB=HOST": b"value-1", "ok": b"value-2"}, "c-" + style)
            p = self.dry_run(["--from-credentials-dir=" + creds, "--name-style", style],
                             [QEMU, "-M", "q35"])
            self.assert_refused(p, r"(?i)DB=HOST.*'='")

    def test_the_issue_attack_never_reaches_qemu(self):
        # Real mode: the name is refused before QEMU starts, so QEMU never
        # reads m.key (777 bytes) from the working directory.
        creds = self.cred_dir({self.ATTACK: b"innocent"})
        write(os.path.join(self.dir, "m.key"), b"k" * 777)
        # A short runtime path, as /run/varinject.* is: the injected name
        # "b,file=PATH" must stay within fw_cfg's 55 characters.
        short = tempfile.mkdtemp(prefix="ia.", dir="/dev/shm")
        self.addCleanup(shutil.rmtree, short, True)
        hv = [QEMU, "-accel", "tcg", "-M", "q35", "-m", "128", "-display", "none", "-S",
              "-net", "none", "-trace", "fw_cfg_add_file"]
        run_ = Started(self.inject_cmd(["--from-credentials-dir=" + creds, "--name-style",
                                        "verbatim", "--fw-cfg"], hv, rundir=short),
                       cwd=self.dir)
        seen = wait_until(lambda: run_.p.poll() is not None or "bios-geometry" in
                          run_.stderr.decode(errors="replace"), TIMEOUT, 0.1)
        qemu = run_.hypervisor("qemu-system")
        if qemu:
            self.pids.append(qemu)
        if run_.p.poll() is None:
            run_.p.send_signal(signal.SIGTERM)
        run_.wait()
        self.assertTrue(seen, run_.describe())
        read = [(n, s) for n, s in ((m.group(1), int(m.group(2))) for m in
                                    TRACE_RE.finditer(run_.stderr.decode(errors="replace")))]
        self.assertEqual(read, [], "QEMU was launched and made these fw_cfg entries "
                         "(777 bytes = m.key): %r\n%s" % (read, run_.describe()))
        self.assertNotEqual(run_.p.returncode, 0, run_.describe())
        lines = run_.stderr.decode(errors="replace").splitlines()
        self.assertEqual(len(lines), 1, run_.describe())
        self.assertRegex(lines[0], r"^varinject: error: .*'='")
        self.assertEqual(os.listdir(short), [])

    def test_other_untransportable_names(self):
        # Each as a file name in a credentials directory; one error line
        # each (a newline in a name is shown escaped, not as a second line).
        for name, why in (("new\nline", r"control"), ("tab\there", r"control"),
                          ("del\x7f", r"control"), ("caf\xe9", r"non-ASCII|control"),
                          ("a:b", r"':'")):
            with self.subTest(name=name):
                d = tempfile.mkdtemp(dir=self.dir)
                write(os.path.join(d, name), b"value")
                p = self.dry_run(["--from-credentials-dir=" + d, "--name-style", "verbatim"],
                                 [QEMU, "-M", "q35"])
                self.assert_refused(p, why)

    def test_credential_picks_must_be_names(self):
        # --credential NAME picks a file in the directory: a path is not a
        # name, and must not read beyond the directory.
        outside = write(os.path.join(self.dir, "outside"), b"not-a-credential-0123")
        creds = self.cred_dir({"ok": b"value"})
        for pick, why in (("../outside", r"'/'"), ("..", r"'\.'"), (".", r"'\.'"),
                          ("", r"empty"), ("a=b", r"'='"), ("x" * 256, r"255")):
            with self.subTest(pick=pick):
                p = self.dry_run(["--from-credentials-dir=" + creds, "--credential", pick],
                                 [QEMU, "-M", "q35"])
                self.assert_refused(p, why)
        self.assertTrue(os.path.exists(outside))

    def test_identity_credential_must_be_a_name(self):
        creds = self.cred_dir({"machine-key": b"AGE-SECRET-KEY-1XXXX"})
        p = run(self.inject_cmd(["-f", os.path.join(self.dir, "vars.yaml"), "--machine", "m",
                                 "--identity-credential", "../creds/machine-key", "--dry-run"],
                                [QEMU]), cwd=self.dir, env=clean_env(CREDENTIALS_DIRECTORY=creds))
        self.assertNotEqual(p.returncode, 0, describe(p))
        self.assertRegex(p.stderr.decode(errors="replace"), r"'/'|not a credential name")


# ---- 5. the hypervisor's life, the files' life ----------------------------------------

class T5Lifetime(Case):
    VALUES = {"alpha": b"alpha-" + secrets.token_hex(12).encode(),
              "beta": b"beta-" + secrets.token_hex(12).encode()}

    def start_qemu(self, options=(), name="creds"):
        creds = self.cred_dir(self.VALUES, name)
        hv = [QEMU, "-accel", "tcg", "-M", "q35", "-m", "128", "-display", "none", "-S",
              "-net", "none"]
        run_ = Started(self.inject_cmd(["--from-credentials-dir=" + creds] + list(options),
                                       hv), cwd=self.dir)
        qemu = wait_until(lambda: run_.hypervisor("qemu-system") or
                          (run_.p.poll() is not None and -1), TIMEOUT)
        self.assertTrue(qemu and qemu > 0, "QEMU never ran\n" + run_.describe())
        self.pids.append(qemu)
        return run_, qemu

    def check_files_gone_while_running(self, run_, qemu):
        gone = wait_until(lambda: not self.regular_files(), TIMEOUT, 0.1)
        self.assertTrue(alive(qemu), "QEMU is not running\n" + run_.describe())
        self.assertTrue(gone, "credential files still in the runtime directory while QEMU "
                        "runs (it read them at start): %s" % self.regular_files())
        self.assertEqual(len(self.private_dirs()), 1, os.listdir(self.rundir))

    def test_sigkill_takes_qemu_along_and_leaves_no_file(self):
        # The second run also finds the first one's directory, which the
        # kill left behind, and removes it (check_files_gone_while_running
        # sees one private directory).
        for i, options in enumerate(([], ["--fw-cfg"])):
            with self.subTest(options=options):
                run_, qemu = self.start_qemu(options, "creds-%d" % i)
                try:
                    self.check_files_gone_while_running(run_, qemu)
                finally:
                    run_.p.kill()
                    run_.wait()
                ended = wait_until(lambda: not alive(qemu), 30, 0.1)
                self.assertTrue(ended, "QEMU (pid %d) outlived varinject's SIGKILL" % qemu)
                self.assertEqual(self.regular_files(), [])

    def test_sigkill_takes_cloud_hypervisor_along(self):
        creds = self.cred_dir(self.VALUES)
        record = os.path.join(self.dir, "record.json")
        run_ = Started(self.inject_cmd(["--from-credentials-dir=" + creds, "--argv"],
                                       [STANDIN, "--kernel", "/x"]),
                       cwd=self.dir, env=clean_env(CH_STANDIN_RECORD=record,
                                                   CH_STANDIN_QUIET=1))
        ch = wait_until(lambda: run_.hypervisor("cloud-hypervisor") or
                        (run_.p.poll() is not None and -1), TIMEOUT)
        self.assertTrue(ch and ch > 0, "the stand-in never ran\n" + run_.describe())
        self.pids.append(ch)
        self.assertTrue(wait_until(lambda: os.path.exists(record), TIMEOUT))
        run_.p.kill()
        run_.wait()
        self.assertTrue(wait_until(lambda: not alive(ch), 30, 0.1),
                        "cloud-hypervisor (pid %d) outlived varinject's SIGKILL" % ch)

    def test_stale_directories_removed_at_start(self):
        gone = dead_pid()
        stale = os.path.join(self.rundir, "varinject.%d.AbC123" % gone)
        os.mkdir(stale, 0o700)
        write(os.path.join(stale, "fwcfg-0"), b"left-by-a-killed-run", 0o400)
        # Not ours to remove: another owner's, a live process's, a symlink
        # to a directory elsewhere, a name of another shape.
        other = os.path.join(self.rundir, "varinject.%d.OtHeR1" % gone)
        os.mkdir(other, 0o700)
        write(os.path.join(other, "fwcfg-0"), b"someone-else", 0o400)
        os.chown(os.path.join(other, "fwcfg-0"), 65534, 65534)
        os.chown(other, 65534, 65534)
        live = os.path.join(self.rundir, "varinject.%d.LiVe12" % os.getpid())
        os.mkdir(live, 0o700)
        write(os.path.join(live, "fwcfg-0"), b"in-use", 0o400)
        target = os.path.join(self.dir, "elsewhere")
        os.mkdir(target, 0o700)
        write(os.path.join(target, "precious"), b"precious")
        link = os.path.join(self.rundir, "varinject.%d.LiNk12" % gone)
        os.symlink(target, link)
        odd = os.path.join(self.rundir, "varinject.notapid")
        os.mkdir(odd, 0o700)
        write(os.path.join(odd, "x"), b"x")

        creds = self.cred_dir(self.VALUES)
        p = run(self.inject_cmd(["--from-credentials-dir=" + creds],
                                [QEMU, "-no-such-option"]), cwd=self.dir, env=clean_env())
        self.assertNotEqual(p.returncode, 0, describe(p))
        left = sorted(os.listdir(self.rundir))
        self.assertNotIn(os.path.basename(stale), left, "the stale directory was kept")
        self.assertEqual(left, sorted(os.path.basename(x) for x in (other, live, link, odd)))
        self.assertTrue(os.path.exists(os.path.join(other, "fwcfg-0")))
        self.assertTrue(os.path.exists(os.path.join(live, "fwcfg-0")))
        self.assertTrue(os.path.exists(os.path.join(target, "precious")))
        self.assertTrue(os.path.islink(link))
        self.assertTrue(os.path.exists(os.path.join(odd, "x")))


# ---- 10. FIFOs and signals -------------------------------------------------------------

class T10Fifos(Case):
    def fifo_dir(self):
        d = self.cred_dir({"ok": b"value-ok"})
        os.mkfifo(os.path.join(d, "pipe"), 0o600)
        return d

    def test_fifo_in_credentials_dir_refused_at_once(self):
        d = self.fifo_dir()
        for picks in ([], ["--credential", "pipe"]):
            with self.subTest(picks=picks):
                cmd = self.inject_cmd(["--from-credentials-dir=" + d] + picks + ["--dry-run"],
                                      [QEMU, "-M", "q35"])
                try:
                    p = run(cmd, cwd=self.dir, env=clean_env(), timeout=20)
                except subprocess.TimeoutExpired:
                    self.fail("varinject hangs on a FIFO in --from-credentials-dir")
                self.assert_refused(p, r"pipe.*not a regular file")

    def blocked_then_sigterm(self, cmd, what):
        run_ = Started(cmd, cwd=self.dir)
        # Wait for it to block in the open() of the FIFO (or to refuse the
        # FIFO and exit), however long this host takes to get there: a
        # signal sent earlier would stop it before the open and prove
        # nothing about a blocked varinject.
        blocked = wait_until(lambda: run_.p.poll() is not None or opening_a_fifo(run_.p.pid),
                             20)
        self.assertTrue(blocked, "varinject neither blocked on %s nor exited\n%s"
                        % (what, run_.describe()))
        if run_.p.poll() is None:
            run_.p.send_signal(signal.SIGTERM)
        rc = run_.wait(20)
        if rc is None:
            run_.p.kill()
            run_.wait()
            self.fail("SIGTERM did not stop varinject blocked on %s\n%s"
                      % (what, run_.describe()))
        # Either refused the FIFO by itself, or died of the signal.
        self.assertNotEqual(rc, 0, run_.describe())
        self.assertEqual(self.private_dirs(), [])

    def test_sigterm_stops_varinject_on_a_fifo_identity(self):
        fifo = os.path.join(self.dir, "machine.key")
        os.mkfifo(fifo, 0o600)
        spec, _ = make_store(self.dir)
        self.blocked_then_sigterm(self.inject_cmd(["-f", spec, "--machine", "test-vm", "-i",
                                                   fifo], [QEMU]), "a FIFO identity")

    def test_sigterm_stops_varinject_on_a_fifo_vm_config(self):
        fifo = os.path.join(self.dir, "cfg.json")
        os.mkfifo(fifo, 0o600)
        creds = self.cred_dir({"ok": b"value-ok"})
        self.blocked_then_sigterm(self.inject_cmd(["--from-credentials-dir=" + creds,
                                                   "--vm-config", fifo], [STANDIN]),
                                  "a FIFO as --vm-config")

    def test_sigterm_stops_varinject_on_a_fifo_in_the_store(self):
        spec, key = make_store(self.dir)
        secret = os.path.join(self.dir, "vars", "per-machine", "test-vm", "gen", "api-key",
                              "secret")
        self.assertTrue(os.path.exists(secret), "store layout changed: %s" % secret)
        os.unlink(secret)
        os.mkfifo(secret, 0o600)
        self.blocked_then_sigterm(self.inject_cmd(["-f", spec, "--machine", "test-vm", "-i",
                                                   key], [QEMU]), "a FIFO in the store")


def make_store(d):
    """A store with test-vm's gen/api-key set by varseal; (spec, machine key)."""
    store = testkit.TempStore(d, timeout=120)
    store.make_admin()
    spec = store.write_spec("admins:\n  admin: @ADMIN@\nmachines:\n  test-vm:\n"
                            "    generators: [gen]\ngenerators:\n  gen:\n    files:\n"
                            "      api-key: { secret: true }\n    script: \"false\"\n")
    key_path = store.machine_key("test-vm", os.path.join(d, "test-vm.key"))
    store.tool(VARSEAL, "set", "test-vm", "gen/api-key", stdin=b"api-key-value")
    return spec, key_path


# ---- 11. fw_cfg file slots ----------------------------------------------------------------

class T11FwCfgSlots(Case):
    def qemu_alone(self, machine, n, extra=()):
        """Whether QEMU (-S, quit through QMP at once) starts with n fw_cfg files."""
        f = write(os.path.join(self.dir, "f-%s-%d" % (machine, n)), b"x")
        args = [QEMU, "-accel", "tcg", "-M", machine, "-m", "128", "-display", "none", "-S",
                "-net", "none", "-qmp", "stdio"] + list(extra)
        for i in range(n):
            args += ["-fw_cfg", "name=opt/c%d,file=%s" % (i, f)]
        p = run(args, stdin=b'{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n')
        if p.returncode == 0:
            return True
        self.assertIn(b"file_slots", p.stderr, describe(p))
        return False

    def test_qemu_own_fw_cfg_files(self):
        # QEMU's own use for the machines and options varinject counts with
        # (the busybox guest's: -kernel): the limit is exact there.
        k = kernel()
        if not k:
            self.skipTest("no /boot/vmlinuz-*-cloud-amd64")
        for machine, own in QEMU_OWN.items():
            with self.subTest(machine=machine):
                free = SLOTS - own
                self.assertTrue(self.qemu_alone(machine, free, ["-kernel", k]),
                                "%s: QEMU does not start with %d fw_cfg files" % (machine, free))
                self.assertFalse(self.qemu_alone(machine, free + 1, ["-kernel", k]),
                                 "%s: QEMU starts with %d fw_cfg files: it uses fewer than "
                                 "%d itself" % (machine, free + 1, own))

    def creds(self, n, name="c"):
        return self.cred_dir({"cred-%02d" % i: ("v%d-" % i).encode() + secrets.token_hex(6)
                              .encode() for i in range(n)}, "%s-%d" % (name, n))

    def test_limit_counted_before_launch(self):
        cases = [  # (QEMU arguments, how many fw_cfg credentials fit)
            (["-M", "q35"], LIMIT["q35"]),
            (["-machine", "type=pc-q35-7.2,accel=tcg"], LIMIT["q35"]),
            (["-M", "microvm"], LIMIT["microvm"]),
            (["--machine", "microvm,rtc=on"], LIMIT["microvm"]),
            ([], LIMIT["pc"]),                        # QEMU's default machine: pc
            (["-M", "pc-i440fx-7.2"], LIMIT["pc"]),
            (["-M", "isapc"], LIMIT["q35"]),           # unmeasured: counted as the largest
            (["-M", "q35", "-fw_cfg", "name=opt/mine,string=1"], LIMIT["q35"] - 1),
            (["-M", "q35", "-global", "fw_cfg_io.x-file-slots=64"], LIMIT["q35"] + 32),
            (["-M", "q35", "-global", "driver=fw_cfg_io,property=x-file-slots,value=0x30"],
             LIMIT["q35"] + 16),
            (["-M", "pc-q35-2.8"], 0),                # 16 slots before 2.9
        ]
        dirs = {}
        for hv, fit in cases:
            with self.subTest(hv=hv):
                for n in (fit, fit + 1):
                    if n == 0:
                        continue
                    d = dirs.get(n) or dirs.setdefault(n, self.creds(n))
                    p = self.dry_run(["--from-credentials-dir=" + d, "--fw-cfg"], [QEMU] + hv)
                    if n == fit:
                        self.assertEqual(p.returncode, 0, describe(p))
                    else:
                        line = self.assert_refused(p, r"fw_cfg")
                        self.assertIn(str(fit), line)

    def test_boundary_real_qemu(self):
        # The most varinject accepts boots (a busybox guest reports every
        # credential over fw_cfg, and the files are gone while it runs); one
        # more is refused before launch; and where varinject used to launch
        # anyway, QEMU aborts on an assertion.
        k = kernel()
        p = subprocess.run(["bash", os.path.join(HERE, "guest", "build-busybox-guest.sh")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=1500,
                           env=dict(os.environ, GUEST_CACHE=GUEST_CACHE))
        if p.returncode != 0 or not k:
            raise RuntimeError("build-busybox-guest.sh failed: %s" % describe(p))
        guest = dict(l.split("=", 1) for l in p.stdout.decode().splitlines() if "=" in l)
        hv = [QEMU, "-accel", "tcg", "-M", "q35", "-m", "256", "-nographic", "-no-reboot",
              "-net", "none", "-kernel", guest["GUEST_KERNEL"], "-initrd",
              guest["GUEST_INITRD"], "-append", "console=ttyS0 quiet panic=-1"]
        fit = LIMIT["q35"]

        for n in (fit + 1, SLOTS - QEMU_OWN["q35"] + 1):
            with self.subTest(n=n):
                p = run(self.inject_cmd(["--from-credentials-dir=" + self.creds(n, "r"),
                                         "--fw-cfg"], hv), cwd=self.dir, env=clean_env(),
                        timeout=BOOT_TIMEOUT)
                self.assertNotIn(b"Assertion", p.stderr, "QEMU was launched and aborted:\n"
                                 + describe(p))
                self.assertNotIn(b"GUEST-BOOTED", p.stdout, "QEMU was launched")
                line = self.assert_refused(p, r"fw_cfg")
                self.assertIn(str(fit), line)

        # Names with commas among them: what QemuOpts would have split.
        values = {("cred-%02d" % i if i > 1 else ["x,file", "c,"][i]):
                  ("v%d-" % i).encode() + secrets.token_hex(5 + i).encode() for i in range(fit)}
        d = self.cred_dir(values, "boot")
        booted = {}
        run_ = Started(self.inject_cmd(["--from-credentials-dir=" + d, "--name-style",
                                        "verbatim", "--fw-cfg"], hv), cwd=self.dir)
        try:
            def at_boot():
                if b"GUEST-BOOTED" in run_.stdout and "files" not in booted:
                    booted["files"] = self.regular_files()
                    booted["dirs"] = self.private_dirs()
                return run_.p.poll() is not None
            wait_until(at_boot, BOOT_TIMEOUT, 0.05)
        finally:
            if run_.p.poll() is None:
                run_.p.kill()
            run_.wait()
        text = run_.text()
        self.assertEqual(run_.p.returncode, 0, run_.describe())
        self.assertIn("GUEST-DONE", text, run_.describe())
        got = {m.group(1): (m.group(2), int(m.group(3))) for m in CRED_RE.finditer(text)}
        self.assertEqual(got, {n: (hashlib.sha256(v).hexdigest(), len(v))
                               for n, v in values.items()}, run_.describe())
        self.assertEqual(booted.get("files"), [],
                         "credential files still there while the guest ran")
        self.assertEqual(len(booted.get("dirs", [])), 1)
        self.assertEqual(os.listdir(self.rundir), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
