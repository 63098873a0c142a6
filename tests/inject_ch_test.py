#!/usr/bin/env python3
"""varinject against a cloud-hypervisor stand-in (tests/ch/cloud-hypervisor).

cloud-hypervisor cannot run here (no KVM, not packaged), so its two modes
are checked against a stand-in that reads its command line with the real
option grammar (tests/ch/option_parser.py) and serves its HTTP API on the
UNIX socket, recording everything it received (see its docstring).

One store is built for the whole module with vargen and varseal: the seed's
three secrets plus awkward values planted with `varseal set` (a comma, a
double quote, brackets, newlines, a trailing space, a NUL byte, bytes that
are not UTF-8, 4 KiB of random bytes, an empty value, non-ASCII UTF-8).

   0. The stand-in on its own: its API (validation as serde's
      deny_unknown_fields, 4 MiB bodies, keep-alive, states), its command
      line (clap's refusals, --platform read by the option grammar, a
      payload booting from the command line), signals.
   1. API mode: the OEM strings that arrive in vm.create decode to exactly
      the intended credentials; the rest of the VmConfig arrives unchanged
      (an existing serial number and OEM string kept, first); no secret in
      any /proc/*/cmdline or environ while the VM runs; the private
      directory is 0700 with 0400 files; SIGTERM makes varinject send
      vm.shutdown first and exit with the hypervisor's status; the
      directory is gone afterwards.  Also: exit status passed through,
      vm.boot failing, a slow socket, --api-timeout, a VMM that stays up
      after vm.shutdown, a payload on the hypervisor's command line, SIGINT,
      sd_notify READY=1 / STOPPING=1, a VmConfig with JSON escapes and
      Unicode line separators passed through unchanged, the spec's
      name styles (seed, verbatim).
   2. argv mode: the `--platform oem_strings=[...]` argument, read back with
      cloud-hypervisor's grammar, gives exactly the intended credentials
      (awkward values as .binary); one warning about the process table; a
      --platform the user already passes.
   3. The seed's naive encoding of the same values reads back wrong.
   4. Limits refused before launch (the stand-in never starts): 256 OEM
      strings, an empty one, more than 60 KiB, a credential over 1 MiB, an
      invalid name, a private directory on a persistent file system.
   5. --from-credentials-dir (DIR, --credential, $CREDENTIALS_DIRECTORY).
   6. --dry-run shows `<secret: N bytes>` and never a value; launches nothing.

Run as `python3 tests/inject_ch_test.py` (about 20 s); the binaries come
from VARINJECT, VARGEN and VARSEAL (defaults under build/ of this checkout); the
private directories go under /dev/shm (a RAM file system).  Without the
binaries only parts 0 and 3 run.  Standard library only.
"""
import base64
import functools
import http.client
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "ch"))
import option_parser  # noqa: E402
sys.path.insert(0, HERE)
import testkit  # noqa: E402
from testkit import VARGEN, VARINJECT, VARSEAL, write  # noqa: E402

STANDIN = os.path.join(HERE, "ch", "cloud-hypervisor")

TIMEOUT = 30        # seconds, for any one process that should end by itself
TEXT = "io.systemd.credential:"
BINARY = "io.systemd.credential.binary:"

SPEC = """\
admins:
  admin: @ADMIN@
machines:
  test-vm:
    generators: [test-vm-secrets, awkward]
    credentials:
      HOST-API-KEY: test-vm-secrets/api-key
      HOST-DB-PASSWORD: test-vm-secrets/db-password
      HOST-JWT-SECRET: test-vm-secrets/jwt-secret
@AWKWARD_MAP@
generators:
  test-vm-secrets:
    files:
      api-key: {kind: random, length: 32}
      db-password: {kind: password, length: 24}
      jwt-secret: {kind: random, length: 64}
  awkward:
    files:
@AWKWARD_FILES@
    script: |
      for f in @AWKWARD_LIST@; do printf placeholder > "$out/$f"; done
"""

# Guest name -> (file in the `awkward` generator, value).
AWKWARD = {
    "AWK-COMMA": ("comma", b"comma,separated=value"),
    "AWK-QUOTE": ("quote", b'say "hi there'),
    "AWK-BRACKETS": ("brackets", b"[x]"),
    "AWK-NEWLINE": ("newline", b"first line\nsecond line\n"),
    "AWK-TRAILING-SPACE": ("trailing-space", b"trailing space "),
    "AWK-NUL": ("nul", b"before\x00after-the-nul"),
    "AWK-NOT-UTF8": ("not-utf8", b"caf\xe9 \xff\xfe not utf-8"),
    "AWK-RANDOM": ("random", os.urandom(4096)),
    "AWK-EMPTY": ("empty", b""),
    "AWK-UTF8": ("utf8", "grüße, ünïcödé ✓".encode()),
}


# ---- helpers -------------------------------------------------------------------

run = functools.partial(testkit.run, timeout=TIMEOUT)
describe = functools.partial(testkit.describe, keep=3000)


