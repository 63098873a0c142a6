#!/usr/bin/env python3
"""varinject against real QEMU (TCG) guests, end to end.

A store is made with the real tools in a temporary directory: the seed's
scenario (test-vm-secrets: api-key, db-password, jwt-secret, from vargen's
script) plus awkward values planted with `varseal set` (a comma, quotes, a
bracket, newlines, a NUL, bytes that are not UTF-8), all mapped to guest names by
the machine's `credentials:`. Then varinject launches qemu-system-x86_64
with them, and the guest reports every credential it received as
`CRED <name> <sha256> <length>`, compared with the host's values:

  1. busybox guest (tests/guest/build-busybox-guest.sh), q35, SMBIOS OEM
     strings: text form, and .binary for the value with a NUL;
  2. the same over fw_cfg: --fw-cfg on q35 (with $XDG_RUNTIME_DIR as the
     runtime directory), and -M microvm (no SMBIOS: fw_cfg by itself);
  3. exit status: QEMU's own (0), 128+9 when QEMU is SIGKILLed, SIGTERM
     forwarded to QEMU, QEMU's failure status passed on; a persistent
     --credentials-dir is refused before launch; --dry-run shows no value;
  4. the real chain (tests/guest/build-systemd-guest.sh): Debian 12's
     systemd 252 imports them and report-credentials.service reads them
     with LoadCredential=, over SMBIOS and over fw_cfg;
  5. the tests' own guarantees: a microvm guest boots with no PIT at all
     (nothing to calibrate its clock against), and a guest that stops
     printing, or never prints, is named stuck within seconds, with the
     last lines of its console.

Every guest boots on any x86-64 host, KVM or not (see APPEND and
MICROVM_APPEND), under deadlines (SILENCE_TIMEOUT, *_BOOTED, *_TIMEOUT)
that fail the test with the guest's last console lines.

While QEMU runs, /proc/*/cmdline and /proc/*/environ of every process are
scanned for every secret value (and its base64, and the random core of each
awkward value): none may appear. After each run: the private runtime
directory is gone, and no file under /run, /dev/shm or /tmp holds a value.

Run as root: `python3 tests/inject_qemu_test.py [TEST...]`. Binaries from
VARINJECT, VARGEN, VARSEAL (defaults under build/ of this checkout), QEMU
from QEMU (default qemu-system-x86_64 on PATH), guest caches under
GUEST_CACHE (default build/guest-cache of this checkout), the guests' CPU
model from VARS_QEMU_CPU (passed as -cpu to every guest; default: QEMU's
own, qemu64 under TCG). Standard library only.
"""
import base64
import functools
import hashlib
import os
import re
import secrets
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

QEMU = os.environ.get("QEMU") or shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
GUEST_DIR = os.path.join(HERE, "guest")
GUEST_CACHE = os.environ.get("GUEST_CACHE", BUILD + "/guest-cache")

# The CPU model of every guest: VARS_QEMU_CPU, passed as -cpu (e.g.
# qemu64: no invariant TSC, no TSC deadline timer, no x2APIC); unset or
# empty, QEMU's default (qemu64 too under TCG, but a QEMU built otherwise
# may differ).
QEMU_CPU = os.environ.get("VARS_QEMU_CPU", "").strip()

TOOL_TIMEOUT = 120      # vargen, varseal
# Deadlines of a guest boot, in seconds from varinject's start; each one
# kills varinject and QEMU and fails the test with the last console lines.
# Generous for a slow or busy TCG host; measured on a 2-core host: the
# busybox guest prints GUEST-BOOTED after ~3 s (~15 s with a third of a
# core), the systemd guest after 15-20 s.
SILENCE_TIMEOUT = 30    # until GUEST-BOOTED, the console never stays silent
                        # longer (nor before its first byte): the firmware or
                        # the kernel's setup code prints within a second, then
                        # the kernel line by line (its longest pause, unpacking
                        # the systemd guest's 35 MB initramfs, is ~3 s)
BUSYBOX_BOOTED = 60     # GUEST-BOOTED
BUSYBOX_TIMEOUT = 90    # GUEST-DONE and QEMU's exit: ~3 s after launch
SYSTEMD_BOOTED = 120
SYSTEMD_TIMEOUT = 180   # ~20 s after launch with -m 1024

