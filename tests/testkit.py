"""Helpers shared by the Python tests (imported like ptyrun, from this folder).

What every test file needs and used to copy: where the built tools are
(VARSEAL, VARGEN, VARINJECT and SHARED_DIR, as tests/CMakeLists.txt sets
them, with defaults under build/ of this checkout), running a tool and
describing a run that went wrong, reading and writing small files, a
temporary store (an admin key, a spec naming it, machine keys),
temporary unprivileged users acted through with runuser, a temporary
directory per test, and random payloads.

Nothing here asserts what a test is about: a helper that checks raises
AssertionError with the run's description, so a failure reads the same
wherever it happens.
"""

import grp
import os
import re
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(ROOT, "build")


def tool_path(variable, default):
    """The absolute path in the environment variable, or default under build/."""
    return os.path.abspath(os.environ.get(variable, os.path.join(BUILD, default)))


VARSEAL = tool_path("VARSEAL", "seal/varseal")
VARGEN = tool_path("VARGEN", "gen/vargen")
VARINJECT = tool_path("VARINJECT", "inject/varinject")
# CMake's default, ${CMAKE_SOURCE_DIR}/../shared, is beside the checkout.
SHARED_DIR = os.path.abspath(os.environ.get("SHARED_DIR", os.path.join(ROOT, "..", "shared")))

TIMEOUT = 120  # seconds: a default for any one run that should end by itself


def not_executable(*paths):
    """The paths (tools) that are not executable files, in order."""
    return [p for p in paths if not os.access(p, os.X_OK)]


def skip_unless_built(*tools):
    """Skips the module or class when a built tool is missing."""
    for tool in not_executable(*tools):
        raise unittest.SkipTest("%s not built (cmake -S . -B build "
                                "&& cmake --build build -j2)" % tool)


# ---- running tools ----------------------------------------------------------------

def run(cmd, stdin=None, timeout=TIMEOUT, check=False, **kw):
    """Runs cmd with stdin bytes (or /dev/null); returns the CompletedProcess
    with stdout and stderr captured.  check: a non-zero exit raises
    AssertionError with describe()."""
    if stdin is None:
        kw.setdefault("stdin", subprocess.DEVNULL)
    else:
        kw["input"] = stdin
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(describe(p))
    return p


def datagram_socket(path, timeout):
    """A Unix datagram socket bound at path (where a tool sends to, as
    systemd's notify and journal sockets), its reads timing out after
    timeout seconds. The caller closes it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(path)
        sock.settimeout(timeout)
    except OSError:
        sock.close()
        raise
    return sock


def recv_all(sock):
    """Every datagram waiting on sock, until its timeout finds none more
    (or, non-blocking, none is there)."""
    out = []
    try:
        while True:
            out.append(sock.recv(65536))
    except (socket.timeout, BlockingIOError):
        pass
    return out


# What systemd puts in a unit's environment, and what varinject reads as
# such: a tool under test must not inherit it from the test's own.
SYSTEMD_CONTEXT = ("NOTIFY_SOCKET", "JOURNAL_STREAM", "INVOCATION_ID", "LISTEN_FDS",
                   "LISTEN_PID", "CREDENTIALS_DIRECTORY", "RUNTIME_DIRECTORY",
                   "XDG_RUNTIME_DIR")


def env_without_systemd(drop=(), **extra):
    """This process's environment without the systemd context (and the
    names in drop), plus extra (values made strings)."""
    env = {k: v for k, v in os.environ.items()
           if k not in SYSTEMD_CONTEXT and k not in drop}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _stat_fields(stat_path):
    """The fields of a /proc/.../stat file after the name (state, ppid,
    ...), or None when the process or thread is gone. The name, in
    brackets, may hold anything, so they start after the last ')'."""
    try:
        with open(stat_path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        return data[data.rindex(b")") + 2:].split()
    except ValueError:
        return None


def proc_state(stat_path):
    """The state letter (R, S, Z...) in a /proc/.../stat file, or None when
    the process or thread is gone."""
    fields = _stat_fields(stat_path)
    return fields[0].decode() if fields else None


def ppid_of(pid):
    """The parent of process pid, or None when it is gone."""
    fields = _stat_fields("/proc/%s/stat" % pid)
    try:
        return int(fields[1]) if fields else None
    except (ValueError, IndexError):
        return None


def children(pid):
    """The processes whose parent is pid."""
    return [int(q) for q in os.listdir("/proc") if q.isdigit() and ppid_of(q) == pid]


def checked(cmd, **kw):
    """run() that must succeed."""
    return run(cmd, check=True, **kw)


def _text(data, keep):
    text = (data or b"").decode(errors="replace")
    if keep is None:
        return text
    return text[:keep] if keep > 0 else text[keep:]


def describe(p, out=None, err=None, rc=None, keep=None):
    """A run for a failure message: its argv, exit status, stdout and stderr.
    out, err, rc replace what p holds (output read separately, a status
    waited for elsewhere); keep > 0 keeps the first keep characters of each
    stream, keep < 0 the last -keep, None all."""
    return "%r exited %s\nstdout: %s\nstderr: %s" % (
        p.args, p.returncode if rc is None else rc,
        _text(p.stdout if out is None else out, keep),
        _text(p.stderr if err is None else err, keep))


# ---- files ------------------------------------------------------------------------

def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data, mode=0o600, exclusive=False):
    """Writes data (bytes or str) to path with mode; returns path.
    exclusive: path must not exist yet (O_EXCL)."""
    if isinstance(data, str):
        data = data.encode()
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        f = os.fdopen(fd, "wb")
    else:
        f = open(path, "wb")
    with f:
        f.write(data)
    os.chmod(path, mode)
    return path


def walk_entries(top, read_links=False):
    """(name relative to top, lstat result, data) for every entry under top,
    not following symlinks: data is a regular file's content, with
    read_links a symlink's target, else None."""
    for root, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            data = None
            if stat.S_ISREG(st.st_mode):
                data = read(p)
            elif read_links and stat.S_ISLNK(st.st_mode):
                data = os.readlink(p)
            yield os.path.relpath(p, top), st, data