def read_record(path):
    """The stand-in's record, or None while it does not exist."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def standin_alive(pid, record):
    """True while pid is the stand-in writing record (not a reused pid)."""
    if not alive(pid):
        return False
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return False
    return b"CH_STANDIN_RECORD=" + os.fsencode(record) in env


def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def decode_oem(strings):
    """OEM strings -> ({name: value bytes}, {name: 'text'|'binary'}, [others]).
    Decodes as systemd does: split at the first '=', .binary is base64."""
    creds, forms, others = {}, {}, []
    for s in strings:
        if s.startswith(BINARY):
            name, eq, b64 = s[len(BINARY):].partition("=")
            if not eq:
                raise AssertionError("no '=' in %r" % s[:80])
            if len(b64) % 4:
                raise AssertionError("base64 of %s has length %d" % (name, len(b64)))
            value, form = base64.b64decode(b64, validate=True), "binary"
        elif s.startswith(TEXT):
            name, eq, text = s[len(TEXT):].partition("=")
            if not eq:
                raise AssertionError("no '=' in %r" % s[:80])
            value, form = text.encode("utf-8", "surrogateescape"), "text"
        else:
            others.append(s)
            continue
        if name in creds:
            raise AssertionError("credential %s given twice" % name)
        creds[name], forms[name] = value, form
    return creds, forms, others


def argv_safe(value):
    """The values that the option grammar reads back unchanged (docs)."""
    return all(0x21 <= b <= 0x7e and b not in b',"[]' for b in value)


def proc_leaks(secrets):
    """(pid, file, name) for every secret found in any /proc/*/cmdline or
    /proc/*/environ, raw or base64-encoded."""
    needles = []
    for name, v in secrets.items():
        if len(v) >= 8:
            needles.append((name, v))
            needles.append((name + " (base64)", base64.b64encode(v)))
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for leaf in ("cmdline", "environ"):
            try:
                with open("/proc/%s/%s" % (pid, leaf), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for name, n in needles:
                if n in data:
                    found.append((int(pid), leaf, name))
    return found


# ---- the store, built once ---------------------------------------------------------

STORE = {}


def missing_tools():
    return testkit.not_executable(VARINJECT, VARGEN, VARSEAL)


def setUpModule():
    if missing_tools():
        return          # the stand-in's own tests still run; the rest skip
    tmp = tempfile.mkdtemp(prefix="inject_ch_test.")
    STORE["dir"] = tmp
    store = testkit.TempStore(tmp, timeout=TIMEOUT)
    spec, admin = store.spec, store.admin

    def tool(*cmd, stdin=None):
        return store.tool(*cmd, stdin=stdin).stdout

    store.make_admin()
    text = (SPEC
            .replace("@AWKWARD_MAP@", "\n".join("      %s: awkward/%s" % (n, f)
                                                for n, (f, _) in AWKWARD.items()))
            .replace("@AWKWARD_FILES@", "\n".join("      %s: {}" % f
                                                  for f, _ in AWKWARD.values()))
            .replace("@AWKWARD_LIST@", " ".join(f for f, _ in AWKWARD.values())))
    store.write_spec(text, 0o644)
    machine_key = store.machine_key("test-vm", os.path.join(tmp, "machine.key"))
    tool(VARGEN, "generate")
    for name, (f, value) in AWKWARD.items():
        # An empty value is refused unless asked for (issue 12).
        tool(VARSEAL, "set", *(["--allow-empty"] if not value else []), "test-vm",
             "awkward/" + f, stdin=value)
    expected = {n: v for n, (_, v) in AWKWARD.items()}
    for name, f in (("HOST-API-KEY", "api-key"), ("HOST-DB-PASSWORD", "db-password"),
                    ("HOST-JWT-SECRET", "jwt-secret")):
        expected[name] = tool(VARSEAL, "get", "test-vm", "test-vm-secrets/" + f, "-i", admin)
    for name, (f, value) in AWKWARD.items():
        got = tool(VARSEAL, "get", "test-vm", "awkward/" + f, "-i", admin)
        if got != value:
            raise RuntimeError("varseal set/get changed %s: %r" % (name, got[:40]))
    STORE.update(spec=spec, admin=admin, machine_key=machine_key, expected=expected)


def tearDownModule():
    if "dir" in STORE:
        shutil.rmtree(STORE["dir"], ignore_errors=True)


class InjectCase(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if missing_tools():
            raise unittest.SkipTest("not executable: %s" % ", ".join(missing_tools()))

    def setUp(self):
        self.dir = testkit.temp_dir(self, "inject_ch_test.")
        # The private directory must be on a RAM file system.
        self.rundir = testkit.temp_dir(self, "inject_ch_test.", "/dev/shm")
        self.record = os.path.join(self.dir, "record.json")
        self.expected = STORE["expected"]
        self.procs = []
        self.addCleanup(self.reap)

    def reap(self):
        """Ends what this test started, by pid only."""
        rec = read_record(self.record)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if rec and standin_alive(rec["pid"], self.record):
            try:
                os.kill(rec["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- running varinject

    def env(self, **extra):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("CH_STANDIN_") or k == "CREDENTIALS_DIRECTORY":
                del env[k]
        env.update(CH_STANDIN_RECORD=self.record, CH_STANDIN_QUIET="1")
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def store_args(self):
        return ["-f", STORE["spec"], "--machine", "test-vm", "-i", STORE["machine_key"]]

    def vm_config(self, **over):
        cfg = {
            "cpus": {"boot_vcpus": 1, "max_vcpus": 1},
            "memory": {"size": 268435456},
            "payload": {"kernel": "/boot/vmlinuz", "cmdline": "console=ttyS0 root=/dev/vda"},
            "disks": [{"path": "/var/lib/vm/root.img", "readonly": False}],
            "serial": {"mode": "Tty"},
            "console": {"mode": "Off"},
            "platform": {"serial_number": "SN-1234",
                         "oem_strings": ["io.example.cluster=blue"]},
        }
        cfg.update(over)
        path = write(os.path.join(self.dir, "cfg.json"), json.dumps(cfg, indent=1), 0o644)
        return path, cfg

    def cmd(self, options, hv_args=()):
        return ([VARINJECT] + list(options) + ["--credentials-dir", self.rundir, "--",
                                               STANDIN] + list(hv_args))

    def start(self, options, hv_args=(), **env):
        p = subprocess.Popen(self.cmd(options, hv_args), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.env(**env))
        self.procs.append(p)
        return p

    def finish(self, p, timeout=TIMEOUT):
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            self.fail("varinject did not end within %ss\n%s" % (timeout, describe(p, out, err)))
        self.assert_no_secret_in(out + err, "varinject's output")
        return out, err

    def launch(self, options, hv_args=(), timeout=TIMEOUT, **env):
        """Runs varinject to its end; (process, stdout, stderr)."""
        p = self.start(options, hv_args, **env)
        out, err = self.finish(p, timeout)
        return p, out, err

    def wait_running(self, p):
        def running():
            rec = read_record(self.record)
            if p.poll() is not None:
                out, err = p.communicate()
                self.fail("varinject ended early\n%s\nrecord: %s" % (describe(p, out, err), rec))
            if not rec or rec["state"] != "Running":
                return None
            # The stand-in records the state when it handles vm.boot and
            # the request itself once it has answered: wait for both.
            if rec["api_socket"] and not any(r["path"] == "/api/v1/vm.boot"
                                             for r in rec["requests"]):
                return None
            return rec
        return wait_until(running, 15, "the VM to run")

    # -- assertions

    def assert_no_secret_in(self, data, where):
        for name, v in self.expected.items():
            if len(v) >= 8:
                self.assertNotIn(v, data, "%s's value appears in %s" % (name, where))
                self.assertNotIn(base64.b64encode(v), data,
                                 "%s's value (base64) appears in %s" % (name, where))

    def assert_credentials(self, strings, expected=None):
        creds, forms, others = decode_oem(strings)
        expected = self.expected if expected is None else expected
        self.assertEqual(sorted(creds), sorted(expected))
        for name in expected:
            self.assertEqual(creds[name], expected[name],
                             "%s arrived as %r" % (name, creds[name][:60]))
        return forms, others

    def assert_refused(self, p, out, err, pattern=None):
        """Non-zero, one error line, and the hypervisor never started."""
        self.assertNotEqual(p.returncode, 0, describe(p, out, err))
        lines = err.decode(errors="replace").splitlines()
        self.assertEqual(len(lines), 1, "expected one line on stderr: %s" % describe(p, out, err))
        self.assertRegex(lines[0], r"^varinject: error: ")
        if pattern:
            self.assertRegex(lines[0], pattern)
        self.assertFalse(os.path.exists(self.record),
                         "the hypervisor was started: %s" % read_record(self.record))
        self.assertEqual(os.listdir(self.rundir), [], "left in the runtime directory")
        return lines[0]

    def assert_cleaned(self, rec):
        self.assertEqual(os.listdir(self.rundir), [], "left in the runtime directory")
        if rec:
            self.assertFalse(standin_alive(rec["pid"], self.record), "the hypervisor still runs")

    def private_dir(self, rec):
        sock = rec["api_socket"]["path"]
        d = os.path.dirname(sock)
        self.assertEqual(os.path.dirname(d), os.path.realpath(self.rundir),
                         "the socket %s is not in a directory under --credentials-dir" % sock)
        return d

    def requests(self, rec):
        return [(r["method"], r["path"].split("?")[0]) for r in rec["requests"]]

    def cred_dir(self, files):
        d = os.path.join(self.dir, "creds")
        os.mkdir(d, 0o700)
        for name, value in files.items():
            write(os.path.join(d, name), value, 0o400)
        return d


# ---- 0. the stand-in on its own ----------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class T0StandIn(unittest.TestCase):
    """The stand-in follows cloud-hypervisor's documented behaviour."""

    def setUp(self):
        self.dir = testkit.temp_dir(self, "inject_ch_test.")
        self.record = os.path.join(self.dir, "record.json")
        self.sock = os.path.join(self.dir, "api.sock")

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CH_STANDIN_")}
        env.update(CH_STANDIN_RECORD=self.record, CH_STANDIN_QUIET="1")
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def start(self, *args, **env):
        p = subprocess.Popen([STANDIN] + list(args), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env(**env))

        def stop():
            if p.poll() is None:
                p.kill()
            p.communicate()
        self.addCleanup(stop)
        return p

    def api(self, **env):
        p = self.start("--api-socket", "path=" + self.sock, **env)

        # The socket file appears at bind(), connections are taken only
        # after listen(): wait until one is.
        def accepting():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.sock)
                return True
            except OSError:
                return False
            finally:
                s.close()
        wait_until(accepting, 10, "the API socket")
        return p

    def call(self, method, path, body=None, conn=None):
        c = conn or UnixHTTPConnection(self.sock)
        headers = {}
        if body is not None:
            if not isinstance(body, bytes):
                body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        c.request(method, "/api/v1/" + path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, (json.loads(data) if data else None)

    def test_api(self):
        p = self.api(CH_STANDIN_EXIT_STATUS=4)
        status, ping = self.call("GET", "vmm.ping")
        self.assertEqual(status, 200)
        self.assertEqual(ping["pid"], p.pid)
        self.assertEqual(self.call("PUT", "vm.boot")[0], 404)
        good = {"payload": {"kernel": "/x"}, "platform": {"serial_number": "s",
                                                          "oem_strings": ["a", "b c"]}}
        for bad in ({"payload": {"kernel": "/x"}, "bogus": 1},
                    {"payload": {"kernel": "/x"}, "platform": {"bogus": 1}},
                    {"payload": {"kernel": "/x", "bogus": 1}},
                    {"payload": {"kernel": "/x"}, "platform": {"oem_strings": "a"}},
                    {"payload": {"kernel": "/x"}, "platform": {"oem_strings": [1]}},
                    {"cpus": {}},
                    {"payload": {}},
                    b'{"payload": {"kernel": "/x"}, "payload": {"kernel": "/y"}}',
                    b'{"payload": {"kernel": "/x\\ud800"}}',
                    b'{"payload": {"kernel": "\xff"}}',
                    b'{"payload": {"kernel": "/x"}} trailing'):
            with self.subTest(bad=bad):
                self.assertEqual(self.call("PUT", "vm.create", bad)[0], 400)
        self.assertEqual(self.call("PUT", "vm.create", good)[0], 204)
        self.assertEqual(self.call("PUT", "vm.create", good)[0], 500)
        status, info = self.call("GET", "vm.info")
        self.assertEqual((status, info["config"]), (200, good))
        # Keep-alive: two requests on one connection.
        c = UnixHTTPConnection(self.sock)
        self.assertEqual(self.call("PUT", "vm.boot", conn=c)[0], 204)
        self.assertEqual(self.call("GET", "vm.info", conn=c)[1]["state"], "Running")
        c.close()
        self.assertEqual(self.call("PUT", "vm.shutdown")[0], 204)
        p.communicate(timeout=10)
        self.assertEqual(p.returncode, 4)
        rec = read_record(self.record)
        self.assertEqual(rec["oem_strings"], ["a", "b c"])
        self.assertEqual(rec["exit"], {"status": 4})
        self.assertEqual([r["path"] for r in rec["requests"]][-3:],
                         ["/api/v1/vm.boot", "/api/v1/vm.info", "/api/v1/vm.shutdown"])
        self.assertTrue(os.path.exists(self.sock + ".lock"))

    def test_body_limit_and_chunked(self):
        self.api()
        # Over 4 MiB: refused from the header on.
        c = UnixHTTPConnection(self.sock)
        c.putrequest("PUT", "/api/v1/vm.create")
        c.putheader("Content-Length", str((4 << 20) + 1))
        c.endheaders()
        self.assertEqual(c.getresponse().status, 400)
        c.close()
        # 4 MiB exactly is read (and then judged on its content).
        body = b'{"payload": {"kernel": "/x"}, "cpus": "' + b"x" * ((4 << 20) - 41) + b'"}'
        self.assertEqual(len(body), 4 << 20)
        self.assertEqual(self.call("PUT", "vm.create", body)[0], 204)
        c = UnixHTTPConnection(self.sock)
        c.putrequest("PUT", "/api/v1/vm.create")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        c.send(b"2\r\n{}\r\n0\r\n\r\n")
        self.assertEqual(c.getresponse().status, 400)
        c.close()

    def test_vmm_stays_after_vm_shutdown(self):
        p = self.api(CH_STANDIN_VMM_STAYS=1)
        self.assertEqual(self.call("PUT", "vm.create", {"payload": {"kernel": "/x"}})[0], 204)
        self.assertEqual(self.call("PUT", "vm.boot")[0], 204)
        self.assertEqual(self.call("PUT", "vm.shutdown")[0], 204)
        time.sleep(0.5)
        self.assertIsNone(p.poll(), "exited after vm.shutdown")
        self.assertEqual(self.call("PUT", "vmm.shutdown")[0], 204)
        p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0)

    def test_command_line(self):
        # A payload on the command line: created and booted from it.
        p = self.start("--kernel", "/x", "--platform",
                       'serial_number=s1,oem_strings=[a, b,"c,d",,e=f]', "-vv",
                       "--api-socket", "path=" + self.sock)
        wait_until(lambda: (read_record(self.record) or {}).get("state") == "Running", 10,
                   "boot")
        rec = read_record(self.record)
        self.assertEqual(rec["cli_oem_strings"], ["a", " b", '"c,d"', "", "e=f"])
        self.assertEqual(rec["cli_platform"]["serial_number"], "s1")
        self.assertEqual(rec["smbios_problems"], ["oem_strings[3] is empty: it ends the string set"])
        self.assertEqual(self.call("PUT", "vm.create", {"payload": {"kernel": "/y"}})[0], 500)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=10)
        self.assertEqual(p.returncode, -signal.SIGTERM)
        self.assertEqual(read_record(self.record)["exit"], {"signal": 15})
        # What clap refuses (2) and what the platform parser refuses (1).
        for args, code in ((["--kernel", "/x", "--platform", "a=1", "--platform", "b=2"], 2),
                           (["--kernel", "/x", "--bogus"], 2),
                           (["--kernel"], 2),
                           ([os.fsdecode(b"--kernel=\xff")], 2),
                           (["--kernel", "/x", "--platform", "oem_strings=[a,[x]]"], 1),
                           (["--kernel", "/x", "--platform", "bogus=1"], 1)):
            with self.subTest(args=args):
                q = run([STANDIN] + args, env=self.env())
                self.assertEqual(q.returncode, code, describe(q))
        # Without a payload VM options are ignored, as by the real one.
        q = self.start("--cpus", "boot=1", "--api-socket", "path=" + self.sock + "2")
        wait_until(lambda: os.path.exists(self.sock + "2"), 10, "the socket")
        self.assertEqual(read_record(self.record)["ignored_vm_options"], ["--cpus"])
        self.assertEqual(read_record(self.record)["state"], "none")
        q.kill()


