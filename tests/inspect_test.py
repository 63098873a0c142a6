#!/usr/bin/env python3
"""Looking inside sealed files without a key, and machine-readable state
(issue 11): `varseal inspect [--json] FILE...` and `vargen list --json`,
`vargen check --json`.

  V. every official test vector (../shared/testdata/cctv-age) whose header
     is well formed is inspected (exit 0) with the stanza types and counts
     its header has and the sizes its length implies; every vector with a
     malformed header is refused with one line (exit 1), the line decrypt
     gives for it;
  A. files the real `age` makes (-r, -R, -p; armored and not; 0 bytes,
     64 KiB, 64 KiB + 1 and around) give their exact payload size and
     chunk count, from a path, a regular standard input (at an offset) and
     a pipe;
  S. a store's secrets show who they are sealed to, by the spec's names
     (admin NAME, machine NAME), or the manifest's lines without a spec;
     a symlinked manifest is not followed;
  N. hostile names and stanza types stay one line of text and valid JSON;
  J. vargen list --json and check --json parse in several states of a
     store (sound, stale, orphans, machine keys, no store at all), with
     the documented keys and types, the same rows as the text, and check's
     exit status.

Every JSON document is parsed with Python's json module. The shapes are
documented in docs/varseal.md ("varseal inspect") and docs/store.md
("Machine-readable output"). Run as `python3 tests/inspect_test.py` with
VARSEAL and VARGEN set (tests/CMakeLists.txt: ctest -R inspect).
Standard library only.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import unittest
import zlib

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from ptyrun import run_pty  # noqa: E402
from testkit import SHARED_DIR, VARGEN, VARSEAL, describe, read, run, write  # noqa: E402
from vars_test import AGE, VarsCase  # noqa: E402

AGE_KEYGEN = shutil.which("age-keygen") or "/usr/bin/age-keygen"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
VECTORS = os.path.join(SHARED_DIR, "testdata", "cctv-age")

CHUNK = 65536
TAG = 16
NONCE = 16
INTRO = b"age-encryption.org/v1"

INSPECT_KEYS = {"file", "version", "armored", "postquantum", "stanza_count", "stanza_types",
                "sizes", "chunks", "store"}
SIZE_KEYS = {"file", "armor", "header", "overhead", "payload"}
STORE_KEYS = {"manifest", "spec", "recipients"}
ROW_KEYS = {"machine", "generator", "file", "secret", "kind", "name", "state", "reason"}
KINDS = {"secret", "value", "key", "machine", "generator", "leftover"}
STATES = {"ok", "missing", "stale", "wrong-recipients", "no-key", "corrupt", "incomplete",
          "hand-set", "orphan", "wrong-key"}
SOUND = {"ok", "hand-set"}
CLASSIC = {"X25519", "ssh-rsa", "ssh-ed25519", "p256tag", "piv-p256"}
POSTQUANTUM = {"mlkem768x25519", "scrypt", "mlkem768p256tag"}


# ---- what a file's bytes say, computed here independently of the tool ------------------

def dearmor(data):
    """The binary age file inside ASCII armor (whitespace around it and
    CRLF line ends allowed, as the format allows)."""
    lines = data.strip().replace(b"\r\n", b"\n").split(b"\n")
    assert lines[0] == b"-----BEGIN AGE ENCRYPTED FILE-----", lines[0]
    assert lines[-1] == b"-----END AGE ENCRYPTED FILE-----", lines[-1]
    return base64.b64decode(b"".join(lines[1:-1]), validate=True)


def is_armored(data):
    return data.lstrip().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")


def header_of(binary):
    """(stanza types in order, header length in bytes) of a binary age file
    whose header is well formed."""
    assert binary.startswith(INTRO + b"\n")
    types, pos = [], len(INTRO) + 1
    while True:
        end = binary.index(b"\n", pos)
        line = binary[pos:end]
        pos = end + 1
        if line.startswith(b"--- "):
            return types, pos
        if line.startswith(b"-> "):
            types.append(line.split(b" ")[1].decode())


def stream_sizes(after_header):
    """(payload bytes, chunks) for the bytes after the header, or None when
    no age payload has that length: a 16-byte nonce, then chunks of 64 KiB
    + 16, the last one shorter and empty only when it is the only one."""
    ct = after_header - NONCE
    if ct < TAG:
        return None
    chunks = (ct + CHUNK + TAG - 1) // (CHUNK + TAG)
    last = ct - (chunks - 1) * (CHUNK + TAG)
    if last < TAG or (last == TAG and chunks > 1):
        return None
    return ct - chunks * TAG, chunks


def postquantum(types):
    """age-inspect's verdict: "no" when any classic stanza is there, "yes"
    when only post-quantum ones (scrypt counts) are known, else "unknown"."""
    verdict = "unknown"
    for t in types:
        if t in CLASSIC:
            verdict = "no"
        elif t in POSTQUANTUM and verdict != "no":
            verdict = "yes"
    return verdict


def counted(types):
    """[{"type", "count"}] in order of first appearance."""
    out = []
    for t in types:
        for entry in out:
            if entry["type"] == t:
                entry["count"] += 1
                break
        else:
            out.append({"type": t, "count": 1})
    return out


def expected_report(data):
    """What inspect must say about a well-formed file's bytes (without the
    file name and store), or None when its size is impossible."""
    binary = dearmor(data) if is_armored(data) else data
    types, header = header_of(binary)
    sizes = stream_sizes(len(binary) - header)
    if sizes is None:
        return None
    payload, chunks = sizes
    return {
        "version": "age-encryption.org/v1",
        "armored": is_armored(data),
        "postquantum": postquantum(types),
        "stanza_count": len(types),
        "stanza_types": counted(types),
        "sizes": {"file": len(data), "armor": len(data) - len(binary), "header": header,
                  "overhead": len(binary) - header - payload, "payload": payload},
        "chunks": chunks,
    }


def read_vector(name):
    """(fields, age file bytes) of a CCTV vector: "key: value" lines (keys
    that repeat collect in a list), an empty line, the file (zlib'd when
    "compressed: zlib")."""
    data = read(os.path.join(VECTORS, name))
    head, _, body = data.partition(b"\n\n")
    fields = {}
    for line in head.decode().splitlines():
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    if fields.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return fields, body


def vector_names():
    return sorted(n for n in os.listdir(VECTORS)
                  if os.path.isfile(os.path.join(VECTORS, n)) and n != "README.txt")


# ---- running inspect ------------------------------------------------------------------

def inspect(*args, cwd=None, stdin=None):
    return run([VARSEAL, "inspect"] + list(args), cwd=cwd, stdin=stdin)


class InspectMixin:
    """Checks of inspect's output, for a TestCase."""

    maxDiff = None

    def one_line_error(self, p, code=1):
        """The single `varseal: error: ...` line of a refused run."""
        self.assertEqual(p.returncode, code, describe(p))
        err = p.stderr.decode(errors="replace")
        self.assertEqual(len(err.splitlines()), 1, describe(p))
        self.assertTrue(err.startswith("varseal: error: ") and err.endswith("\n"), describe(p))
        return err.rstrip("\n")

    def inspect_json(self, *files, options=(), cwd=None, stdin=None):
        """The parsed array of one --json run that must succeed."""
        p = inspect("--json", *options, *files, cwd=cwd, stdin=stdin)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(p.stderr, b"", describe(p))
        doc = json.loads(p.stdout)
        self.assertIsInstance(doc, list)
        self.assertEqual(len(doc), len(files))
        for obj in doc:
            self.assert_shape(obj)
        return doc

    def assert_shape(self, obj):
        """The documented keys and types of one file's object."""
        self.assertEqual(set(obj), INSPECT_KEYS)
        self.assertIsInstance(obj["file"], str)
        self.assertEqual(obj["version"], "age-encryption.org/v1")
        self.assertIsInstance(obj["armored"], bool)
        self.assertIn(obj["postquantum"], ("yes", "no", "unknown"))
        self.assertIsInstance(obj["stanza_count"], int)
        self.assertEqual(obj["stanza_count"], sum(t["count"] for t in obj["stanza_types"]))
        for entry in obj["stanza_types"]:
            self.assertEqual(set(entry), {"type", "count"})
            self.assertIsInstance(entry["type"], str)
            self.assertIsInstance(entry["count"], int)
        self.assertEqual(set(obj["sizes"]), SIZE_KEYS)
        for v in obj["sizes"].values():
            self.assertIsInstance(v, int)
        self.assertIsInstance(obj["chunks"], int)
        if obj["store"] is not None:
            self.assertEqual(set(obj["store"]), STORE_KEYS)
            self.assertIsInstance(obj["store"]["manifest"], str)
            self.assertTrue(obj["store"]["spec"] is None or isinstance(obj["store"]["spec"], str))
            for r in obj["store"]["recipients"]:
                self.assertEqual(set(r), {"recipient", "names"})
                self.assertIsInstance(r["recipient"], str)
                for n in r["names"]:
                    self.assertEqual(set(n), {"role", "name"})
                    self.assertIn(n["role"], ("admin", "machine"))
                    self.assertIsInstance(n["name"], str)

    def assert_report(self, obj, data):
        """obj says what data's bytes say."""
        want = expected_report(data)
        self.assertIsNotNone(want, "a file of an impossible size")
        got = {k: v for k, v in obj.items() if k not in ("file", "store")}
        self.assertEqual(got, want)

    def text_fields(self, text):
        """{label: value} of a one-file human block (its first line, the
        file name, under "")."""
        lines = text.splitlines()
        out = {"": lines[0]}
        label = None
        for line in lines[1:]:
            m = re.match(r"^  (\S[^ ]*(?: [^ ]+)*?) {2,}(.*)$", line)
            if m:
                label = m.group(1)
                out[label] = m.group(2)
            else:
                self.assertRegex(line, r"^ {4,}\S", "a continuation line")
                out[label] += "\n" + line.strip()
        return out