# The guests' kernel command line, for every machine:
#  - no `quiet`: the kernel's boot messages reach the console, so that a
#    guest stuck in the kernel shows where it stopped, and a kernel that
#    works keeps printing until init (the silence deadline above);
#  - sysctl.kernel.printk=1: from init on (the kernel applies sysctl.*
#    arguments just before it runs init), only emergencies reach the
#    console. A kernel message can land in the middle of a line the guest
#    prints (the serial console writes between the UART's FIFO-sized
#    pieces of a tty write), and the tests parse those lines. systemd
#    still shows its unit status lines there (no `quiet`);
#  - no_timer_check: skips the kernel's test that the PIT's interrupt
#    reaches the IO-APIC (q35, pc). It counts the PIT ticks during a busy
#    wait of a fixed number of TSC cycles (40e9/HZ: 40 ms at 4 GHz), and
#    under TCG a vCPU thread that the busy host does not run for that long
#    misses ticks (QEMU merges them); the kernel then tries other routes,
#    and panics ("IO-APIC + timer doesn't work!") when none passes. Linux
#    sets it by itself under KVM and Hyper-V, not under TCG;
#  - panic=-1: a panic reboots at once, which -no-reboot turns into
#    QEMU's exit (the guest's failure shows at once, with its console).
APPEND = "console=ttyS0 panic=-1 no_timer_check sysctl.kernel.printk=1"
# More for -M microvm, whose kernel otherwise hangs on any host where it
# cannot calibrate the TSC against the PIT (issue 11: "tsc: Unable to
# calibrate against PIT", "tsc: No reference (HPET/PMTIMER) available",
# then nothing). microvm's ACPI is hardware-reduced: Linux sets up no
# legacy PIC and no PIT clock event there, so the local APIC timer is the
# only tick, and it is calibrated against the TSC, or against jiffies
# when the TSC's frequency is unknown: jiffies that never advance without
# a tick. microvm has no HPET and no ACPI PM timer, and the PIT
# calibration fails under TCG whenever the vCPU is slowed or descheduled
# while it polls the PIT (its loop refuses any pass more than 10 times
# slower than the fastest): 11 of 12 microvm boots without this hung on
# the 2-core development host, with -cpu qemu64, kvm64, Nehalem or max.
#  - tsc_early_khz=N: the TSC frequency, so neither calibration runs
#    (documented in the kernel's admin-guide/kernel-parameters). It need
#    not be right: under TCG the guest reads the host's TSC, and its clock
#    runs at the host TSC's rate / N. N above any host's TSC frequency (an
#    invariant TSC ticks at the CPU's nominal frequency, an older one at
#    most at its top frequency: below 5 GHz on x86-64 CPUs) makes the
#    guest's clock slower than real time, never faster: every delay and
#    timeout in the guest lasts at least as long as it asks, on any host.
# Checked by test_microvm_without_pit: -machine microvm,pit=off leaves the
# kernel nothing to calibrate against, and hangs without this argument.
# (q35 and pc need no such thing: their HPET and ACPI PM timer are the
# references when the PIT calibration fails.)
MICROVM_APPEND = "tsc_early_khz=5000000"

CRED_RE = re.compile(r"CRED (\S+) ([0-9a-f]{64}) (\d+)")
FORM_RE = re.compile(r"FORM (\S+) (smbios-text|smbios-binary|fw_cfg)")

SPEC = """\
# The seed's scenario, plus values that are awkward for every transport.
admins:
  admin: @ADMIN@

machines:
  test-vm:
    generators: [test-vm-secrets, awkward]
    credentials:
      HOST-API-KEY: test-vm-secrets/api-key
      HOST-DB-PASSWORD: test-vm-secrets/db-password
      HOST-JWT-SECRET: test-vm-secrets/jwt-secret
      HOST-COMMA: awkward/comma
      HOST-QUOTE: awkward/quote
      HOST-BRACKET: awkward/bracket
      HOST-NEWLINE: awkward/newline
      HOST-NUL: awkward/nul

generators:
  test-vm-secrets:
    files:
      api-key: { secret: true, mode: "0400" }
      db-password: { secret: true, mode: "0400" }
      jwt-secret: { secret: true, mode: "0400" }
    script: |
      openssl rand -base64 32 | tr -d '\\n' > "$out/api-key"
      openssl rand -base64 32 | tr -d '\\n' > "$out/db-password"
      openssl rand -base64 64 | tr -d '\\n' > "$out/jwt-secret"
  # Set by hand (varseal set); the script never runs.
  awkward:
    files:
      comma: { secret: true }
      quote: { secret: true }
      bracket: { secret: true }
      newline: { secret: true }
      nul: { secret: true }
    script: "false"
"""

SEED = {"HOST-API-KEY": "test-vm-secrets/api-key",
        "HOST-DB-PASSWORD": "test-vm-secrets/db-password",
        "HOST-JWT-SECRET": "test-vm-secrets/jwt-secret"}
AWKWARD = {"HOST-COMMA": "awkward/comma", "HOST-QUOTE": "awkward/quote",
           "HOST-BRACKET": "awkward/bracket", "HOST-NEWLINE": "awkward/newline",
           "HOST-NUL": "awkward/nul"}
CREDENTIALS = dict(SEED, **AWKWARD)


def awkward_values():
    """name -> (value, random core): each value unique to this run."""
    core = {n: secrets.token_hex(10).encode() for n in AWKWARD}
    return {
        "HOST-COMMA": (b"comma," + core["HOST-COMMA"] + b",,x=y,z", core["HOST-COMMA"]),
        # Not UTF-8, but no NUL: still the text form for QEMU.
        "HOST-QUOTE": (b'quote"' + core["HOST-QUOTE"] + b"\" 'single' \xc3(", core["HOST-QUOTE"]),
        "HOST-BRACKET": (b"[bracket]" + core["HOST-BRACKET"] + b"]", core["HOST-BRACKET"]),
        "HOST-NEWLINE": (b"newline\n" + core["HOST-NEWLINE"] + b"\nend\n", core["HOST-NEWLINE"]),
        "HOST-NUL": (b"nul\x00" + core["HOST-NUL"] + b"\xff\xfe\x00tail", core["HOST-NUL"]),
    }


# ---- helpers -----------------------------------------------------------------

run = functools.partial(testkit.run, timeout=TOOL_TIMEOUT)
describe = functools.partial(testkit.describe, keep=-6000)