# ---- 1. API mode ------------------------------------------------------------------

class T1ApiMode(InjectCase):

    def test_api_mode_end_to_end(self):
        cfg_path, cfg = self.vm_config()
        log = os.path.join(self.dir, "ch.log")
        p = self.start(self.store_args() + ["--oem-string", "io.example.env=test",
                                            "--vm-config", cfg_path],
                       ["--log-file", log], CH_STANDIN_EXIT_STATUS=0)
        rec = self.wait_running(p)

        # While it runs: no secret in any process's command line or environment.
        self.assertEqual(proc_leaks(self.expected), [])

        # The private directory: 0700, varinject's files 0400, under --credentials-dir.
        priv = self.private_dir(rec)
        st = os.lstat(priv)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700, oct(st.st_mode))
        self.assertEqual(st.st_uid, os.getuid())
        for name in os.listdir(priv):
            path = os.path.join(priv, name)
            st = os.lstat(path)
            if stat.S_ISSOCK(st.st_mode) or name == "api.sock.lock":
                continue        # the hypervisor's own socket and its lock file
            self.assertTrue(stat.S_ISREG(st.st_mode), "%s is not a regular file" % path)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o400, "%s is %o" % (path, st.st_mode))

        # varinject is the hypervisor's parent.
        self.assertEqual(rec["ppid"], p.pid)

        # The hypervisor's command line: the given arguments, then the socket.
        argv = rec["argv"][1:]
        self.assertEqual(argv[:2], ["--log-file", log])
        self.assertEqual(rec["options"]["--api-socket"], ["path=" + rec["api_socket"]["path"]])
        self.assertIsNone(rec["cli_platform"])

        # vm.create then vm.boot, both accepted.
        reqs = [r for r in rec["requests"] if r["path"] != "/api/v1/vmm.ping"]
        self.assertEqual([(r["method"], r["path"], r["status"]) for r in reqs],
                         [("PUT", "/api/v1/vm.create", 204), ("PUT", "/api/v1/vm.boot", 204)])

        # The credentials, exactly; the file's OEM string first, then --oem-string.
        oem = rec["oem_strings"]
        forms, others = self.assert_credentials(oem)
        self.assertEqual(oem[:2], ["io.example.cluster=blue", "io.example.env=test"])
        self.assertEqual(others, ["io.example.cluster=blue", "io.example.env=test"])
        self.assertEqual(rec["smbios_problems"], [])
        for name, v in self.expected.items():
            text_ok = b"\0" not in v
            try:
                v.decode("utf-8")
            except UnicodeDecodeError:
                text_ok = False
            self.assertEqual(forms[name], "text" if text_ok else "binary",
                             "%s sent as %s" % (name, forms[name]))

        # The rest of the VM config arrives unchanged.
        got = json.loads(json.dumps(rec["vm_config"]))
        got_platform = dict(got.pop("platform"))
        want = json.loads(json.dumps(cfg))
        want_platform = want.pop("platform")
        self.assertEqual(got, want)
        self.assertEqual(got_platform["serial_number"], "SN-1234")
        got_platform.pop("oem_strings")
        want_platform.pop("oem_strings")
        self.assertEqual(got_platform, want_platform)

        # SIGTERM: a graceful vm.shutdown first, then the hypervisor's status.
        p.send_signal(signal.SIGTERM)
        self.finish(p)
        rec = read_record(self.record)
        self.assertIn(("PUT", "/api/v1/vm.shutdown"), self.requests(rec))
        self.assertEqual(rec["exit"], {"status": 0},
                         "the hypervisor was not shut down gracefully: %s" % rec["events"])
        self.assertEqual(p.returncode, 0)
        self.assertFalse(os.path.exists(priv), "the private directory is left")
        self.assert_cleaned(rec)

    def test_exit_status_passed_through(self):
        cfg_path, _ = self.vm_config()
        p, out, err = self.launch(self.store_args() + ["--vm-config", cfg_path],
                                  CH_STANDIN_GUEST_EXIT_AFTER=0.3, CH_STANDIN_EXIT_STATUS=3)
        rec = read_record(self.record)
        self.assertEqual(rec["exit"], {"status": 3}, describe(p, out, err))
        self.assertEqual(p.returncode, 3, describe(p, out, err))
        self.assert_credentials(rec["oem_strings"])
        self.assert_cleaned(rec)

    def test_signal_death_reported_as_128_plus_signal(self):
        cfg_path, _ = self.vm_config()
        p = self.start(self.store_args() + ["--vm-config", cfg_path])
        rec = self.wait_running(p)
        os.kill(rec["pid"], signal.SIGTERM)     # the hypervisor dies on its own
        self.finish(p)
        self.assertEqual(read_record(self.record)["exit"], {"signal": 15})
        self.assertEqual(p.returncode, 128 + 15)
        self.assert_cleaned(rec)

    def test_boot_failure(self):
        cfg_path, _ = self.vm_config()
        p, out, err = self.launch(self.store_args() + ["--vm-config", cfg_path],
                                  CH_STANDIN_BOOT_FAIL=1)
        rec = read_record(self.record)
        self.assertIn(("PUT", "/api/v1/vm.boot"), self.requests(rec))
        self.assertNotEqual(p.returncode, 0, describe(p, out, err))
        self.assertTrue(err.strip(), "no error message")
        self.assert_cleaned(rec)

    def test_slow_socket_is_waited_for(self):
        cfg_path, _ = self.vm_config()
        p, out, err = self.launch(self.store_args() + ["--vm-config", cfg_path],
                                  CH_STANDIN_SLOW_SOCKET=1.5, CH_STANDIN_GUEST_EXIT_AFTER=0.2)
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        rec = read_record(self.record)
        self.assert_credentials(rec["oem_strings"])
        self.assert_cleaned(rec)

    def test_api_timeout(self):
        # The timeout must outlast the stand-in's own start (a Python
        # interpreter, which took over 1 s on a CI machine busy with QEMU
        # guests: it had written no record when varinject gave up), and the
        # socket must come far later than the timeout, so that only a kept
        # timeout ends the run this early.
        cfg_path, _ = self.vm_config()
        t0 = time.monotonic()
        p, out, err = self.launch(self.store_args() + ["--vm-config", cfg_path,
                                                       "--api-timeout", "4"],
                                  CH_STANDIN_SLOW_SOCKET=60)
        self.assertLess(time.monotonic() - t0, 20, "--api-timeout 4 was not kept")
        self.assertNotEqual(p.returncode, 0, describe(p, out, err))
        self.assertIn(b"--api-timeout", err)
        rec = read_record(self.record)
        self.assertIsNotNone(rec, "the stand-in never started: " + describe(p, out, err))
        self.assertEqual(rec["requests"], [])
        self.assert_cleaned(rec)

    def test_vmm_that_stays_up_after_vm_shutdown(self):
        # The real binary keeps the VMM running after vm.shutdown.
        cfg_path, _ = self.vm_config()
        p = self.start(self.store_args() + ["--vm-config", cfg_path, "--stop-timeout", "2"],
                       CH_STANDIN_VMM_STAYS=1)
        rec = self.wait_running(p)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        self.finish(p, timeout=15)
        self.assertLess(time.monotonic() - t0, 8, "--stop-timeout 2 was not kept")
        rec = read_record(self.record)
        reqs = [r for r in self.requests(rec) if r[1] != "/api/v1/vmm.ping"]
        self.assertEqual(reqs[:3], [("PUT", "/api/v1/vm.create"), ("PUT", "/api/v1/vm.boot"),
                                    ("PUT", "/api/v1/vm.shutdown")])
        ex = rec["exit"]
        self.assertIsNotNone(ex, "the hypervisor was left running")
        want = ex["status"] if "status" in ex else 128 + ex["signal"]
        self.assertEqual(p.returncode, want)
        self.assert_cleaned(rec)

    def test_payload_on_the_hypervisor_command_line(self):
        # With --kernel on its command line cloud-hypervisor creates and boots
        # the VM itself, without the credentials; vm.create then fails.  The
        # launcher must not leave that VM running and report success.
        # (Moving the option into the VmConfig would do too: then the VM that
        # ran must have had the credentials.)
        cfg_path, _ = self.vm_config()
        p, out, err = self.launch(self.store_args() + ["--vm-config", cfg_path],
                                  ["--kernel", "/x"], timeout=20,
                                  CH_STANDIN_GUEST_EXIT_AFTER=0.5)
        rec = read_record(self.record)
        if p.returncode == 0:
            self.assertIsNotNone(rec, describe(p, out, err))
            self.assert_credentials(rec["oem_strings"] or [])
        else:
            self.assertTrue(err.strip(), "no error message")
        self.assert_cleaned(rec)

    def test_vm_config_through_a_symlink(self):
        # The user named this path: a symlink to the VmConfig is followed
        # (only files inside the store are read without following links).
        cfg_path, cfg = self.vm_config()
        link = os.path.join(self.dir, "linked.json")
        os.symlink(cfg_path, link)
        p, out, err = self.launch(self.store_args() + ["--vm-config", link],
                                  CH_STANDIN_GUEST_EXIT_AFTER=0.2)
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        got = read_record(self.record)["vm_config"]
        got["platform"].pop("oem_strings")
        cfg["platform"].pop("oem_strings")
        self.assertEqual(got, cfg)
        self.assert_cleaned(None)

    def check_vm_config_passes(self, raw, cfg):
        self.assertEqual(json.loads(raw), cfg)
        path = write(os.path.join(self.dir, "tricky.json"), raw, 0o644)
        p, out, err = self.launch(self.store_args() + ["--vm-config", path],
                                  CH_STANDIN_GUEST_EXIT_AFTER=0.2)
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        got = read_record(self.record)["vm_config"]
        oem = got["platform"].pop("oem_strings")
        self.assert_credentials(oem)
        self.assertEqual(got, cfg)
        self.assert_cleaned(None)

    def tricky_config(self, cmdline):
        return {
            "cpus": {"boot_vcpus": 2, "max_vcpus": 4, "topology": None, "features": {}},
            "memory": {"size": 1073741824, "hotplug_size": 18446744073709551615,
                       "shared": True},
            "payload": {"kernel": "/boot/vmlinuz", "cmdline": cmdline},
            "disks": [{"path": "/var/lib/vm/a b,c.img", "readonly": False,
                       "rate_limiter_config": None}],
            "rate_limit_groups": [], "landlock_rules": [],
            "platform": {"serial_number": "SN-\u00e9", "uuid": "1d0e4a3c"},
        }

    def test_vm_config_json_escapes(self):
        # Valid JSON as Python's json.dumps writes it: an emoji as a surrogate
        # pair escape, an escaped slash, the largest u64, nulls and empties.
        cfg = self.tricky_config('console=ttyS0 label="vm \U0001F600" /p\\q\ttab')
        raw = json.dumps(cfg).replace("/boot/vmlinuz", "\\/boot\\/vmlinuz")
        self.assertIn("\\ud83d\\ude00", raw)
        self.check_vm_config_passes(raw, cfg)

    def test_vm_config_unicode_line_separators(self):
        # Raw U+2028, U+2029 and U+0085 in a JSON string are ordinary characters;
        # the spaces around them must stay.
        cfg = self.tricky_config("a \u2028 b \u2029 c \u0085 d")
        raw = json.dumps(cfg, ensure_ascii=False)
        self.assertIn("\u2028", raw)
        self.check_vm_config_passes(raw, cfg)

    def test_sigint_also_shuts_down_gracefully(self):
        cfg_path, _ = self.vm_config()
        p = self.start(self.store_args() + ["--vm-config", cfg_path])
        self.wait_running(p)
        p.send_signal(signal.SIGINT)
        self.finish(p)
        rec = read_record(self.record)
        self.assertIn(("PUT", "/api/v1/vm.shutdown"), self.requests(rec))
        self.assertEqual(rec["exit"], {"status": 0}, rec["events"])
        self.assertEqual(p.returncode, 0)
        self.assert_cleaned(rec)

    def test_sd_notify(self):
        # READY=1 once the VM is booted, STOPPING=1 when asked to stop, and no
        # secret in any notification.
        path = os.path.join(self.dir, "notify.sock")
        sock = testkit.datagram_socket(path, 0.05)
        self.addCleanup(sock.close)
        msgs = []

        def drain():
            msgs.extend(testkit.recv_all(sock))
            return msgs

        cfg_path, _ = self.vm_config()
        p = self.start(self.store_args() + ["--vm-config", cfg_path], NOTIFY_SOCKET=path)
        self.wait_running(p)

        def ready():
            return any(b"READY=1" in m.split(b"\n") for m in drain())
        wait_until(ready, 10, "READY=1")
        rec = read_record(self.record)
        self.assertIn(("PUT", "/api/v1/vm.boot", 204),
                      [(r["method"], r["path"], r["status"]) for r in rec["requests"]])
        p.send_signal(signal.SIGTERM)
        self.finish(p)
        drain()
        self.assertTrue(any(b"STOPPING=1" in m.split(b"\n") for m in msgs), msgs)
        self.assert_no_secret_in(b"\0".join(msgs), "the notifications")

    def test_vm_config_refused_by_the_hypervisor(self):
        # An unknown field in --vm-config: cloud-hypervisor refuses it (400);
        # varinject must fail, and not boot.
        cfg_path, _ = self.vm_config(bogus_field=1)
        p, out, err = self.launch(self.store_args() + ["--vm-config", cfg_path])
        rec = read_record(self.record)
        self.assertNotEqual(p.returncode, 0, describe(p, out, err))
        if rec:
            self.assertNotIn(("PUT", "/api/v1/vm.boot"), self.requests(rec))
        self.assert_cleaned(rec)

    def test_vm_config_nul_byte_refused(self):
        # A NUL byte is never valid JSON. varinject's scanner once took it
        # as an escape character, a \u hex digit and part of a number
        # (strchr finds the terminator of its character set), and passed the
        # file on. Each must be refused before the hypervisor starts, in one
        # line naming the byte where the NUL is.
        base = json.dumps({"memory": {"size": 268435456},
                           "payload": {"kernel": "/boot/vmlinuz", "cmdline": "console=ttyS0"}})
        places = {
            "after a backslash": ('"console=ttyS0"', '"console=\\\x00ttyS0"'),
            "in a \\u escape": ('"console=ttyS0"', '"console=\\u00\x001ttyS0"'),
            "in a number": ("268435456", "268435456\x00"),
        }
        for where, (old, new) in places.items():
            with self.subTest(where):
                raw = base.replace(old, new).encode()
                self.assertEqual(raw.count(b"\0"), 1)
                path = write(os.path.join(self.dir, "nul.json"), raw, 0o644)
                p, out, err = self.launch(self.store_args() + ["--vm-config", path])
                self.assert_refused(p, out, err,
                                    r"not a VmConfig JSON object: .* at byte %d$" % raw.index(b"\0"))

    def test_vm_config_numbers_follow_json(self):
        # JSON numbers are -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?;
        # the scanner once took whatever strtod took (nan, +1, 01, 1., .5,
        # hex), and the hypervisor then refused the file with an error of
        # its own. Each is refused by varinject in one line; valid numbers
        # of every form still pass the scanner.
        def config(number):
            return ('{"memory": {"size": 268435456}, "x": %s, '
                    '"payload": {"kernel": "/boot/vmlinuz"}}' % number).encode()
        for bad in ("nan", "inf", "+1", "01", "-01", "1.", ".5", "1e", "1e+", "0x10",
                    "-", "1.5e3.2", "--1"):
            with self.subTest(bad=bad):
                raw = config(bad)
                path = write(os.path.join(self.dir, "num.json"), raw, 0o644)
                p, out, err = self.launch(self.store_args() + ["--vm-config", path])
                self.assert_refused(p, out, err,
                                    r"not a VmConfig JSON object: .* at byte \d+$")
        for good in ("0", "-0", "7", "-12", "0.5", "1.25e10", "1E-3", "6e+2", "-0.0e0",
                     "1" * 80):
            with self.subTest(good=good):
                path = write(os.path.join(self.dir, "num.json"), config(good), 0o644)
                p, out, err = self.launch(self.store_args() + ["--vm-config", path,
                                                               "--dry-run"])
                self.assertEqual(p.returncode, 0, describe(p, out, err))