OTHER_ROW_RE = re.compile(r"^[^\t]+\t(key|machine|generator|leftover)\t[a-z-]+$")


def state_lines(text, state_re):
    """(owner/gen/file, match of state_re) for each line of vargen list or
    check output about a generator's file (its "check: " summary and the
    rows of kept machine keys and orphaned directories skipped: see
    other_rows); any other line fails."""
    for line in text.splitlines():
        if line.startswith("check: ") or OTHER_ROW_RE.match(line):
            continue
        m = state_re.match(line)
        if not m:
            raise AssertionError("unexpected state line %r" % line)
        yield "%s/%s/%s" % m.group(1, 2, 3), m


def other_rows(text):
    """{name: (kind, state)} of the rows of vargen list or check that are not
    a generator's file: kept machine keys (machine-keys/M, kind key) and
    orphaned machines and generators (kind machine, generator)."""
    out = {}
    for line in text.splitlines():
        if OTHER_ROW_RE.match(line):
            name, kind, state = line.split("\t")
            out[name] = (kind, state)
    return out


STRACE = shutil.which("strace")
_strace_works = None


def strace_works():
    """strace is installed and may trace here (ptrace can be forbidden in
    a container). Asked once per test process."""
    global _strace_works
    if _strace_works is None:
        _strace_works = bool(STRACE) and subprocess.run(
            [STRACE, "-f", "-qq", "-o", "/dev/null", "true"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL).returncode == 0
    return _strace_works


def traced_env():
    """The environment for a tool run under strace or gdb: LeakSanitizer (in
    sanitizer builds) cannot work under ptrace; the other checks still do."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
    return env


def await_trace(proc, log, ready, timeout, what):
    """Waits while proc (a tool under strace, writing log) runs until
    ready(the log's lines so far) is true: how a test acts at the point
    where strace holds the tool. Returns the time it was seen; fails the
    test, naming what never happened, if proc ends first or timeout passes."""
    deadline = time.time() + timeout
    while True:
        lines = []
        if os.path.exists(log):
            with open(log) as f:
                lines = f.read().splitlines()
        if ready(lines):
            return time.time()
        if proc.poll() is not None:
            raise AssertionError("the tool ended before %s:\n%s" % (what, "\n".join(lines)))
        if time.time() > deadline:
            raise AssertionError("%s did not happen in %d s" % (what, timeout))
        time.sleep(0.01)


def fs_type(path):
    """The file system type of path as stat -f names it (tmpfs, ramfs, ext2/ext3...)."""
    return run(["stat", "-f", "-c", "%T", path], timeout=30).stdout.decode().strip()


def on_ram(path):
    return fs_type(path) in ("tmpfs", "ramfs")


# ---- bech32, for making keys that are wrong on purpose -----------------------------

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values):
    gen = (0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1ffffff) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp):
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_decode(s):
    """(hrp, bytes) of a bech32 string of any length (age's keys are longer
    than BIP 173's 90 characters); lower case only."""
    hrp, data = s[:s.rindex("1")], [BECH32_CHARSET.index(c) for c in s[s.rindex("1") + 1:]]
    assert _bech32_polymod(_hrp_expand(hrp) + data) == 1, "bad checksum"
    acc, bits, out = 0, 0, bytearray()
    for v in data[:-6]:
        acc, bits = acc << 5 | v, bits + 5
        if bits >= 8:
            bits -= 8
            out.append(acc >> bits & 0xff)
    return hrp, bytes(out)


def bech32_encode(hrp, data):
    acc, bits, values = 0, 0, []
    for b in data:
        acc, bits = acc << 8 | b, bits + 8
        while bits >= 5:
            bits -= 5
            values.append(acc >> bits & 31)
    if bits:
        values.append(acc << (5 - bits) & 31)
    poly = _bech32_polymod(_hrp_expand(hrp) + values + [0] * 6) ^ 1
    values += [poly >> 5 * (5 - i) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[v] for v in values)


MLKEM_Q = 3329


def failing_modulus(recipient):
    """recipient (age1pq1...) with its ML-KEM key's first coefficient set
    to q: a well-formed bech32 string whose key FIPS 203's modulus check
    refuses."""
    hrp, pk = bech32_decode(recipient)
    pk = bytearray(pk)
    pk[0] = MLKEM_Q & 0xff
    pk[1] = (pk[1] & 0xf0) | (MLKEM_Q >> 8)
    return bech32_encode(hrp, bytes(pk))


# ---- a temporary store -------------------------------------------------------------

class TempStore:
    """A store in an existing directory: an admin key (admin.key), a spec
    (vars.yaml) naming it, and machine keys.  The tools run in the
    directory; a failing step raises AssertionError with its description."""

    def __init__(self, directory, timeout=TIMEOUT):
        self.dir = directory
        self.timeout = timeout
        self.spec = os.path.join(directory, "vars.yaml")
        self.admin = os.path.join(directory, "admin.key")
        self.admin_pub = None

    def tool(self, *cmd, stdin=None):
        return checked(list(cmd), stdin=stdin, cwd=self.dir, timeout=self.timeout)

    def make_admin(self):
        """varseal keygen for the admin; returns its recipient."""
        self.tool(VARSEAL, "keygen", "-o", self.admin)
        self.admin_pub = self.tool(VARSEAL, "pubkey", self.admin).stdout.decode().strip()
        return self.admin_pub

    def write_spec(self, text, mode=0o644):
        """The spec, with @ADMIN@ replaced by the admin's recipient."""
        return write(self.spec, text.replace("@ADMIN@", self.admin_pub), mode)

    def machine_key(self, machine, path):
        """varseal machine keygen, then the machine's identity into path (0600)."""
        self.tool(VARSEAL, "machine", "keygen", "-f", self.spec, machine)
        key = self.tool(VARSEAL, "machine", "key", "-f", self.spec, "-i", self.admin,
                        machine).stdout
        return write(path, key, 0o600, exclusive=True)


# ---- temporary unprivileged users -----------------------------------------------------

def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def add_group(name):
    checked(["groupadd", name], timeout=30)


def add_user(name, *options):
    """useradd without a home and with no login shell, plus options (-U, -N,
    -g GROUP...).  Other tests may hold the lock on /etc/passwd for a
    moment: retried for ten seconds."""
    for _ in range(20):
        p = run(["useradd", "-M", "-s", "/usr/sbin/nologin"] + list(options) + [name],
                timeout=30)
        if p.returncode == 0 or user_exists(name):
            return
        time.sleep(0.5)
    raise AssertionError(describe(p))


def remove_users(*names, groups=()):
    """Removes the users and groups that exist, and a group of a user's own
    name (USERGROUPS_ENAB may leave one); quiet, so cleanups may run twice."""
    for name in names:
        if user_exists(name):
            subprocess.run(["userdel", name], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    for name in tuple(groups) + names:
        if group_exists(name):
            subprocess.run(["groupdel", name], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


def as_user(user, *cmd, **kw):
    """Runs cmd as user through runuser; returns the CompletedProcess."""
    return run(["runuser", "-u", user, "--"] + list(cmd), **kw)


# ---- per-test temporary directories and payloads --------------------------------------

_payloads = {}


def payload(size):
    """Random bytes of the given size, the same within one run."""
    if size not in _payloads:
        _payloads[size] = os.urandom(size)
    return _payloads[size]


def temp_dir(case, prefix, parent=None):
    """A temporary directory removed when the test case ends; its path."""
    tmp = tempfile.TemporaryDirectory(prefix=prefix, dir=parent)
    case.addCleanup(tmp.cleanup)
    return tmp.name


class TempDirCase(unittest.TestCase):
    """A fresh temporary directory per test (self.dir, named PREFIX...), and
    path(name): a new numbered name in it."""

    PREFIX = "vtest-"

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix=self.PREFIX)
        self.dir = self._tmp.name
        self._n = 0

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        self._n += 1
        return os.path.join(self.dir, "%03d-%s" % (self._n, name))