def digest(value):
    return hashlib.sha256(value).hexdigest(), len(value)


# The environment for varinject: no systemd context (logs go to stderr).
clean_env = testkit.env_without_systemd


def build_guest(script):
    """Runs a guest build script; (returncode, {KEY: value}, stderr)."""
    p = subprocess.run(["bash", os.path.join(GUEST_DIR, script)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=1500,
                       env=dict(os.environ, GUEST_CACHE=GUEST_CACHE))
    out = {}
    for line in p.stdout.decode().splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return p.returncode, out, p.stderr.decode(errors="replace")


def proc_read(pid, leaf):
    try:
        with open("/proc/%s/%s" % (pid, leaf), "rb") as f:
            return f.read()
    except OSError:
        return None


def files_holding(roots, needles, skip=()):
    """(path, needle name) for every regular file under roots holding a needle."""
    hits = []
    for root in roots:
        for d, dirs, files in os.walk(root, onerror=lambda e: None):
            if any(d == s or d.startswith(s + "/") for s in skip):
                dirs[:] = []
                continue
            for name in files:
                path = os.path.join(d, name)
                try:
                    st = os.lstat(path)
                    if not stat.S_ISREG(st.st_mode) or st.st_size > 64 << 20:
                        continue
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                for what, needle in needles:
                    if needle in data:
                        hits.append((path, what))
    return hits


# Terminal control sequences (SeaBIOS clears the screen, systemd colours
# its status lines, and cuts some of them short when it shortens a line):
# left out of the console lines a failure quotes.
ESCAPE_RE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_c]|\[?)")


def console_tail(text, lines=20):
    """The last lines of a console, quoted, without control sequences."""
    kept = [l.rstrip() for l in ESCAPE_RE.sub("", text).split("\n") if l.strip()]
    return "\n".join("  | " + l for l in kept[-lines:]) or "  (nothing)"


def guest_label(qemu_args):
    """'-M microvm, -cpu qemu64': the machine and CPU model of a guest."""
    args = list(qemu_args)

    def value(*options):
        for i, a in enumerate(args[:-1]):
            if a in options:
                return args[i + 1]
        return None

    return "-M %s, -cpu %s" % (value("-M", "-machine", "--machine") or "?",
                               value("-cpu") or "QEMU's default")


class Run:
    """One varinject run: output, exit status, what was seen while it ran."""

    def __init__(self):
        self.rc = None
        self.stdout = b""
        self.stderr = b""
        self.args = None
        self.leaks = []          # (pid, argv0, where, needle name)
        self.scans = 0
        self.scans_with_qemu = 0
        self.qemu_pid = None
        self.qemu_argv = None
        self.private_dirs = {}   # path -> (mode, {file: mode})
        self.timed_out = False   # a deadline was missed: then stuck says which
        self.stuck = None
        self.stuck_after = None  # seconds from launch
        self.guest = "?"         # guest_label()
        self.hang = ""

    @property
    def text(self):
        return self.stdout.decode(errors="replace").replace("\r", "")

    def creds(self):
        """name -> list of (sha256, length) reported by the guest."""
        out = {}
        for m in CRED_RE.finditer(self.text):
            out.setdefault(m.group(1), []).append((m.group(2), int(m.group(3))))
        return out

    def forms(self):
        return {m.group(1): m.group(2) for m in FORM_RE.finditer(self.text)}

    def describe(self):
        return "%r exited %s%s\nguest/QEMU output:\n%s\nstderr:\n%s" % (
            self.args, self.rc, " (timed out; then:\n%s)" % self.hang if self.timed_out else "",
            self.text[-6000:], self.stderr.decode(errors="replace")[-6000:])

    def stuck_report(self):
        """Why and where a guest was declared stuck: its last console lines."""
        return ("guest stuck: %s (%s; %.1f s after launch): QEMU and varinject killed "
                "(exit status %s)\nlast console lines:\n%s\nvarinject's stderr:\n%s\n"
                "processes when it was declared stuck:\n%s\ncommand: %r" % (
                    self.stuck, self.guest, self.stuck_after, self.rc, console_tail(self.text),
                    self.stderr.decode(errors="replace")[-2000:].rstrip() or "  (nothing)",
                    self.hang, self.args))


# ---- the store, made once ----------------------------------------------------

class Store:
    pass


STORE = Store()


def setUpModule():
    if os.geteuid() != 0:
        raise RuntimeError("run as root: the test reads every process's environ")
    for tool in testkit.not_executable(VARINJECT, VARGEN, VARSEAL, QEMU):
        raise RuntimeError("%s is not an executable" % tool)
    d = tempfile.mkdtemp(prefix="inject_qemu_test.")
    STORE.dir = d
    store = testkit.TempStore(d, timeout=TOOL_TIMEOUT)
    tool = store.tool
    STORE.spec = store.spec
    STORE.admin = store.admin
    store.make_admin()
    store.write_spec(SPEC)
    STORE.machine_key = store.machine_key("test-vm", os.path.join(d, "machine.key"))

    STORE.cores = {}
    planted = {}
    for name, (value, core) in awkward_values().items():
        tool(VARSEAL, "set", "test-vm", AWKWARD[name], stdin=value)
        planted[name] = value
        STORE.cores[name] = core
    tool(VARGEN, "generate")

    # The host's view: every value as the store returns it.
    STORE.values = {}
    for name, path in CREDENTIALS.items():
        STORE.values[name] = tool(VARSEAL, "get", "test-vm", path, "-i", STORE.machine_key).stdout
    for name, value in planted.items():
        if STORE.values[name] != value:
            raise RuntimeError("varseal get %s does not return what varseal set stored" % name)
    for name in SEED:
        if len(STORE.values[name]) < 40:
            raise RuntimeError("%s is too short: %d bytes" % (name, len(STORE.values[name])))

    # What must never show up in a process table, environment or file.
    needles = []
    for name, value in STORE.values.items():
        if len(value) >= 8:
            needles.append((name, value))
        needles.append((name + " (base64)", base64.b64encode(value)))
    for name, core in STORE.cores.items():
        needles.append((name + " (random core)", core))
    STORE.needles = needles

    rc, out, err = build_guest("build-busybox-guest.sh")
    if rc != 0:
        raise RuntimeError("build-busybox-guest.sh failed (%d): %s" % (rc, err))
    STORE.kernel, STORE.busybox = out["GUEST_KERNEL"], out["GUEST_INITRD"]