class T1bNameStyles(InjectCase):
    FILES = {"HOST-API-KEY": "api-key", "HOST-DB-PASSWORD": "db-password",
             "HOST-JWT-SECRET": "jwt-secret"}

    def by_file(self):
        """file name -> value, from the spec's mapping."""
        out = {f: self.expected[n] for n, f in self.FILES.items()}
        out.update({f: v for f, v in AWKWARD.values()})
        return out

    def check(self, style, expected):
        cfg_path, _ = self.vm_config()
        p, out, err = self.launch(self.store_args() + ["--name-style", style,
                                                       "--vm-config", cfg_path],
                                  CH_STANDIN_GUEST_EXIT_AFTER=0.2)
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        self.assert_credentials(read_record(self.record)["oem_strings"], expected)

    def test_seed_style(self):
        self.check("seed", {"HOST-" + f.upper(): v for f, v in self.by_file().items()})

    def test_verbatim_style(self):
        self.check("verbatim", self.by_file())


# ---- 2. argv mode ----------------------------------------------------------------

class T2ArgvMode(InjectCase):

    def platform_arg(self, rec):
        argv = [os.fsencode(a) for a in rec["argv"][1:]]
        idx = [i for i, a in enumerate(argv) if a == b"--platform" or a.startswith(b"--platform=")]
        self.assertEqual(len(idx), 1, "expected one --platform: %r" % rec["argv"])
        a = argv[idx[0]]
        return a[len(b"--platform="):] if a.startswith(b"--platform=") else argv[idx[0] + 1]

    def test_argv_mode(self):
        p, out, err = self.launch(self.store_args() + ["--argv"],
                                  ["--kernel", "/x", "--cmdline", "console=ttyS0"],
                                  CH_STANDIN_GUEST_EXIT_AFTER=0.3)
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        rec = read_record(self.record)
        self.assertIsNone(rec["cli_platform_error"])
        arg = self.platform_arg(rec)
        # Read back exactly as cloud-hypervisor would.
        strings = option_parser.parse_platform_arg(arg)["oem_strings"]
        self.assertEqual(strings, rec["oem_strings"])
        forms, others = self.assert_credentials(strings)
        self.assertEqual(others, [])
        for name, v in self.expected.items():
            if not argv_safe(v):
                self.assertEqual(forms[name], "binary", "%s sent as text" % name)
        self.assertEqual(rec["smbios_problems"], [])
        # One warning about the process table.
        lines = [l for l in err.decode(errors="replace").splitlines()
                 if "process table" in l.lower()]
        self.assertEqual(len(lines), 1, describe(p, out, err))
        self.assert_cleaned(rec)

    def test_argv_mode_with_a_platform_already_given(self):
        # cloud-hypervisor refuses a second --platform: varinject must merge
        # into the user's, or refuse before launch.
        p, out, err = self.launch(self.store_args() + ["--argv"],
                                  ["--kernel", "/x", "--platform", "serial_number=SN-9"],
                                  CH_STANDIN_GUEST_EXIT_AFTER=0.3)
        rec = read_record(self.record)
        if rec is None:
            self.assertNotEqual(p.returncode, 0)
            self.assertTrue(err.strip())
            return
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        self.assertEqual(rec["exit"], {"status": 0}, rec["events"])
        self.assertEqual(rec["cli_platform"]["serial_number"], "SN-9")
        self.assert_credentials(rec["oem_strings"])