class InspectCase(InspectMixin, testkit.TempDirCase):
    PREFIX = "inspect_test."


# ---- V. the official test vectors -------------------------------------------------------

class VVectors(InspectCase):
    def write_vector(self, name):
        fields, body = read_vector(name)
        path = write(os.path.join(self.dir, name), body)
        return fields, body, path

    def test_well_formed_inspected_malformed_refused(self):
        names = vector_names()
        self.assertGreater(len(names), 100, VECTORS)
        seen = {"inspected": 0, "refused": 0}
        for name in names:
            fields, body, path = self.write_vector(name)
            expect = fields["expect"][0]
            with self.subTest(vector=name, expect=expect):
                p = inspect("--json", path)
                if expect in ("header failure", "armor failure"):
                    line = self.one_line_error(p)
                    self.assertTrue(line.startswith("varseal: error: %s: " % path), line)
                    self.assertEqual(p.stdout, b"[]\n", describe(p))
                    seen["refused"] += 1
                    continue
                want = expected_report(body)
                if want is None:  # a payload failure its size already shows
                    self.assertEqual(expect, "payload failure")
                    line = self.one_line_error(p)
                    self.assertIn("payload", line)
                    seen["refused"] += 1
                    continue
                self.assertEqual(p.returncode, 0, describe(p))
                doc = json.loads(p.stdout)
                self.assertEqual(len(doc), 1)
                self.assert_shape(doc[0])
                self.assert_report(doc[0], body)
                self.assertEqual(doc[0]["file"], path)
                self.assertIsNone(doc[0]["store"])
                # The text says the same.
                t = inspect(path)
                self.assertEqual(t.returncode, 0, describe(t))
                fields_text = self.text_fields(t.stdout.decode())
                self.assertEqual(fields_text[""], path)
                self.assertEqual(fields_text["payload"], "%d bytes in %d chunk%s" % (
                    want["sizes"]["payload"], want["chunks"], "" if want["chunks"] == 1 else "s"))
                self.assertTrue(fields_text["stanzas"].startswith("%d: " % want["stanza_count"]))
                seen["inspected"] += 1
        # Every success, no match and HMAC failure is well formed.
        self.assertGreaterEqual(seen["inspected"], 26 + 13 + 1)
        self.assertGreaterEqual(seen["refused"], 62 + 22)

    def test_postquantum_vectors(self):
        _, body, path = self.write_vector("hybrid")
        doc = self.inspect_json(path)
        self.assertEqual(doc[0]["postquantum"], "yes")
        self.assertEqual(doc[0]["stanza_types"], [{"type": "mlkem768x25519", "count": 1}])
        _, body, path = self.write_vector("x25519")
        self.assertEqual(self.inspect_json(path)[0]["postquantum"], "no")
        _, body, path = self.write_vector("scrypt")
        self.assertEqual(self.inspect_json(path)[0]["postquantum"], "yes")

    def test_refusal_is_decrypts_line(self):
        """Where decrypt can try the vector's own key (X25519 or a
        passphrase: not the post-quantum ones), inspect's line is decrypt's."""
        compared = 0
        for name in vector_names():
            fields, body, path = self.write_vector(name)
            if fields["expect"][0] != "header failure":
                continue
            ids = fields.get("identity", [])
            if any(i.startswith("AGE-SECRET-KEY-PQ-") for i in ids):
                continue
            args = []
            if ids:
                args += ["-i", write(path + ".key", "\n".join(ids) + "\n")]
            if "passphrase" in fields:
                args += ["--passphrase-file", write(path + ".pass", fields["passphrase"][0])]
            with self.subTest(vector=name):
                d = run([VARSEAL, "decrypt"] + args + ["-o", path + ".out", path])
                want = self.one_line_error(d)
                got = self.one_line_error(inspect(path))
                self.assertEqual(got, want)
                compared += 1
        self.assertGreater(compared, 40)

    def test_several_files_one_bad(self):
        _, _, good = self.write_vector("x25519")
        _, _, bad = self.write_vector("stanza_missing_body")
        _, _, also = self.write_vector("scrypt")
        p = inspect("--json", good, bad, also)
        self.assertEqual(p.returncode, 1, describe(p))
        line = self.one_line_error(p)
        self.assertTrue(line.startswith("varseal: error: %s: " % bad), line)
        doc = json.loads(p.stdout)
        self.assertEqual([o["file"] for o in doc], [good, also])
        p = inspect(good, also)
        self.assertEqual(p.returncode, 0, describe(p))
        blocks = p.stdout.decode().split("\n\n")
        self.assertEqual([b.splitlines()[0] for b in blocks], [good, also])

    def test_usage(self):
        p = inspect()
        self.assertEqual(p.returncode, 2, describe(p))
        self.assertIn("usage", p.stderr.decode())
        p = inspect("--help")
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("varseal inspect", p.stdout.decode())
        p = inspect(os.path.join(self.dir, "nothing-here"))
        self.assertIn("nothing-here", self.one_line_error(p))