def tearDownModule():
    if getattr(STORE, "dir", None):
        shutil.rmtree(STORE.dir, ignore_errors=True)


# ---- the tests -----------------------------------------------------------------

class InjectCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        # The runtime directory's parent: a tmpfs only this test uses.
        self.cred_parent = tempfile.mkdtemp(prefix="inject_qemu_test.", dir="/dev/shm")
        self.addCleanup(shutil.rmtree, self.cred_parent, True)

    def qemu_args(self, initrd, machine="q35", memory=256, append=APPEND):
        if machine == "microvm":
            append += " " + MICROVM_APPEND
        cpu = ["-cpu", QEMU_CPU] if QEMU_CPU else []
        return ["-accel", "tcg", "-M", machine] + cpu + [
            "-m", str(memory), "-nographic", "-no-reboot", "-net", "none",
            "-kernel", STORE.kernel, "-initrd", initrd, "-append", append]

    def inject(self, qemu_args, options=(), timeout=BUSYBOX_TIMEOUT, booted_timeout=BUSYBOX_BOOTED,
               silence_timeout=SILENCE_TIMEOUT, env=None, cred_dir=True, on_booted=None,
               on_qemu=None, expect_stuck=False):
        """Runs varinject with the store's test-vm; scans /proc while it runs.

        A guest that misses a deadline (missed_deadline) is killed, and the
        test fails there, naming it stuck, with its last console lines;
        unless expect_stuck: then the run's stuck says which deadline."""
        cmd = [VARINJECT, "-f", STORE.spec, "--machine", "test-vm", "-i", STORE.machine_key]
        if cred_dir:
            cmd += ["--credentials-dir", self.cred_parent]
        cmd += list(options) + ["--", QEMU] + list(qemu_args)
        r = Run()
        r.args = cmd
        r.guest = guest_label(qemu_args)
        start = time.monotonic()
        p = subprocess.Popen(cmd, cwd=STORE.dir, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env or clean_env())
        out, err = [], []
        booted = threading.Event()
        console = {"last": None}  # when the console last printed

        def reader(stream, sink, watch):
            tail = b""  # the serial console comes in small pieces
            while True:
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    break
                sink.append(chunk)
                if watch:
                    console["last"] = time.monotonic()
                    tail = (tail + chunk)[-64:]
                    if b"GUEST-BOOTED" in tail:
                        booted.set()

        threads = [threading.Thread(target=reader, args=(p.stdout, out, True), daemon=True),
                   threading.Thread(target=reader, args=(p.stderr, err, False), daemon=True)]
        for t in threads:
            t.start()
        booted_done = qemu_done = False
        while p.poll() is None:
            now = time.monotonic()
            silent_for = None if console["last"] is None else now - console["last"]
            stuck = self.missed_deadline(now - start, silent_for, booted.is_set(), timeout,
                                         booted_timeout, silence_timeout)
            if stuck:
                r.timed_out, r.stuck, r.stuck_after = True, stuck, now - start
                r.hang = self.hang_report(p.pid)
                self.kill_stuck(r, p)
                break
            self.scan(r, p.pid)
            if r.qemu_pid and on_qemu and not qemu_done:
                qemu_done = True
                on_qemu(r, p)
            if on_booted and booted.is_set() and r.qemu_pid and not booted_done:
                booted_done = True
                on_booted(r, p)
            time.sleep(0.05)
        r.rc = p.wait()
        for t in threads:
            t.join(30)
        p.stdout.close()
        p.stderr.close()
        r.stdout, r.stderr = b"".join(out), b"".join(err)
        if r.stuck and not expect_stuck:
            self.fail(r.stuck_report())
        return r

    @staticmethod
    def missed_deadline(elapsed, silent_for, booted, timeout, booted_timeout, silence_timeout):
        """Which deadline a run has missed, or None. elapsed: seconds since
        launch; silent_for: since the console's last byte (None: no byte
        yet); booted: GUEST-BOOTED seen."""
        if elapsed > timeout:
            return "not finished (GUEST-DONE, then QEMU's exit) within %d s" % timeout
        if booted:
            return None
        if silent_for is None and elapsed > silence_timeout:
            return "no console output at all within %d s" % silence_timeout
        if silent_for is not None and silent_for > silence_timeout:
            return "console silent for %d s before GUEST-BOOTED" % silence_timeout
        if elapsed > booted_timeout:
            return "no GUEST-BOOTED within %d s" % booted_timeout
        return None

    @staticmethod
    def kill_stuck(r, p):
        """SIGKILL for QEMU (varinject's children): varinject then cleans up
        and exits 128+9 by itself; SIGKILL for it too if it has not after
        10 s."""
        children = [r.qemu_pid] if r.qemu_pid else testkit.children(p.pid)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()

    @staticmethod
    def hang_report(pid):
        """What a varinject that did not exit is doing, and its children."""
        lines = []
        procs = [pid] + testkit.children(pid)
        for q in procs:
            status = (proc_read(q, "status") or b"").decode(errors="replace").splitlines()
            keep = [l for l in status if l.startswith(("Name", "State", "Threads", "Sig", "ShdPnd"))]
            lines.append("pid %d: %s; wchan %s" % (q, ", ".join(keep), (proc_read(q, "wchan")
                                                                    or b"?").decode()))
            stack = proc_read(q, "stack")
            if stack:
                lines.append(stack.decode(errors="replace"))
        return "\n".join(lines)

    def scan(self, r, inject_pid):
        """One pass over /proc: secrets in any cmdline or environ; QEMU; the
        private directory's modes."""
        r.scans += 1
        qemu_seen = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            cmdline = proc_read(pid, "cmdline")
            environ = proc_read(pid, "environ")
            argv0 = (cmdline or b"").split(b"\0")[0].decode(errors="replace")
            for where, data in (("cmdline", cmdline), ("environ", environ)):
                if not data:
                    continue
                for what, needle in STORE.needles:
                    if needle in data:
                        r.leaks.append((int(pid), argv0, where, what))
            if (os.path.basename(argv0).startswith("qemu-system")
                    and testkit.ppid_of(pid) == inject_pid):
                qemu_seen = True
                r.qemu_pid = int(pid)
                r.qemu_argv = cmdline.split(b"\0")
        if qemu_seen:
            r.scans_with_qemu += 1
            try:
                for entry in os.listdir(self.cred_parent):
                    path = os.path.join(self.cred_parent, entry)
                    st = os.lstat(path)
                    files = {}
                    if stat.S_ISDIR(st.st_mode):
                        for f in os.listdir(path):
                            files[f] = stat.S_IMODE(os.lstat(os.path.join(path, f)).st_mode)
                    r.private_dirs[path] = (stat.S_IMODE(st.st_mode), stat.S_ISDIR(st.st_mode),
                                            files)
            except OSError:
                pass

    # -- the checks every run gets

    def assert_no_leaks(self, r, check_private=True):
        self.assertGreater(r.scans_with_qemu, 0,
                           "never saw QEMU running as varinject's child: the /proc scan "
                           "proved nothing\n" + r.describe())
        self.assertEqual(r.leaks, [], "secret values in the process table:\n%s\n%s" % (
            "\n".join("pid %d (%s) %s holds %s" % l for l in sorted(set(r.leaks))),
            r.describe()))
        for what, needle in STORE.needles:
            self.assertNotIn(needle, r.stdout, "%s in the guest/QEMU output" % what)
            self.assertNotIn(needle, r.stderr, "%s in varinject's stderr" % what)
        if check_private:
            # While QEMU ran: one private directory, 0700, files 0400.
            for path, (mode, is_dir, files) in r.private_dirs.items():
                self.assertTrue(is_dir, "%s is not a directory" % path)
                self.assertEqual(mode, 0o700, "%s has mode %o" % (path, mode))
                for f, fmode in files.items():
                    self.assertEqual(fmode, 0o400, "%s/%s has mode %o" % (path, f, fmode))
            # (It lives as long as varinject; the credential files in it only
            # until QEMU has read them: inject_attack_test.py checks that.)
            self.assertEqual(len(r.private_dirs), 1,
                             "expected one private directory in %s while QEMU ran, saw %s"
                             % (self.cred_parent, sorted(r.private_dirs)))
            files = list(r.private_dirs.values())[0][2]
            for f in files:
                self.assertRegex(f, r"^(smbios|fwcfg)-\d+$", files)
        # After: nothing left in the runtime directory's parent, QEMU gone.
        self.assertEqual(os.listdir(self.cred_parent), [],
                         "the private runtime directory outlived varinject")
        if r.qemu_pid:
            self.assertFalse(os.path.exists("/proc/%d/cmdline" % r.qemu_pid)
                             and b"qemu-system" in (proc_read(r.qemu_pid, "cmdline") or b""),
                             "QEMU still runs after varinject exited")
        hits = files_holding(["/run", "/dev/shm", "/tmp"], STORE.needles)
        self.assertEqual(hits, [], "files holding secret values after the run")
        # And grep, as an administrator would, for a couple of values.
        for name in ("HOST-API-KEY", "HOST-JWT-SECRET"):
            g = subprocess.run(["grep", "-r", "-l", "-F", "-s", "--", STORE.values[name].decode(),
                                "/run", "/dev/shm", "/tmp"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300)
            self.assertEqual(g.stdout, b"", "grep -r finds %s in: %s" % (name, g.stdout.decode()))

    def assert_guest_got_everything(self, r, transport):
        """Every credential, once, with the host's digest; forms per transport."""
        self.assertIn("GUEST-DONE", r.text, r.describe())
        creds = r.creds()
        self.assertEqual(sorted(creds), sorted(CREDENTIALS), r.describe())
        for name, value in STORE.values.items():
            self.assertEqual(creds[name], [digest(value)],
                             "%s: the guest's digest is not the host's (or it came twice)\n%s"
                             % (name, r.describe()))
        forms = r.forms()
        if transport == "smbios":
            self.assertIn("SOURCE smbios", r.text)
            expected = {n: "smbios-binary" if b"\0" in v else "smbios-text"
                        for n, v in STORE.values.items()}
            self.assertEqual(forms, expected, r.describe())
            # Both encodings exercised.
            self.assertEqual(set(forms.values()), {"smbios-text", "smbios-binary"})
        else:
            self.assertIn("SOURCE fw_cfg", r.text, r.describe())
            self.assertEqual(forms, {n: "fw_cfg" for n in CREDENTIALS}, r.describe())
            self.assertNotIn("SOURCE smbios", r.text,
                             "fw_cfg was asked for, yet SMBIOS strings reached the guest")


class T1Smbios(InjectCase):
    def test_q35_smbios(self):
        static = "environment=inject-qemu-test"
        t0 = time.monotonic()
        r = self.inject(self.qemu_args(STORE.busybox), options=["--oem-string", static])
        print("\n  q35 + busybox via varinject (%s): %.1f s" % (r.guest, time.monotonic() - t0),
              file=sys.stderr)
        self.assertEqual(r.rc, 0, r.describe())
        self.assert_guest_got_everything(r, "smbios")
        # The static string first, then one string per credential.
        self.assertIn("SMBIOS-OEM-STRINGS %d" % (len(CREDENTIALS) + 1), r.text, r.describe())
        self.assertIn("OEM-STRING other (%d bytes)" % len(static), r.text, r.describe())
        self.assertLess(r.text.index("OEM-STRING other"), r.text.index("CRED "), r.describe())
        # QEMU got files, one -smbios type=11,path= per string, and no fw_cfg.
        argv = [a.decode(errors="replace") for a in r.qemu_argv]
        smbios = [a for a in argv if a.startswith("type=11")]
        self.assertEqual(len(smbios), len(CREDENTIALS) + 1, argv)
        for a in smbios:
            self.assertRegex(a, r"^type=11,path=/")
        self.assertFalse(any("io.systemd.credentials" in a for a in argv), argv)
        self.assert_no_leaks(r)


class T2FwCfg(InjectCase):
    def test_q35_fw_cfg(self):
        # The runtime directory from $XDG_RUNTIME_DIR this time.
        r = self.inject(self.qemu_args(STORE.busybox), options=["--fw-cfg"], cred_dir=False,
                        env=clean_env(XDG_RUNTIME_DIR=self.cred_parent))
        self.assertEqual(r.rc, 0, r.describe())
        self.assertIn("FWCFG present", r.text)
        self.assert_guest_got_everything(r, "fw_cfg")
        argv = [a.decode(errors="replace") for a in r.qemu_argv]
        fw = [a for a in argv if a.startswith("name=opt/io.systemd.credentials/")]
        self.assertEqual(sorted(re.match(r"name=opt/io\.systemd\.credentials/([^,]+),file=/", a)
                                .group(1) for a in fw), sorted(CREDENTIALS), argv)
        self.assertFalse(any(a.startswith("type=11") for a in argv), argv)
        self.assert_no_leaks(r)

    def test_microvm_fw_cfg_by_itself(self):
        # Debian's cloud kernel boots on -M microvm with -kernel (no SMBIOS
        # there): varinject must switch to fw_cfg without being told.
        t0 = time.monotonic()
        r = self.inject(self.qemu_args(STORE.busybox, machine="microvm"))
        print("\n  microvm + busybox via varinject (%s): %.1f s" % (r.guest, time.monotonic() - t0),
              file=sys.stderr)
        self.assertEqual(r.rc, 0, r.describe())
        self.assertIn("SMBIOS-OEM-STRINGS none", r.text, r.describe())
        self.assert_guest_got_everything(r, "fw_cfg")
        self.assert_no_leaks(r)

    def test_microvm_spelled_machine(self):
        # `-machine microvm,...` is recognised too.
        args = self.qemu_args(STORE.busybox, machine="microvm")
        i = args.index("-M")
        args[i:i + 2] = ["-machine", "microvm,rtc=on"]
        r = self.inject(args)
        self.assertEqual(r.rc, 0, r.describe())
        self.assert_guest_got_everything(r, "fw_cfg")
        self.assert_no_leaks(r)

    def test_microvm_without_pit(self):
        # No PIT either: nothing at all to calibrate the TSC against, as on
        # a host where the PIT calibration always fails. Without
        # MICROVM_APPEND the kernel stops for good after "tsc: Marking TSC
        # unstable due to could not calculate TSC khz".
        args = self.qemu_args(STORE.busybox, machine="microvm")
        i = args.index("-M")
        args[i:i + 2] = ["-machine", "microvm,pit=off"]
        t0 = time.monotonic()
        r = self.inject(args)
        print("\n  microvm,pit=off + busybox via varinject (%s): %.1f s"
              % (r.guest, time.monotonic() - t0), file=sys.stderr)
        self.assertEqual(r.rc, 0, r.describe())
        khz = int(MICROVM_APPEND.partition("tsc_early_khz=")[2])
        self.assertIn("tsc: Detected %d.%03d MHz processor" % divmod(khz, 1000), r.text,
                      r.describe())
        self.assert_guest_got_everything(r, "fw_cfg")
        self.assert_no_leaks(r)


class T3Lifecycle(InjectCase):
    HOLD = APPEND + " guest_hold=300"

    def test_qemu_killed_status_128_plus_9(self):
        def kill_qemu(r, p):
            os.kill(r.qemu_pid, signal.SIGKILL)

        r = self.inject(self.qemu_args(STORE.busybox, append=self.HOLD), on_booted=kill_qemu)
        self.assertFalse(r.timed_out, r.describe())
        self.assertIn("GUEST-BOOTED", r.text, r.describe())
        self.assertNotIn("GUEST-DONE", r.text)
        self.assertEqual(r.rc, 128 + signal.SIGKILL, r.describe())
        self.assert_no_leaks(r)

    def test_sigterm_forwarded(self):
        sent = []

        def term(r, p):
            sent.append(time.monotonic())
            p.send_signal(signal.SIGTERM)

        r = self.inject(self.qemu_args(STORE.busybox, append=self.HOLD), on_booted=term)
        self.assertFalse(r.timed_out, r.describe())
        self.assertEqual(len(sent), 1, r.describe())
        self.assertNotIn("GUEST-DONE", r.text)
        # QEMU got the SIGTERM (it says so and exits 0), and varinject
        # passed on QEMU's status.
        self.assertIn("terminating on signal 15", r.text + r.stderr.decode(errors="replace"),
                      r.describe())
        self.assertEqual(r.rc, 0, r.describe())
        self.assert_no_leaks(r)

    def test_qemu_failure_status_passed_on(self):
        # QEMU refusing its arguments: varinject exits with QEMU's own status.
        bad = self.qemu_args(STORE.busybox) + ["-no-such-option"]
        alone = run([QEMU] + bad, timeout=60)
        self.assertNotEqual(alone.returncode, 0, describe(alone))
        r = self.inject(bad)
        self.assertEqual(r.rc, alone.returncode, r.describe())
        self.assertIn(b"no-such-option", r.stderr, r.describe())
        self.assertEqual(r.leaks, [])
        self.assertEqual(os.listdir(self.cred_parent), [],
                         "the private runtime directory outlived varinject")
        self.assertEqual(files_holding(["/run", "/dev/shm", "/tmp"], STORE.needles), [])

    def test_persistent_runtime_dir_refused(self):
        # GUEST_CACHE is on disk: refused before launch, nothing written.
        os.makedirs(GUEST_CACHE, exist_ok=True)
        disk = tempfile.mkdtemp(prefix="inject-persistent.", dir=GUEST_CACHE)
        self.addCleanup(shutil.rmtree, disk, True)
        fstype = subprocess.run(["stat", "-f", "-c", "%T", disk], stdout=subprocess.PIPE,
                                check=True).stdout.decode().strip()
        if fstype in ("tmpfs", "ramfs"):
            self.skipTest("GUEST_CACHE is on a RAM file system (%s)" % fstype)
        cmd = [VARINJECT, "-f", STORE.spec, "--machine", "test-vm", "-i", STORE.machine_key,
               "--credentials-dir", disk, "--", QEMU] + self.qemu_args(STORE.busybox)
        p = run(cmd, cwd=STORE.dir, env=clean_env(), timeout=BUSYBOX_TIMEOUT)
        self.assertNotEqual(p.returncode, 0, describe(p))
        self.assertNotIn(b"GUEST-BOOTED", p.stdout, "QEMU was launched")
        self.assertNotIn(b"SeaBIOS", p.stdout, "QEMU was launched")
        self.assertIn(b"varinject", p.stderr, describe(p))
        self.assertEqual(os.listdir(disk), [], "files written to a persistent directory")

    def test_dry_run_shows_no_value(self):
        cmd = [VARINJECT, "-f", STORE.spec, "--machine", "test-vm", "-i", STORE.machine_key,
               "--credentials-dir", self.cred_parent, "--dry-run", "--",
               QEMU] + self.qemu_args(STORE.busybox)
        p = run(cmd, cwd=STORE.dir, env=clean_env(), timeout=60)
        self.assertEqual(p.returncode, 0, describe(p))
        both = p.stdout + p.stderr
        self.assertNotIn(b"GUEST-BOOTED", both, "--dry-run launched QEMU")
        for what, needle in STORE.needles:
            self.assertNotIn(needle, both, "%s in --dry-run's output" % what)
        # One placeholder per credential file it would write.
        self.assertEqual(len(re.findall(rb"<secret: \d+ bytes>", both)), len(CREDENTIALS),
                         describe(p))
        self.assertEqual(os.listdir(self.cred_parent), [], "--dry-run wrote files")


class T4Systemd(InjectCase):
    """The real chain: systemd 252 imports them, a unit reads them."""

    @classmethod
    def setUpClass(cls):
        t0 = time.monotonic()
        rc, out, err = build_guest("build-systemd-guest.sh")
        cls.build_seconds = time.monotonic() - t0
        if rc == 2:
            raise unittest.SkipTest("the systemd guest needs Debian's mirror and debootstrap "
                                    "could not fetch packages: " + err.strip()[-500:])
        if rc != 0:
            raise RuntimeError("build-systemd-guest.sh failed (%d):\n%s" % (rc, err))
        cls.initrd = out["GUEST_INITRD"]
        # The unit's LoadCredential= list: LOCAL:SYSTEM.
        cls.local = dict(c.split(":", 1) for c in out["GUEST_CREDENTIALS"].split(","))
        print("\n  systemd guest ready in %.1f s" % cls.build_seconds, file=sys.stderr)

    def check_systemd(self, options, fw_cfg):
        self.assertEqual(sorted(self.local.values()), sorted(CREDENTIALS),
                         "the guest's unit and this test disagree on the credentials")
        t0 = time.monotonic()
        r = self.inject(self.qemu_args(self.initrd, memory=1024), options=options,
                        timeout=SYSTEMD_TIMEOUT, booted_timeout=SYSTEMD_BOOTED)
        print("\n  q35 + systemd via varinject%s (%s): %.1f s"
              % (" --fw-cfg" if fw_cfg else "", r.guest, time.monotonic() - t0), file=sys.stderr)
        self.assertFalse(r.timed_out, r.describe())
        self.assertEqual(r.rc, 0, r.describe())
        self.assertNotIn("GUEST-UNIT-FAILED", r.text, r.describe())
        self.assertIn("GUEST-DONE", r.text, r.describe())
        # PID 1 imported each of them as a system credential...
        syscreds = re.findall(r"SYSCRED (\S+)", r.text)
        self.assertEqual(sorted(syscreds), sorted(CREDENTIALS), r.describe())
        if fw_cfg:
            self.assertIn("FWCFG present", r.text, r.describe())
        # ...and the unit read each one through LoadCredential=, intact.
        creds = r.creds()
        self.assertEqual(sorted(creds), sorted(self.local), r.describe())
        for local, system in self.local.items():
            self.assertEqual(creds[local], [digest(STORE.values[system])],
                             "%s (%s): the unit's digest is not the host's\n%s"
                             % (local, system, r.describe()))
        argv = [a.decode(errors="replace") for a in r.qemu_argv]
        if fw_cfg:
            self.assertFalse(any(a.startswith("type=11") for a in argv), argv)
        else:
            self.assertFalse(any("io.systemd.credentials" in a for a in argv), argv)
        self.assert_no_leaks(r)

    def test_systemd_smbios(self):
        self.check_systemd([], fw_cfg=False)

    def test_systemd_fw_cfg(self):
        self.check_systemd(["--fw-cfg"], fw_cfg=True)


class T5Deadlines(InjectCase):
    """A stuck guest is named stuck within seconds, with its last console
    lines, and cleaned up: the deadlines every boot above runs under."""
    SILENCE = 10  # seconds: shorter than SILENCE_TIMEOUT, to test quickly

    def check_stuck(self, r, why, console_line):
        self.assertTrue(r.timed_out, r.describe())
        self.assertIn(why, r.stuck, r.stuck_report())
        report = r.stuck_report()
        # The console's last line is the last one quoted.
        self.assertIn("\n%s\nvarinject's stderr:" % console_line, report)
        self.assertIn(r.guest, report)
        # QEMU was killed, varinject said so (128+9) and removed its
        # runtime directory: nothing of the stuck run is left.
        self.assertEqual(r.rc, 128 + signal.SIGKILL, report)
        self.assert_no_leaks(r)

    def test_silent_guest(self):
        # The busybox guest prints GUEST-STALLING, then nothing for 600 s:
        # named stuck SILENCE s later, long before any other deadline.
        r = self.inject(self.qemu_args(STORE.busybox, append=APPEND + " guest_stall=600"),
                        silence_timeout=self.SILENCE, expect_stuck=True)
        print("\n  a guest silent before GUEST-BOOTED, named stuck after %.1f s"
              % r.stuck_after, file=sys.stderr)
        self.check_stuck(r, "console silent for %d s before GUEST-BOOTED" % self.SILENCE,
                         "  | GUEST-STALLING 600")
        self.assertLess(r.stuck_after, BUSYBOX_BOOTED, r.stuck_report())

    def test_mute_guest(self):
        # QEMU started with its CPU stopped (-S): not one console byte.
        r = self.inject(self.qemu_args(STORE.busybox) + ["-S"],
                        silence_timeout=self.SILENCE, expect_stuck=True)
        print("\n  a guest that never prints, named stuck after %.1f s" % r.stuck_after,
              file=sys.stderr)
        self.check_stuck(r, "no console output at all within %d s" % self.SILENCE,
                         "  (nothing)")
        self.assertLess(r.stuck_after, BUSYBOX_BOOTED, r.stuck_report())

    def test_deadlines(self):
        # The rules, by themselves: (elapsed, silent for, booted) -> which.
        d = functools.partial(InjectCase.missed_deadline, timeout=90, booted_timeout=60,
                              silence_timeout=30)
        self.assertIsNone(d(29, None, False))
        self.assertIn("no console output", d(31, None, False))
        self.assertIsNone(d(50, 29, False))
        self.assertIn("console silent for 30 s", d(50, 31, False))
        self.assertIn("no GUEST-BOOTED within 60 s", d(61, 1, False))
        # Once booted, a quiet guest is fine (guest_hold) until the end.
        self.assertIsNone(d(89, 80, True))
        self.assertIn("not finished", d(91, 1, True))


if __name__ == "__main__":
    unittest.main(verbosity=2)