# ---- 3. the seed's naive encoding ------------------------------------------------

class T3NaiveEncoding(unittest.TestCase):
    """`--platform oem_strings=[io.systemd.credential:NAME=VALUE,...]` with no
    escaping, as the seed's runner built it, read back as cloud-hypervisor does."""

    def naive(self, creds):
        arg = b"oem_strings=[" + b",".join(
            TEXT.encode() + n.encode() + b"=" + v for n, v in creds.items()) + b"]"
        try:
            strings = option_parser.parse_platform_arg(arg)["oem_strings"]
        except option_parser.OptionParserError as e:
            return "refused: %s" % e
        try:
            return decode_oem(strings)[0]
        except (AssertionError, ValueError) as e:
            return "undecodable: %s" % e

    def test_each_awkward_value_breaks(self):
        for name, (_, v) in AWKWARD.items():
            if name == "AWK-EMPTY":
                continue
            with self.subTest(name=name):
                self.assertNotEqual(self.naive({name: v}), {name: v})

    def test_together_they_break(self):
        creds = {n: v for n, (_, v) in AWKWARD.items()}
        self.assertNotEqual(self.naive(creds), creds)

    def test_plain_values_survive(self):
        # The seed's own base64 secrets do survive: why the bug went unseen.
        creds = {"HOST-API-KEY": base64.b64encode(os.urandom(32)), "AWK-EMPTY": b""}
        self.assertEqual(self.naive(creds), creds)

    def test_specific_breakage(self):
        # A comma splits the string; a quote is unbalanced; brackets unbalance
        # the list; the trailing space and newline are trimmed; NUL cuts argv.
        self.assertEqual(self.naive({"A": b"x,y"}), {"A": b"x"})
        self.assertTrue(str(self.naive({"A": b'say "hi'})).startswith("refused"))
        self.assertTrue(str(self.naive({"A": b"[x]"})).startswith("refused"))
        self.assertEqual(self.naive({"A": b"trailing "}), {"A": b"trailing"})
        self.assertEqual(self.naive({"A": b"line\n"}), {"A": b"line"})
        self.assertTrue(str(self.naive({"A": b"a\0b"})).startswith("refused"))
        self.assertTrue(str(self.naive({"A": b"\xff"})).startswith("refused"))