# ---- A. files made by the real age ---------------------------------------------------------

AGE_PASS_PROMPT = b"Enter passphrase"
AGE_CONFIRM_PROMPT = b"Confirm passphrase"


class AAgeFiles(InspectCase):
    def setUp(self):
        super().setUp()
        self.key = os.path.join(self.dir, "key")
        testkit.checked([AGE_KEYGEN, "-o", self.key])
        self.recipient = testkit.checked([AGE_KEYGEN, "-y", self.key]).stdout.decode().strip()

    def age(self, size, *args):
        src = write(os.path.join(self.dir, "pt-%d" % size), testkit.payload(size))
        dst = os.path.join(self.dir, "ct-%d-%s" % (size, "-".join(a.strip("-") for a in args
                                                                if a.startswith("-"))))
        testkit.checked([AGE, "-e"] + list(args) + ["-o", dst, src])
        return dst

    def check(self, path, size, armored, types):
        chunks = max(1, (size + CHUNK - 1) // CHUNK)
        obj = self.inspect_json(path)[0]
        self.assert_report(obj, read(path))
        self.assertEqual((obj["sizes"]["payload"], obj["chunks"]), (size, chunks), path)
        self.assertEqual(obj["armored"], armored)
        self.assertEqual(sorted(t["type"] for t in obj["stanza_types"]), sorted(set(types)))
        self.assertEqual(obj["sizes"]["overhead"], NONCE + TAG * chunks)
        text = self.text_fields(inspect(path).stdout.decode())
        self.assertEqual(text["payload"], "%d bytes in %d chunk%s"
                         % (size, chunks, "" if chunks == 1 else "s"))
        self.assertEqual(text["armored"], "yes" if armored else "no")
        return obj

    def test_recipient_sizes(self):
        for size in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 1):
            for armor in (False, True):
                with self.subTest(size=size, armor=armor):
                    args = ["-r", self.recipient] + (["-a"] if armor else [])
                    obj = self.check(self.age(size, *args), size, armor, ["X25519"])
                    self.assertEqual(obj["postquantum"], "no")
                    if armor:
                        self.assertGreater(obj["sizes"]["armor"], 0)

    def test_passphrase(self):
        for size, armor in ((CHUNK + 1, False), (0, True)):
            src = write(os.path.join(self.dir, "pt"), testkit.payload(size))
            dst = os.path.join(self.dir, "ct-p-%d" % size)
            cmd = [AGE, "-e", "-p"] + (["-a"] if armor else []) + ["-o", dst, src]
            rc, tty, err, left = run_pty(cmd, [(AGE_PASS_PROMPT, b"pass"),
                                               (AGE_CONFIRM_PROMPT, b"pass")])
            self.assertEqual((rc, left), (0, []), err)
            obj = self.check(dst, size, armor, ["scrypt"])
            self.assertEqual(obj["postquantum"], "yes")
            self.assertEqual(obj["stanza_types"], [{"type": "scrypt", "count": 1}])

    def test_many_recipients(self):
        ed = os.path.join(self.dir, "ed")
        rsa = os.path.join(self.dir, "rsa")
        testkit.checked([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", ed])
        testkit.checked([SSH_KEYGEN, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa])
        other = os.path.join(self.dir, "other")
        testkit.checked([AGE_KEYGEN, "-o", other])
        other_r = testkit.checked([AGE_KEYGEN, "-y", other]).stdout.decode().strip()
        path = self.age(100, "-r", self.recipient, "-r", other_r, "-R", ed + ".pub",
                        "-R", rsa + ".pub")
        obj = self.check(path, 100, False, ["X25519", "ssh-ed25519", "ssh-rsa"])
        self.assertEqual({t["type"]: t["count"] for t in obj["stanza_types"]},
                         {"X25519": 2, "ssh-ed25519": 1, "ssh-rsa": 1})
        self.assertEqual(obj["stanza_count"], 4)
        text = self.text_fields(inspect(path).stdout.decode())
        self.assertTrue(text["stanzas"].startswith("4: "), text)
        self.assertIn("X25519 (2)", text["stanzas"])

    def test_standard_input(self):
        for armor in (False, True):
            path = self.age(CHUNK + 1, "-r", self.recipient, *(["-a"] if armor else []))
            data = read(path)
            want = self.inspect_json(path)[0]
            del want["file"]
            # A regular file as standard input, read from an offset.
            junk = b"not part of it" * 7
            both = write(os.path.join(self.dir, "both"), junk + data)
            with open(both, "rb") as f:
                f.seek(len(junk))
                p = subprocess.run([VARSEAL, "inspect", "--json", "-"], stdin=f,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   timeout=testkit.TIMEOUT)
            self.assertEqual(p.returncode, 0, describe(p))
            got = json.loads(p.stdout)[0]
            self.assertEqual(got.pop("file"), "-")
            self.assertEqual(got, want)
            # A pipe.
            p = inspect("--json", "-", stdin=data)
            self.assertEqual(p.returncode, 0, describe(p))
            got = json.loads(p.stdout)[0]
            del got["file"]
            self.assertEqual(got, want)

    def test_never_asks_for_a_key(self):
        """A passphrase-encrypted file on a terminal: no prompt."""
        _, body = read_vector("scrypt")
        path = write(os.path.join(self.dir, "scrypt"), body)
        rc, tty, err, left = run_pty([VARSEAL, "inspect", path], [(b"passphrase", b"x")])
        self.assertEqual(rc, 0, err)
        self.assertEqual(left, [b"passphrase"], tty)


# ---- S. a store's secrets, by name ------------------------------------------------------------

STORE_SPEC = """\
admins:
  alice: @ALICE@
  bob: @BOB@
machines:
  web1:
    generators: [api, db]
  web2:
    generators: [api, db]
generators:
  api:
    files:
      token: {kind: random}
      url: {kind: uuid, secret: false}
  db:
    share: true
    files:
      password: {kind: password}
"""


class SStore(InspectMixin, VarsCase):
    def setUp(self):
        VarsCase.setUp(self)
        self.admins("alice", "bob")
        self.write_spec(STORE_SPEC, alice=self.alice_r, bob=self.bob_r)
        for m in ("web1", "web2"):
            self.varseal("machine", "keygen", m)
        self.vargen("generate")
        spec = read(self.spec).decode()
        self.machine_r = {m: re.search(r"  %s:\n    key: (\S+)\n" % m, spec).group(1)
                          for m in ("web1", "web2")}

    def names_of(self, obj):
        return sorted((n["role"], n["name"]) for r in obj["store"]["recipients"]
                      for n in r["names"])

    def test_recipients_by_name(self):
        cases = {
            self.path("web1", "api", "token"): [("admin", "alice"), ("admin", "bob"),
                                                ("machine", "web1")],
            self.path("shared", "db", "password"): [("admin", "alice"), ("admin", "bob"),
                                                    ("machine", "web1"), ("machine", "web2")],
            os.path.join(self.vars, "machine-keys", "web2", "secret"): [("admin", "alice"),
                                                                         ("admin", "bob")],
        }
        for path, names in cases.items():
            with self.subTest(path=path):
                obj = self.inspect_json(path)[0]
                self.assert_report(obj, read(path))
                self.assertEqual(self.names_of(obj), names)
                self.assertEqual(obj["store"]["manifest"],
                                 os.path.join(os.path.dirname(path), "recipients"))
                self.assertEqual(obj["store"]["spec"], self.spec)
                lines = read(obj["store"]["manifest"]).decode().splitlines()
                self.assertEqual([r["recipient"] for r in obj["store"]["recipients"]], lines)
                self.assertEqual(obj["stanza_count"], len(names))
                text = self.text_fields(inspect(path).stdout.decode())
                shown = text["recipients"].splitlines()
                self.assertEqual(len(shown), len(names))
                for role, name in names:
                    r = self.alice_r if name == "alice" else self.bob_r if name == "bob" \
                        else self.machine_r[name]
                    self.assertTrue(any(re.match(r"^%s %s +%s$" % (role, name, r), s)
                                        for s in shown), (role, name, shown))

    def test_relative_path_from_inside_the_store(self):
        d = os.path.dirname(self.path("web2", "api", "token"))
        obj = self.inspect_json("secret", cwd=d)[0]
        self.assertEqual(obj["file"], "secret")
        self.assertEqual(self.names_of(obj), [("admin", "alice"), ("admin", "bob"),
                                              ("machine", "web2")])

    def test_without_a_spec_the_manifest_lines(self):
        path = self.path("web1", "api", "token")
        elsewhere = os.path.join(self.dir, "elsewhere.yaml")
        os.rename(self.spec, elsewhere)
        obj = self.inspect_json(path)[0]
        self.assertIsNone(obj["store"]["spec"])
        self.assertEqual(sorted(r["recipient"] for r in obj["store"]["recipients"]),
                         sorted([self.alice_r, self.bob_r, self.machine_r["web1"]]))
        self.assertEqual(self.names_of(obj), [])
        text = self.text_fields(inspect(path).stdout.decode())
        self.assertEqual(sorted(text["recipients"].splitlines()),
                         sorted([self.alice_r, self.bob_r, self.machine_r["web1"]]))
        # -f names the spec wherever it is.
        obj = self.inspect_json(path, options=("-f", elsewhere))[0]
        self.assertEqual(obj["store"]["spec"], elsewhere)
        self.assertEqual(self.names_of(obj), [("admin", "alice"), ("admin", "bob"),
                                              ("machine", "web1")])

    def test_a_recipient_the_spec_does_not_name(self):
        spec = read(self.spec).decode().replace("  bob: %s\n" % self.bob_r, "")
        write(self.spec, spec, 0o644)
        obj = self.inspect_json(self.path("web1", "api", "token"))[0]
        unnamed = [r["recipient"] for r in obj["store"]["recipients"] if not r["names"]]
        self.assertEqual(unnamed, [self.bob_r])
        text = self.text_fields(inspect(self.path("web1", "api", "token")).stdout.decode())
        self.assertIn("(not in the spec) %s" % self.bob_r,
                      re.sub(" +", " ", text["recipients"]))

    def test_outside_a_store_no_recipients(self):
        copy = os.path.join(self.dir, "secret")
        shutil.copy(self.path("web1", "api", "token"), copy)
        self.assertIsNone(self.inspect_json(copy)[0]["store"])
        self.assertNotIn("recipients", self.text_fields(inspect(copy).stdout.decode()))

    def test_symlinked_manifest_not_followed(self):
        path = self.path("web1", "api", "token")
        manifest = os.path.join(os.path.dirname(path), "recipients")
        os.unlink(manifest)
        os.symlink("/etc/passwd", manifest)
        for args in ((path,), ("--json", path)):
            p = inspect(*args)
            line = self.one_line_error(p)
            self.assertIn("recipients", line)
            self.assertNotIn(b"root:", p.stdout + p.stderr)

    def test_a_broken_spec_is_said(self):
        write(self.spec, "admins: [\n", 0o644)
        p = inspect(self.path("web1", "api", "token"))
        self.assertIn("vars.yaml", self.one_line_error(p))


# ---- N. hostile names and stanza types ----------------------------------------------------------

class NNames(InspectCase):
    def hand_made(self, types):
        """A well-formed binary age file with stanzas of the given types
        (no arguments, empty bodies) and an empty payload: no key opens it,
        inspect reads it."""
        header = INTRO + b"\n"
        for t in types:
            header += b"-> " + t + b"\n\n"
        header += b"--- " + base64.b64encode(bytes(32)).rstrip(b"=") + b"\n"
        return header + bytes(NONCE + TAG)

    def test_odd_stanza_type_is_json(self):
        odd = b'a"b\\c{}'
        path = write(os.path.join(self.dir, "odd"), self.hand_made([odd, b"X25519-like"]))
        obj = self.inspect_json(path)[0]
        self.assertEqual([t["type"] for t in obj["stanza_types"]], [odd.decode(), "X25519-like"])
        self.assertEqual(obj["postquantum"], "unknown")
        self.assertEqual((obj["sizes"]["payload"], obj["chunks"]), (0, 1))
        text = inspect(path).stdout.decode()
        self.assertIn(odd.decode(), text)

    def test_odd_file_name(self):
        name = b"odd\nname \xff\x1b[31m.age"
        path = os.path.join(self.dir.encode(), name)
        write(path, self.hand_made([b"some-plugin"]))
        p = run([VARSEAL.encode(), b"inspect", b"--json", path])
        self.assertEqual(p.returncode, 0, describe(p))
        obj = json.loads(p.stdout)[0]
        self.assertEqual(obj["file"], os.path.join(self.dir, "odd\nname \ufffd\x1b[31m.age"))
        p = run([VARSEAL.encode(), b"inspect", path])
        self.assertEqual(p.returncode, 0, describe(p))
        first = p.stdout.split(b"\n")[0]
        self.assertNotIn(b"\x1b", p.stdout)
        # Control characters escaped; other bytes as they are (UTF-8 names).
        self.assertTrue(first.endswith(b"odd\\nname \xff\\x1b[31m.age"), first)
        # UTF-8 kept, each byte of what is not UTF-8 (a surrogate, an
        # overlong '/', a lone continuation byte) replaced.
        utf8 = os.path.join(self.dir.encode(),
                            b"\xc3\xa9\xf0\x9f\x98\x80 \xed\xa0\x80 \xc0\xaf \x80")
        write(utf8, self.hand_made([b"some-plugin"]))
        p = run([VARSEAL.encode(), b"inspect", b"--json", utf8])
        self.assertEqual(json.loads(p.stdout)[0]["file"], os.path.join(
            self.dir, "\u00e9\U0001f600 \ufffd\ufffd\ufffd \ufffd\ufffd \ufffd"))
        # Refused, it is one line too.
        write(path, b"not an age file\n")
        for args in ((path,), (b"--json", path)):
            p = run([VARSEAL.encode(), b"inspect"] + list(args))
            self.assertEqual(p.returncode, 1, describe(p))
            self.assertEqual(len(p.stderr.splitlines()), 1, describe(p))
            self.assertNotIn(b"\x1b", p.stderr)

    def test_not_an_age_file_decrypts_line(self):
        path = write(os.path.join(self.dir, "plain"), b"hello\n")
        key = os.path.join(self.dir, "key")
        testkit.checked([AGE_KEYGEN, "-o", key])
        want = self.one_line_error(run([VARSEAL, "decrypt", "-i", key, path]))
        self.assertEqual(self.one_line_error(inspect(path)), want)


# ---- J. vargen list --json and check --json ---------------------------------------------------

JSON_SPEC = """\
admins:
  alice: @ALICE@
machines:
  web1:
    generators: [api, db]
  'we"b\\2':
    generators: [api, db]
generators:
  api:
    files:
      token: {kind: random}
      url: {kind: uuid, secret: false}
  db:
    share: true
    files:
      password: {kind: password}
"""
ODD = 'we"b\\2'


class JListJson(VarsCase):
    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(JSON_SPEC, alice=self.alice_r)
        for m in ("web1", ODD):
            self.varseal("machine", "keygen", m)
        self.vargen("generate")

    def doc(self, cmd, *args, expect=0):
        p = self.vargen(cmd, "--json", *args, expect=expect)
        self.assertEqual(p.stderr, b"", describe(p))
        doc = json.loads(p.stdout)
        self.assertEqual(set(doc), {"rows", "problems", "total"})
        self.assertIsInstance(doc["problems"], int)
        self.assertIsInstance(doc["total"], int)
        for row in doc["rows"]:
            self.assertEqual(set(row), ROW_KEYS, row)
            for k in ("machine", "generator", "file"):
                self.assertTrue(row[k] is None or isinstance(row[k], str), row)
            self.assertTrue(row["secret"] is None or isinstance(row["secret"], bool), row)
            self.assertIn(row["kind"], KINDS)
            self.assertIsInstance(row["name"], str)
            self.assertIn(row["state"], STATES)
            if row["state"] in SOUND:
                self.assertIsNone(row["reason"], row)
            else:
                self.assertIsInstance(row["reason"], str)
                self.assertTrue(row["reason"], row)
        # list shows every row, check the problems: either way, all of them.
        self.assertEqual(doc["problems"], sum(r["state"] not in SOUND for r in doc["rows"]))
        return doc

    def text_rows(self, cmd, *args, expect=0):
        p = self.vargen(cmd, *args, expect=expect)
        return [tuple(line.split("\t")) for line in p.stdout.decode().splitlines()
                if not line.startswith("check: ")]

    def same_as_text(self, cmd, expect=0, *args):
        doc = self.doc(cmd, *args, expect=expect)
        self.assertEqual([(r["name"], r["kind"], r["state"]) for r in doc["rows"]],
                         self.text_rows(cmd, *args, expect=expect))
        return doc

    def by_name(self, doc):
        return {r["name"]: r for r in doc["rows"]}

    def test_sound_store(self):
        doc = self.same_as_text("list")
        rows = self.by_name(doc)
        self.assertEqual(doc["problems"], 0)
        self.assertEqual(doc["total"], len(doc["rows"]))
        self.assertEqual(rows["web1/api/token"], {
            "machine": "web1", "generator": "api", "file": "token", "secret": True,
            "kind": "secret", "name": "web1/api/token", "state": "ok", "reason": None})
        self.assertEqual(rows["%s/api/url" % ODD]["machine"], ODD)
        self.assertIs(rows["%s/api/url" % ODD]["secret"], False)
        self.assertEqual(rows["shared/db/password"]["machine"], None)
        self.assertEqual(rows["shared/db/password"]["generator"], "db")
        key = rows["machine-keys/web1"]
        self.assertEqual((key["kind"], key["machine"], key["generator"], key["file"],
                          key["secret"]), ("key", "web1", None, None, None))
        doc = self.same_as_text("check")
        self.assertEqual((doc["rows"], doc["problems"]), ([], 0))
        self.assertEqual(doc["total"], len(self.by_name(self.doc("list"))))
        # --machine selects, as for the text.
        doc = self.same_as_text("list", 0, "--machine", ODD)
        self.assertEqual({r["machine"] for r in doc["rows"]}, {ODD, None})
        # --json only where documented; list's options stay list's.
        for cmd in (("prune",), ("accept", "--all"), ("generate",), ("list", "--plan"),
                    ("check", "--yes")):
            p = self.vargen(*cmd, "--json", expect=None)
            self.assertEqual(p.returncode, 2, describe(p))

    def test_stale_and_orphans(self):
        spec = read(self.spec).decode().replace("token: {kind: random}",
                                                "token: {kind: random, length: 20}")
        write(self.spec, spec, 0o644)
        os.makedirs(os.path.join(self.vars, "per-machine", "old-vm", "api", "token"))
        os.makedirs(os.path.join(self.vars, "per-machine", "web1", "api", "gone"))
        hints = self.vargen("check", expect=4).stderr.decode()
        doc = self.same_as_text("check", 4)
        rows = self.by_name(doc)
        self.assertEqual(doc["problems"], len(doc["rows"]))
        stale = [r for r in doc["rows"] if r["state"] == "stale"]
        self.assertEqual(len(stale), 4)  # token and url of both machines
        for r in stale:
            # The reason is the text hint's fix, word for word.
            self.assertIn("stale: 4 files: " + r["reason"] + "\n", hints)
            self.assertIn("vargen generate --regenerate --generator api", r["reason"])
        old = rows["old-vm"]
        self.assertEqual((old["kind"], old["machine"], old["generator"], old["file"],
                          old["state"]), ("machine", "old-vm", None, None, "orphan"))
        self.assertIn("vargen prune", old["reason"])
        gone = rows["web1/api/gone"]
        self.assertEqual((gone["kind"], gone["machine"], gone["generator"], gone["file"],
                          gone["secret"]), ("value", "web1", "api", "gone", False))
        doc = self.same_as_text("list")
        self.assertEqual(doc["problems"], 6)
        self.assertEqual(doc["total"], len(doc["rows"]))

    def test_machine_key_rows(self):
        shutil.rmtree(os.path.join(self.vars, "machine-keys", "web1"))
        hints = self.vargen("check", expect=4).stderr.decode()
        doc = self.same_as_text("check", 4)
        self.assertEqual(len(doc["rows"]), 1)
        row = doc["rows"][0]
        self.assertEqual({k: row[k] for k in ("machine", "generator", "file", "secret", "kind",
                                              "name", "state")},
                         {"machine": "web1", "generator": None, "file": None, "secret": None,
                          "kind": "key", "name": "machine-keys/web1", "state": "missing"})
        self.assertIn("missing: 1 machine key: " + row["reason"] + "\n", hints)
        # A kept key of a machine the spec lost: an orphan of kind key.
        spec = read(self.spec).decode()
        spec = re.sub(re.escape("  '%s':\n" % ODD) + r"    key: \S+\n    generators: \[api, db\]\n",
                      "", spec)
        self.assertNotIn(ODD, spec)
        write(self.spec, spec, 0o644)
        rows = self.by_name(self.same_as_text("check", 4))
        self.assertEqual((rows["machine-keys/" + ODD]["kind"],
                          rows["machine-keys/" + ODD]["machine"],
                          rows["machine-keys/" + ODD]["state"]), ("key", ODD, "orphan"))

    def test_no_store_is_an_error_line(self):
        for cmd in ("list", "check"):
            p = self.vargen(cmd, "--json", "--store", os.path.join(self.dir, "typo"),
                            expect=None)
            line = self.assert_one_line_error(p)
            self.assertIn("no store at", line)
            self.assertEqual(p.stdout, b"")


if __name__ == "__main__":
    for tool in (VARSEAL, VARGEN, AGE, AGE_KEYGEN):
        if not os.access(tool, os.X_OK):
            sys.exit("inspect_test: %s is not an executable" % tool)
    if not os.path.isdir(VECTORS):
        sys.exit("inspect_test: no test vectors at %s" % VECTORS)
    unittest.main(verbosity=2)