# ---- 4. limits ------------------------------------------------------------------

class T4Limits(InjectCase):

    def from_dir(self, files, *more):
        return ["--from-credentials-dir=" + self.cred_dir(files)] + list(more)

    def vmc(self):
        return ["--vm-config", self.vm_config(platform={})[0]]

    def test_256_oem_strings(self):
        statics = []
        for i in range(256):
            statics += ["--oem-string", "io.example.s%d=v" % i]
        p, out, err = self.launch(self.from_dir({"host-api-key": "k" * 16}) + statics
                                  + self.vmc())
        self.assert_refused(p, out, err, r"25[56]")

    def test_255_oem_strings_accepted(self):
        statics = []
        for i in range(254):
            statics += ["--oem-string", "io.example.s%d=v" % i]
        p, out, err = self.launch(self.from_dir({"host-api-key": "k" * 16}) + statics
                                  + self.vmc(), CH_STANDIN_GUEST_EXIT_AFTER=0.2)
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        rec = read_record(self.record)
        self.assertEqual(len(rec["oem_strings"]), 255)
        self.assertEqual(rec["smbios_problems"], [])

    def test_empty_oem_string(self):
        p, out, err = self.launch(self.from_dir({"host-api-key": "k" * 16}, "--oem-string", "")
                                  + self.vmc())
        self.assert_refused(p, out, err, r"(?i)empty")

    def test_over_the_smbios_budget(self):
        files = {"host-part-%d" % i: "p" * 7168 for i in range(10)}   # 70 KiB
        p, out, err = self.launch(self.from_dir(files) + self.vmc())
        self.assert_refused(p, out, err, r"(?i)60 ?KiB|61440|SMBIOS")

    def test_credential_over_1_mib(self):
        files = {"host-big": b"b" * ((1 << 20) + 1)}
        p, out, err = self.launch(self.from_dir(files) + self.vmc())
        self.assert_refused(p, out, err, r"(?i)1 ?MiB|1048576")

    def test_invalid_name(self):
        files = {"host-api-key": "k" * 16, "bad:name": "v" * 16}
        p, out, err = self.launch(self.from_dir(files) + self.vmc())
        line = self.assert_refused(p, out, err)
        self.assertIn("BAD:NAME", line.upper())

    def test_persistent_private_directory_refused(self):
        persistent = os.path.join(self.dir, "persistent")
        os.mkdir(persistent, 0o700)
        if os.stat(persistent).st_dev == os.stat("/dev/shm").st_dev:
            self.skipTest("no persistent file system to try")
        cmd = ([VARINJECT] + self.store_args() + self.vmc()
               + ["--credentials-dir", persistent, "--", STANDIN])
        p = run(cmd, env=self.env())
        self.assert_refused(p, p.stdout, p.stderr)
        self.assertEqual(os.listdir(persistent), [])


# ---- 5. --from-credentials-dir --------------------------------------------------------

class T5FromCredentialsDir(InjectCase):
    FILES = {"host-api-key": b"api-key-value-0123456789",
             "host-db-password": b"db,password \"with\" [awkward] bytes \x00\xff",
             "host-jwt-secret": b"jwt-secret-value-abcdefghij"}

    def setUp(self):
        super().setUp()
        self.expected = {k.upper(): v for k, v in self.FILES.items()}
        self.creds = self.cred_dir(self.FILES)
        self.cfg = self.vm_config()[0]

    def test_every_file_seed_names(self):
        p, out, err = self.launch(["--from-credentials-dir=" + self.creds,
                                   "--vm-config", self.cfg], CH_STANDIN_GUEST_EXIT_AFTER=0.2)
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        rec = read_record(self.record)
        self.assert_credentials(rec["oem_strings"])
        self.assert_cleaned(rec)

    def test_credential_picks_a_subset(self):
        p, out, err = self.launch(["--from-credentials-dir=" + self.creds,
                                   "--credential", "host-api-key",
                                   "--credential", "host-db-password",
                                   "--vm-config", self.cfg], CH_STANDIN_GUEST_EXIT_AFTER=0.2)
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        rec = read_record(self.record)
        self.assert_credentials(rec["oem_strings"],
                                {"HOST-API-KEY": self.FILES["host-api-key"],
                                 "HOST-DB-PASSWORD": self.FILES["host-db-password"]})

    def test_credentials_directory_from_the_environment(self):
        p, out, err = self.launch(["--from-credentials-dir", "--vm-config", self.cfg],
                                  CH_STANDIN_GUEST_EXIT_AFTER=0.2,
                                  CREDENTIALS_DIRECTORY=self.creds)
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        rec = read_record(self.record)
        self.assert_credentials(rec["oem_strings"])


# ---- 6. --dry-run ---------------------------------------------------------------

class T6DryRun(InjectCase):

    def check(self, out, err):
        text = (out + err).decode(errors="replace")
        self.assert_no_secret_in(out + err, "the dry run's output")
        # Each value, and only the value, is replaced: the name stays readable,
        # N is the value's size (raw, or as encoded).
        for name, v in self.expected.items():
            m = re.search(r"%s=<secret: (\d+) bytes>" % re.escape(name), text)
            self.assertIsNotNone(m, "no %s=<secret: N bytes> in the output" % name)
            self.assertIn(int(m.group(1)), (len(v), len(base64.b64encode(v))), name)
        self.assertIn(STANDIN, text, "the command line is not shown")
        self.assertFalse(os.path.exists(self.record), "the hypervisor was started")
        self.assertEqual(os.listdir(self.rundir), [])
        return text

    def test_dry_run_api_mode(self):
        cfg_path, _ = self.vm_config()
        p, out, err = self.launch(self.store_args() + ["--vm-config", cfg_path, "--dry-run"])
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        text = self.check(out, err)
        self.assertIn("vm.create", text)
        self.assertIn("SN-1234", text, "the VM config is not shown")
        self.assertIn("io.example.cluster=blue", text)
        # Every credential's name shows, each with a placeholder.
        for name in self.expected:
            self.assertIn(name, text)
        self.assertGreaterEqual(text.count("<secret: "), len(self.expected))

    def test_dry_run_argv_mode(self):
        p, out, err = self.launch(self.store_args() + ["--argv", "--dry-run"], ["--kernel", "/x"])
        self.assertEqual(p.returncode, 0, describe(p, out, err))
        text = self.check(out, err)
        self.assertIn("--platform", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
