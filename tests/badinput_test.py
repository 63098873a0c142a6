#!/usr/bin/env python3
"""Bad-input tests for varseal: every failure must be clean.

A failing run of varseal must exit with status 1 (not 0, not a signal,
not a hang), print exactly one line on stderr that starts with
"varseal: error: ", names the file concerned and says what is wrong, and
print no sanitizer report (the suite also runs against an ASan+UBSan
build). A failing run with -o OUT must leave no OUT, leave an existing
OUT byte-for-byte untouched, and leave no temporary file beside it.

Standard library only. The binary comes from $VARSEAL.
"""
import os
import random
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testkit import (VARSEAL, bech32_decode, bech32_encode, failing_modulus,  # noqa: E402
                     write)

TIMEOUT = 30  # seconds; a run that takes longer counts as a hang
CHUNK = 65536
TAG = 16
ENC_CHUNK = CHUNK + TAG
NONCE = 16
PREFIX = "varseal: error: "
NOBODY = 65534  # Debian's nobody and nogroup: the unprivileged user of the root runs
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                     "ThreadSanitizer", "MemorySanitizer", "runtime error", "SUMMARY: ")

# Shared fixtures, made once in setUpModule.
FIX = {}
_fixture_dir = None


def run_varseal(args, stdin=subprocess.DEVNULL, input=None, timeout=TIMEOUT, prefix=()):
    """Runs varseal without a controlling terminal (so no passphrase
    prompt can block), after prefix (a command that runs it as another
    user); raises AssertionError on a hang."""
    kwargs = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                  start_new_session=True)
    if input is not None:
        kwargs["input"] = input
    else:
        kwargs["stdin"] = stdin
    try:
        return subprocess.run(list(prefix) + [VARSEAL] + [str(a) for a in args], **kwargs)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("varseal %s hung (no exit within %ss)" %
                             (" ".join(map(str, args)), timeout)) from e


def header_len(data):
    """Length of the binary header, through the "--- MAC\\n" line."""
    mac = data.index(b"\n--- ") + 1
    return data.index(b"\n", mac) + 1


def setUpModule():
    global _fixture_dir
    if not os.access(VARSEAL, os.X_OK):
        raise RuntimeError("varseal binary not found at %s (set VARSEAL)" % VARSEAL)
    _fixture_dir = tempfile.TemporaryDirectory(prefix="varseal-badinput-")
    d = _fixture_dir.name
    rng = random.Random(20240601)
    FIX["dir"] = d
    for name in ("key.txt", "other.txt"):
        path = os.path.join(d, name)
        r = run_varseal(["keygen", "-o", path])
        if r.returncode != 0:
            raise RuntimeError("keygen failed: %r" % r.stderr)
        FIX[name] = path
        FIX[name + ".recipient"] = run_varseal(["pubkey", path]).stdout.decode().strip()
    with open(FIX["key.txt"]) as f:
        FIX["secret"] = [l for l in f.read().splitlines() if l.startswith("AGE-SECRET-KEY-1")][0]
    FIX["plain"] = {}
    FIX["enc"] = {}
    for size in (0, 100, CHUNK, 2 * CHUNK + 10):
        plain = rng.randbytes(size)
        ppath = write(os.path.join(d, "plain%d" % size), plain)
        epath = os.path.join(d, "enc%d.age" % size)
        r = run_varseal(["encrypt", "-r", FIX["key.txt.recipient"], "-o", epath, ppath])
        if r.returncode != 0:
            raise RuntimeError("encrypt failed: %r" % r.stderr)
        FIX["plain"][size] = plain
        with open(epath, "rb") as f:
            FIX["enc"][size] = f.read()
    big = 2 * CHUNK + 10
    FIX["big"] = big
    apath = os.path.join(d, "armored.age")
    r = run_varseal(["encrypt", "-a", "-r", FIX["key.txt.recipient"], "-o", apath,
                     os.path.join(d, "plain%d" % big)])
    if r.returncode != 0:
        raise RuntimeError("encrypt -a failed: %r" % r.stderr)
    with open(apath, "rb") as f:
        FIX["armored"] = f.read()
    FIX["passfile"] = write(os.path.join(d, "pass.txt"), b"correct horse battery\n")
    FIX["wrongpass"] = write(os.path.join(d, "wrongpass.txt"), b"incorrect horse\n")
    FIX["pass.age"] = os.path.join(d, "pass.age")
    r = run_varseal(["encrypt", "--work-factor", "10", "--passphrase-file", FIX["passfile"],
                     "-o", FIX["pass.age"], os.path.join(d, "plain100")])
    if r.returncode != 0:
        raise RuntimeError("encrypt -p failed: %r" % r.stderr)


def tearDownModule():
    if _fixture_dir is not None:
        _fixture_dir.cleanup()


class Base(unittest.TestCase):
    maxDiff = 2000

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="varseal-case-")
        self.tmp = self._tmp.name
        self.indir = os.path.join(self.tmp, "in")
        self.outdir = os.path.join(self.tmp, "out")
        os.mkdir(self.indir)
        os.mkdir(self.outdir)

    def tearDown(self):
        # A test may leave a directory read-only; make it removable.
        for root, dirs, _ in os.walk(self.tmp):
            for dname in dirs:
                try:
                    os.chmod(os.path.join(root, dname), 0o700)
                except OSError:
                    pass
        self._tmp.cleanup()

    # --- helpers -------------------------------------------------------

    def inpath(self, name, data, mode=0o600):
        return write(os.path.join(self.indir, name), data, mode)

    def assert_no_sanitizer(self, res, ctx=""):
        err = res.stderr.decode("utf-8", "replace")
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, err, "sanitizer output %s:\n%s" % (ctx, err))

    def assert_fails(self, res, name, *words, ctx=""):
        """The clean-failure contract; returns the message line."""
        err = res.stderr.decode("utf-8", "replace")
        where = "%s\nstderr: %r" % (ctx, err[:3000])
        self.assert_no_sanitizer(res, ctx)
        self.assertGreaterEqual(res.returncode, 0,
                                "killed by signal %d %s" % (-res.returncode, where))
        self.assertNotEqual(res.returncode, 0, "succeeded on bad input %s" % where)
        # 3 exactly when no key (or passphrase) matched, 1 for any other
        # failure (the documented exit statuses).
        no_match = any(w in err for w in ("no identity matched", "wrong passphrase",
                                          "no identity given"))
        self.assertEqual(res.returncode, 3 if no_match else 1,
                         "exit status %d %s" % (res.returncode, where))
        self.assertTrue(err.endswith("\n") and err.count("\n") == 1,
                        "stderr is not exactly one line %s" % where)
        line = err[:-1]
        self.assertTrue(line.startswith(PREFIX), "no %r prefix %s" % (PREFIX, where))
        if name is not None:
            self.assertIn(str(name), line, "message does not name %s %s" % (name, where))
        for w in words:
            self.assertIn(w, line, "message lacks %r %s" % (w, where))
        return line

    def assert_ok(self, res, ctx=""):
        self.assert_no_sanitizer(res, ctx)
        self.assertEqual(res.returncode, 0,
                         "failed %s: %r" % (ctx, res.stderr.decode("utf-8", "replace")))

    def assert_prefix_output(self, out, plain, ctx="", whole_ok=False):
        """Decrypting to stdout may release chunks that authenticated
        before the failure: only whole chunks, and only the real ones.
        Unless every chunk authenticated (whole_ok: trailing data after a
        valid last chunk), never all of the plaintext."""
        self.assertEqual(len(out) % CHUNK, 0,
                         "partial chunk (%d bytes) written %s" % (len(out), ctx))
        if not whole_ok:
            self.assertLess(len(out), max(len(plain), 1), "whole plaintext released %s" % ctx)
        self.assertEqual(out, plain[:len(out)], "output is not a plaintext prefix %s" % ctx)

    def assert_dir_listing(self, path, expected, ctx=""):
        self.assertEqual(sorted(os.listdir(path)), sorted(expected),
                         "unexpected directory contents %s" % ctx)

    def decrypt(self, path, *extra, key=None):
        key = FIX["key.txt"] if key is None else key
        return run_varseal(["decrypt", "-i", key] + list(extra) + [path])


class TruncatedFiles(Base):
    def offsets(self, data):
        h = header_len(data)
        p = h + NONCE
        cands = {0, 1, 10, 21, 22, 23, h // 2, h - 46, h - 45, h - 44, h - 2, h - 1,
                 h, h + 1, h + 8, h + 15, p, p + 1, p + 8, p + 15, p + 16, p + 17,
                 p + 1000, p + ENC_CHUNK // 2, p + ENC_CHUNK - 1, p + ENC_CHUNK,
                 p + ENC_CHUNK + 1, p + ENC_CHUNK + 15, p + ENC_CHUNK + 16,
                 p + 2 * ENC_CHUNK - 1, p + 2 * ENC_CHUNK, p + 2 * ENC_CHUNK + 1,
                 p + 2 * ENC_CHUNK + 16, len(data) - 1}
        # Every line boundary of the header, and either side of it.
        pos = data.find(b"\n")
        while 0 <= pos < h:
            cands.update({pos, pos + 1, pos + 2})
            pos = data.find(b"\n", pos + 1)
        return sorted(o for o in cands if 0 <= o < len(data))

    def expected_words(self, data, off):
        h = header_len(data)
        if off < h:
            return ("header ends early",)
        if off < h + NONCE:
            return ("ends before the payload nonce",)
        rest = (off - h - NONCE) % ENC_CHUNK
        if rest == TAG and off - h - NONCE > ENC_CHUNK:
            # A final fragment of just a tag, after chunk 0: an empty chunk.
            return ("the payload's last chunk is empty",)
        return ("truncated",)

    def test_truncated_to_stdout_and_to_file(self):
        count = 0
        for size, data in FIX["enc"].items():
            plain = FIX["plain"][size]
            for off in self.offsets(data):
                ctx = "(plaintext %d bytes, cut at %d of %d)" % (size, off, len(data))
                src = self.inpath("cut%d_%d.age" % (size, off), data[:off])
                words = self.expected_words(data, off)
                r = self.decrypt(src)
                self.assert_fails(r, src, *words, ctx=ctx)
                self.assert_prefix_output(r.stdout, plain, ctx)
                out = os.path.join(self.outdir, "OUT")
                r = self.decrypt(src, "-o", out)
                self.assert_fails(r, src, *words, ctx=ctx + " with -o")
                self.assertEqual(r.stdout, b"", ctx)
                self.assert_dir_listing(self.outdir, [], ctx + " with -o")
                os.unlink(src)
                count += 1
        self.assertGreater(count, 60)

    def test_truncated_chunk_counts(self):
        # The message says which chunk is missing its end.
        data = FIX["enc"][FIX["big"]]
        p = header_len(data) + NONCE
        for cut, chunk in ((p + 100, 0), (p + ENC_CHUNK + 100, 1), (p + 2 * ENC_CHUNK + 5, 2)):
            src = self.inpath("c.age", data[:cut])
            r = self.decrypt(src)
            self.assert_fails(r, src, "payload chunk %d is corrupt or truncated" % chunk)
            self.assertEqual(len(r.stdout), chunk * CHUNK)
        # Cut exactly at a chunk boundary: the final chunk is missing.
        for cut in (p, p + ENC_CHUNK, p + 2 * ENC_CHUNK):
            src = self.inpath("c.age", data[:cut])
            r = self.decrypt(src)
            self.assert_fails(r, src, "truncated (no final chunk)", ctx="cut at %d" % cut)

    def test_truncated_from_stdin(self):
        data = FIX["enc"][FIX["big"]]
        for cut in (5, header_len(data) + 3, header_len(data) + NONCE + ENC_CHUNK + 7):
            r = run_varseal(["decrypt", "-i", FIX["key.txt"]], input=data[:cut])
            self.assert_fails(r, "standard input", ctx="cut at %d" % cut)
            self.assert_prefix_output(r.stdout, FIX["plain"][FIX["big"]], "stdin")

    def test_truncated_armor(self):
        data = FIX["armored"]
        lines = data.split(b"\n")
        cases = {
            "no END line": b"\n".join(lines[:-2]) + b"\n",
            "half a line": data[:len(data) // 2],
            "only BEGIN": lines[0] + b"\n",
            "BEGIN cut": data[:10],
        }
        for what, cut in cases.items():
            src = self.inpath("a.age", cut)
            r = self.decrypt(src, "-o", os.path.join(self.outdir, "OUT"))
            self.assert_fails(r, src, ctx=what)
            self.assert_dir_listing(self.outdir, [], what)
        src = self.inpath("a.age", b"\n".join(lines[:-2]) + b"\n")
        self.assert_fails(self.decrypt(src), src, "invalid armor", "END")


class MultiBatch(Base):
    """Files of many chunks: the decryptor works on batches of chunks and
    reads ahead, so cuts and flips at and around batch boundaries (every
    16 chunks) and input that trickles in through a pipe get a look too."""
    NCHUNKS = 40

    @classmethod
    def setUpClass(cls):
        cls._dir = tempfile.TemporaryDirectory(prefix="varseal-multi-")
        rng = random.Random(99)
        cls.plain = {}
        cls.enc = {}
        for name, size in (("odd", cls.NCHUNKS * CHUNK + 1000), ("even", 32 * CHUNK)):
            plain = rng.randbytes(size)
            ppath = write(os.path.join(cls._dir.name, name), plain)
            epath = ppath + ".age"
            r = run_varseal(["encrypt", "-r", FIX["key.txt.recipient"], "-o", epath, ppath])
            if r.returncode != 0:
                raise RuntimeError("encrypt failed: %r" % r.stderr)
            with open(epath, "rb") as f:
                cls.enc[name] = f.read()
            cls.plain[name] = plain

    @classmethod
    def tearDownClass(cls):
        cls._dir.cleanup()

    def trickle(self, data, seed):
        """Decrypts data fed through a pipe in uneven pieces with pauses,
        so that reads often come back short."""
        rng = random.Random(seed)
        proc = subprocess.Popen([VARSEAL, "decrypt", "-i", FIX["key.txt"]],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        result = {}

        def drain(stream, key):
            result[key] = stream.read()

        readers = [threading.Thread(target=drain, args=(proc.stdout, "out")),
                   threading.Thread(target=drain, args=(proc.stderr, "err"))]
        for t in readers:
            t.start()
        try:
            pos = 0
            while pos < len(data):
                n = rng.choice((1, 100, 4096, 65552, 70000, 300000))
                proc.stdin.write(data[pos:pos + n])
                proc.stdin.flush()
                pos += n
                if rng.random() < 0.3:
                    time.sleep(0.002)
        except BrokenPipeError:
            pass
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.fail("varseal hung on trickled input")
        for t in readers:
            t.join(TIMEOUT)
        proc.stdout.close()
        proc.stderr.close()
        return subprocess.CompletedProcess(proc.args, proc.returncode, result.get("out", b""),
                                           result.get("err", b""))

    def test_controls_succeed(self):
        for name, data in self.enc.items():
            src = self.inpath(name + ".age", data)
            r = self.decrypt(src)
            self.assert_ok(r, name)
            self.assertEqual(r.stdout, self.plain[name], name)
            r = self.trickle(data, seed=len(name))
            self.assert_ok(r, name + " trickled")
            self.assertEqual(r.stdout, self.plain[name], name + " trickled")

    def cuts(self, data):
        p = header_len(data) + NONCE
        offs = set()
        for k in (1, 15, 16, 17, 31, 32, 33, 39, 40):
            b = p + k * ENC_CHUNK
            offs.update({b - 1, b, b + 1, b + TAG, b + 1000})
        return sorted(o for o in offs if o < len(data))

    def test_truncated(self):
        for name, data in self.enc.items():
            plain = self.plain[name]
            p = header_len(data) + NONCE
            for off in self.cuts(data):
                ctx = "(%s, cut at %d = chunk %d + %d)" % (
                    name, off, (off - p) // ENC_CHUNK, (off - p) % ENC_CHUNK)
                src = self.inpath("cut.age", data[:off])
                r = self.decrypt(src)
                line = self.assert_fails(r, src, ctx=ctx)
                self.assertTrue("truncated" in line or "last chunk is empty" in line,
                                "%s: %r" % (ctx, line))
                self.assert_prefix_output(r.stdout, plain, ctx)
                # Everything up to the damaged chunk is released, not less.
                self.assertEqual(len(r.stdout), (off - p) // ENC_CHUNK * CHUNK, ctx)
            # A few through a pipe, and with -o.
            for off in self.cuts(data)[::4]:
                ctx = "(%s, cut at %d, trickled)" % (name, off)
                r = self.trickle(data[:off], seed=off)
                line = self.assert_fails(r, "standard input", ctx=ctx)
                self.assertTrue("truncated" in line or "last chunk is empty" in line,
                                "%s: %r" % (ctx, line))
                self.assert_prefix_output(r.stdout, plain, ctx)
                src = self.inpath("cut.age", data[:off])
                r = self.decrypt(src, "-o", os.path.join(self.outdir, "OUT"))
                self.assert_fails(r, src, ctx=ctx + " -o")
                self.assert_dir_listing(self.outdir, [], ctx)

    def test_bit_flips(self):
        rng = random.Random(17)
        for name, data in self.enc.items():
            plain = self.plain[name]
            p = header_len(data) + NONCE
            nchunks = (len(data) - p + ENC_CHUNK - 1) // ENC_CHUNK
            for k in sorted({0, 1, 14, 15, 16, 17, 30, 31, 32, 33, nchunks - 2, nchunks - 1}):
                if k >= nchunks:
                    continue
                start = p + k * ENC_CHUNK
                end = min(start + ENC_CHUNK, len(data))
                for pos in (start, rng.randrange(start, end), end - 1):
                    b = bytearray(data)
                    b[pos] ^= 1 << rng.randrange(8)
                    ctx = "(%s, flip in chunk %d at %d)" % (name, k, pos)
                    src = self.inpath("flip.age", bytes(b))
                    r = self.decrypt(src)
                    self.assert_fails(r, src, "payload chunk %d is corrupt" % k, ctx=ctx)
                    self.assertEqual(r.stdout, plain[:k * CHUNK], ctx)
                    if pos == start:
                        r = self.trickle(bytes(b), seed=pos)
                        self.assert_fails(r, "standard input",
                                          "payload chunk %d is corrupt" % k, ctx=ctx + " piped")
                        self.assertEqual(r.stdout, plain[:k * CHUNK], ctx + " piped")

    def test_trailing_data(self):
        data, plain = self.enc["even"], self.plain["even"]
        for extra in (b"x", b"\0" * TAG, data[-ENC_CHUNK:], b"y" * (3 * ENC_CHUNK)):
            ctx = "(%d bytes after 32 full chunks)" % len(extra)
            src = self.inpath("trail.age", data + extra)
            r = self.decrypt(src)
            self.assert_fails(r, src, "trailing data", ctx=ctx)
            self.assert_prefix_output(r.stdout, plain, ctx, whole_ok=True)
            r = self.trickle(data + extra, seed=len(extra))
            self.assert_fails(r, "standard input", "trailing data", ctx=ctx + " piped")
            r = self.decrypt(src, "-o", os.path.join(self.outdir, "OUT"))
            self.assert_fails(r, src, "trailing data", ctx=ctx + " -o")
            self.assert_dir_listing(self.outdir, [], ctx)

    def test_chunks_swapped_or_dropped(self):
        data, plain = self.enc["odd"], self.plain["odd"]
        p = header_len(data) + NONCE
        chunks = [data[p + i * ENC_CHUNK:p + (i + 1) * ENC_CHUNK]
                  for i in range((len(data) - p + ENC_CHUNK - 1) // ENC_CHUNK)]
        cases = {
            "chunks 16 and 17 swapped": (chunks[:16] + [chunks[17], chunks[16]] + chunks[18:], 16),
            "chunk 16 dropped": (chunks[:16] + chunks[17:], 16),
            "chunk 5 repeated": (chunks[:6] + chunks[5:], 6),
            "last chunk dropped": (chunks[:-1], None),
        }
        for what, (parts, bad) in cases.items():
            src = self.inpath("mix.age", data[:p] + b"".join(parts))
            r = self.decrypt(src)
            if bad is None:
                self.assert_fails(r, src, "truncated", ctx=what)
            else:
                self.assert_fails(r, src, "payload chunk %d is corrupt" % bad, ctx=what)
                self.assertEqual(r.stdout, plain[:bad * CHUNK], what)
            self.assert_prefix_output(r.stdout, plain, what)


class BitFlips(Base):
    HEADER_WORDS = ("not an age file", "no identity matched", "header MAC", "malformed",
                    "header", "stanza", "X25519")

    def flip(self, data, pos, bit):
        b = bytearray(data)
        b[pos] ^= 1 << bit
        return bytes(b)

    def check_flips(self, data, plain, positions, classify):
        rng = random.Random(7)
        src = os.path.join(self.indir, "flipped.age")
        out = os.path.join(self.outdir, "OUT")
        n = 0
        for i, pos in enumerate(positions):
            bit = rng.randrange(8)
            ctx = "(bit %d of byte %d of %d)" % (bit, pos, len(data))
            write(src, self.flip(data, pos, bit))
            # Every tenth case also through -o, the others to stdout.
            if i % 10 == 0:
                r = self.decrypt(src, "-o", out)
                self.assertEqual(r.stdout, b"", ctx)
                self.assert_dir_listing(self.outdir, [], ctx)
            else:
                r = self.decrypt(src)
                self.assert_prefix_output(r.stdout, plain, ctx)
            line = self.assert_fails(r, src, ctx=ctx)
            words = classify(pos)
            self.assertTrue(any(w in line for w in words),
                            "%s: message %r has none of %r" % (ctx, line, words))
            n += 1
        return n

    def test_binary_file(self):
        data = FIX["enc"][FIX["big"]]
        plain = FIX["plain"][FIX["big"]]
        h = header_len(data)
        p = h + NONCE
        rng = random.Random(11)
        payload = set()
        for c in range(3):
            start = p + c * ENC_CHUNK
            end = min(start + ENC_CHUNK, len(data))
            payload.update({start, start + 1, end - TAG - 1, end - TAG, end - 1})
            payload.update(rng.randrange(start, end) for _ in range(20))
        positions = list(range(h + NONCE)) + sorted(payload)

        def classify(pos):
            if pos < h:
                return self.HEADER_WORDS
            if pos < p:
                return ("payload chunk 0 is corrupt",)
            return ("payload chunk %d is corrupt" % ((pos - p) // ENC_CHUNK),)

        n = self.check_flips(data, plain, positions, classify)
        self.assertGreaterEqual(n, 200)

    def test_small_file_every_byte(self):
        data = FIX["enc"][100]
        plain = FIX["plain"][100]
        h = header_len(data)
        # The header is covered by test_binary_file; here every byte after it.
        n = self.check_flips(data, plain, range(h, len(data)),
                             lambda pos: ("payload chunk 0 is corrupt",))
        self.assertEqual(n, len(data) - h)

    def test_armored_file(self):
        data = FIX["armored"]
        plain = FIX["plain"][FIX["big"]]
        rng = random.Random(13)
        positions = sorted(set(list(range(0, 200)) + list(range(len(data) - 80, len(data))) +
                               [rng.randrange(len(data)) for _ in range(60)]))
        words = self.HEADER_WORDS + ("armor", "payload chunk", "trailing data")
        self.check_flips(data, plain, positions, lambda pos: words)


class Garbage(Base):
    def check(self, name, data, *words, plain=None, any_of=None):
        src = self.inpath(name, data)
        out = os.path.join(self.outdir, "OUT")
        r = self.decrypt(src, "-o", out)
        line = self.assert_fails(r, src, *words, ctx=name)
        if any_of:
            self.assertTrue(any(w in line for w in any_of), "%s: %r" % (name, line))
        self.assert_dir_listing(self.outdir, [], name)
        r = self.decrypt(src)
        self.assert_fails(r, src, *words, ctx=name + " to stdout")
        if plain is None:
            self.assertEqual(r.stdout, b"", name)
        else:
            self.assert_prefix_output(r.stdout, plain, name, whole_ok=True)

    def test_random_bytes(self):
        rng = random.Random(3)
        for i, n in enumerate((1, 17, 4096, 20000, 200000)):
            data = rng.randbytes(n)
            if data[:1] in (b"a", b"-", b" ", b"\n", b"\t", b"\r", b"\v", b"\f"):
                data = b"\xff" + data[1:]
            nl = data.find(b"\n")
            if nl >= 16 * 1024 or (nl < 0 and n >= 16 * 1024):
                words = ("header line too long",)
            elif nl < 0:
                words = ("header ends early",)
            else:
                words = ("not an age file",)
            self.check("random%d" % i, data, *words)
        # Random bytes after a valid first line.
        self.check("random-after-intro", b"age-encryption.org/v1\n" + rng.randbytes(3000) +
                   b"\n", "malformed stanza line")

    def test_empty_file(self):
        self.check("empty", b"", "header ends early")

    def test_text_file(self):
        self.check("notes.txt", b"Dear diary,\ntoday I encrypted nothing.\n", "not an age file")

    def test_intro_only(self):
        self.check("intro", b"age-encryption.org/v1\n", "header ends early")
        self.check("intro2", b"age-encryption.org/v1\n--- " + b"A" * 43 + b"\n",
                   "no recipient stanzas")

    def test_pem_with_bad_base64(self):
        pem = (b"-----BEGIN AGE ENCRYPTED FILE-----\n"
               b"YWdlLWVuY3J5cHRpb24ub3JnL3Yx!!not*base64$$\n"
               b"-----END AGE ENCRYPTED FILE-----\n")
        self.check("bad.pem", pem, "invalid armor", "base64")

    def test_armored_base64_altered(self):
        lines = FIX["armored"].split(b"\n")
        # A valid base64 character replaced by another one: decodes fine,
        # to something that then fails.
        line = bytearray(lines[3])
        line[20] = ord("B") if line[20] != ord("B") else ord("C")
        self.check("altered1.age", b"\n".join(lines[:3] + [bytes(line)] + lines[4:]),
                   any_of=BitFlips.HEADER_WORDS)
        # An invalid character.
        line = bytearray(lines[3])
        line[20] = ord("*")
        self.check("altered2.age", b"\n".join(lines[:3] + [bytes(line)] + lines[4:]),
                   "invalid armor", "base64")
        # A line removed from the middle.
        mid = len(lines) // 2
        self.check("altered3.age", b"\n".join(lines[:mid] + lines[mid + 1:]),
                   "payload chunk 0 is corrupt")
        # Garbage after the END line.
        self.check("altered4.age", FIX["armored"] + b"trailing words\n", "trailing data")

    def test_trailing_binary_data(self):
        # After a full final chunk (a payload of exactly 64 KiB), any byte
        # more is trailing data.
        data, plain = FIX["enc"][CHUNK], FIX["plain"][CHUNK]
        self.check("trail1.age", data + b"x", "trailing data", plain=plain)
        self.check("trail2.age", data + b"\0" * TAG, "trailing data", plain=plain)
        self.check("trail3.age", data + data[-ENC_CHUNK:], "trailing data", plain=plain)
        # After a short final chunk the extra byte lengthens that chunk,
        # which then fails to authenticate.
        self.check("trail4.age", FIX["enc"][100] + b"x", "payload chunk 0 is corrupt",
                   plain=FIX["plain"][100])

    def test_ten_thousand_stanzas(self):
        data = FIX["enc"][100]
        stanza = b"-> X25519 " + b"A" * 43 + b"\n" + b"A" * 43 + b"\n"
        intro = b"age-encryption.org/v1\n"
        self.check("stanzas.age", intro + stanza * 10000 + data[len(intro):],
                   "too many recipient stanzas")
        # Unknown stanza types: the same limit.
        other = b"-> garbage-type x y z\n\n"
        self.check("stanzas2.age", intro + other * 10000 + data[len(intro):],
                   "too many recipient stanzas")

    def test_megabyte_line(self):
        intro = b"age-encryption.org/v1\n"
        self.check("longline.age", intro + b"-> X25519 " + b"A" * (1 << 20) + b"\n",
                   "header line too long")
        self.check("longline2.age", b"a" * (1 << 20) + b"\n", "header line too long")
        self.check("longline3.age", intro + b"-> X25519 abc\n" + b"A" * (1 << 20) + b"\n",
                   "header line too long")
        armored = (b"-----BEGIN AGE ENCRYPTED FILE-----\n" + b"A" * (1 << 20) +
                   b"\n-----END AGE ENCRYPTED FILE-----\n")
        self.check("longline4.age", armored, "invalid armor")

    def test_garbage_from_stdin(self):
        r = run_varseal(["decrypt", "-i", FIX["key.txt"]], input=b"\x00\x01garbage\n" * 100)
        self.assert_fails(r, "standard input", "not an age file")
        self.assertEqual(r.stdout, b"")


class WrongKey(Base):
    def test_other_identity(self):
        for size, data in FIX["enc"].items():
            src = self.inpath("f%d.age" % size, data)
            r = self.decrypt(src, key=FIX["other.txt"])
            self.assert_fails(r, src, "no identity matched")
            self.assertEqual(r.stdout, b"")
        src = self.inpath("armored.age", FIX["armored"])
        self.assert_fails(self.decrypt(src, key=FIX["other.txt"]), src, "no identity matched")

    def test_wrong_passphrase(self):
        r = run_varseal(["decrypt", "--passphrase-file", FIX["wrongpass"], FIX["pass.age"]])
        self.assert_fails(r, FIX["pass.age"], "wrong passphrase")
        self.assertEqual(r.stdout, b"")
        # The right one works (so the failure above is about the passphrase).
        r = run_varseal(["decrypt", "--passphrase-file", FIX["passfile"], FIX["pass.age"]])
        self.assert_ok(r)
        self.assertEqual(r.stdout, FIX["plain"][100])

    def test_missing_passphrase_file(self):
        missing = os.path.join(self.tmp, "no-such-pass.txt")
        r = run_varseal(["decrypt", "--passphrase-file", missing, FIX["pass.age"]])
        self.assert_fails(r, "no-such-pass.txt", "No such file")

    def test_passphrase_file_with_identity(self):
        r = self.decrypt(FIX["pass.age"])
        self.assert_fails(r, FIX["pass.age"], "no identity matched")

    def test_work_factor_above_maximum(self):
        r = run_varseal(["decrypt", "--passphrase-file", FIX["passfile"],
                         "--max-work-factor", "5", FIX["pass.age"]])
        line = self.assert_fails(r, FIX["pass.age"])
        self.assertIn("work factor", line.lower())

    def test_no_identity_given(self):
        src = self.inpath("x.age", FIX["enc"][100])
        r = run_varseal(["decrypt", src])
        self.assert_fails(r, src, "no identity given", "-i")
        self.assertEqual(r.stdout, b"")


class BadIdentityFiles(Base):
    def ident(self, name, text, mode=0o600):
        return self.inpath(name, text.encode() if isinstance(text, str) else text, mode)

    def check(self, keyfile, name, *words):
        src = self.inpath("f.age", FIX["enc"][100])
        out = os.path.join(self.outdir, "OUT")
        r = run_varseal(["decrypt", "-i", keyfile, "-o", out, src])
        self.assert_fails(r, name, *words, ctx=keyfile)
        self.assert_dir_listing(self.outdir, [], keyfile)
        # pubkey reads identity files the same way.
        r = run_varseal(["pubkey", keyfile])
        self.assert_fails(r, name, *words, ctx="pubkey " + keyfile)
        self.assertEqual(r.stdout, b"")

    def test_garbage_line(self):
        k = self.ident("key.txt", "# created: today\n# public key: none\nthis is not a key\n")
        self.check(k, "key.txt:3:", "not an identity")

    def test_garbage_after_good_key(self):
        k = self.ident("key.txt", "# a comment\n%s\n\nAGE-SECRET-KEY-1 nonsense\n" % FIX["secret"])
        self.check(k, "key.txt:4:", "malformed X25519 identity")

    def test_lowercase_key(self):
        k = self.ident("lower.txt", "# x\n%s\n" % FIX["secret"].lower())
        self.check(k, "lower.txt:2:", "not an identity")

    def test_mixed_case_key(self):
        s = FIX["secret"]
        k = self.ident("mixed.txt", "%s%s\n" % (s[:16], s[16:].lower()))
        self.check(k, "mixed.txt:1:", "malformed X25519 identity")

    def test_bad_checksum(self):
        s = FIX["secret"]
        last = "Q" if s[-1] != "Q" else "P"
        k = self.ident("sum.txt", "# created\n# public key\n%s\n" % (s[:-1] + last))
        self.check(k, "sum.txt:3:", "malformed X25519 identity")

    def test_truncated_key(self):
        k = self.ident("short.txt", FIX["secret"][:-5] + "\n")
        self.check(k, "short.txt:1:", "malformed X25519 identity")

    def test_empty_file(self):
        k = self.ident("empty.txt", "")
        self.check(k, "empty.txt", "no identities found")
        k = self.ident("comments.txt", "# only\n# comments\n\n")
        self.check(k, "comments.txt", "no identities found")

    def test_binary_file(self):
        k = self.ident("bin.txt", bytes(range(256)) * 4)
        self.check(k, "bin.txt:1:", "not an identity")

    def test_directory(self):
        d = os.path.join(self.tmp, "keydir")
        os.mkdir(d, 0o700)
        self.check(d, "keydir", "is a directory")

    def test_missing_file(self):
        self.check(os.path.join(self.tmp, "nokey.txt"), "nokey.txt", "No such file")

    def test_endless_device(self):
        # Read to its cap of 1 MiB in growing blocks, from the scratch
        # stack and then beyond it; refused in one line, nothing leaked.
        self.check("/dev/zero", "/dev/zero", "larger than 1 MiB", "not a key file")

    def test_long_key_file(self):
        # 200 KiB of comments before the key: more than the scratch stack
        # (80 KiB) a key file's text is read onto, so a block of its own.
        with open(FIX["key.txt"]) as f:
            key = f.read()
        k = self.ident("long.txt", ("# " + "x" * 77 + "\n") * 2560 + key)
        src = self.inpath("f.age", FIX["enc"][100])
        r = run_varseal(["decrypt", "-i", k, src])
        self.assert_ok(r, "a 200 KiB key file")
        self.assertEqual(r.stdout, FIX["plain"][100])

    def test_group_readable(self):
        with open(FIX["key.txt"]) as f:
            k = self.ident("open.txt", f.read(), mode=0o644)
        self.check(k, "open.txt", "permissions", "0644", "--insecure-permissions")
        # Accepted when asked for.
        src = self.inpath("f.age", FIX["enc"][100])
        r = run_varseal(["decrypt", "--insecure-permissions", "-i", k, src])
        self.assert_ok(r)
        self.assertEqual(r.stdout, FIX["plain"][100])
        # And the same key with mode 0600 is fine without it.
        os.chmod(k, 0o600)
        r = run_varseal(["decrypt", "-i", k, src])
        self.assert_ok(r)
        self.assertEqual(r.stdout, FIX["plain"][100])

    def test_second_identity_file_bad(self):
        bad = self.ident("second.txt", "\n\nAGE-SECRET-KEY-1XYZ\n")
        src = self.inpath("f.age", FIX["enc"][100])
        r = run_varseal(["decrypt", "-i", FIX["key.txt"], "-i", bad, src])
        self.assert_fails(r, "second.txt:3:", "malformed X25519 identity")
        self.assertEqual(r.stdout, b"")


class BadRecipients(Base):
    def encrypt(self, *args):
        src = self.inpath("plain", b"hello\n")
        out = os.path.join(self.outdir, "OUT")
        r = run_varseal(["encrypt"] + list(args) + ["-o", out, src])
        self.assert_dir_listing(self.outdir, [], repr(args))
        self.assertEqual(r.stdout, b"")
        return r

    def test_garbage_recipient(self):
        r = self.encrypt("-r", "garbage")
        self.assert_fails(r, "garbage", "unknown recipient type")

    def test_bad_checksum(self):
        rec = FIX["key.txt.recipient"]
        bad = rec[:-1] + ("q" if rec[-1] != "q" else "p")
        r = self.encrypt("-r", bad)
        self.assert_fails(r, bad, "malformed X25519 recipient")

    def test_uppercase_and_truncated(self):
        rec = FIX["key.txt.recipient"]
        self.assert_fails(self.encrypt("-r", rec.upper()), rec.upper(),
                          "unknown recipient type")
        self.assert_fails(self.encrypt("-r", rec[:-3]), rec[:-3], "malformed")
        self.assert_fails(self.encrypt("-r", "age1"), "age1", "malformed")

    def test_good_then_bad_recipient(self):
        r = self.encrypt("-r", FIX["key.txt.recipient"], "-r", "age1zzzz")
        self.assert_fails(r, "age1zzzz", "malformed X25519 recipient")

    def test_recipients_file_bad_line(self):
        path = self.inpath("recipients.txt", ("# team\n%s\n\nnot-a-recipient\n%s\n" % (
            FIX["key.txt.recipient"], FIX["other.txt.recipient"])).encode())
        r = self.encrypt("-R", path)
        self.assert_fails(r, "recipients.txt:4:", "unknown recipient type")

    def test_recipients_file_bad_checksum(self):
        rec = FIX["key.txt.recipient"]
        path = self.inpath("rcp.txt", ("%s\n" % (rec[:-1] + ("q" if rec[-1] != "q" else "p")))
                           .encode())
        self.assert_fails(self.encrypt("-R", path), "rcp.txt:1:", "malformed X25519 recipient")

    def test_recipients_file_empty_missing_dir(self):
        path = self.inpath("empty.txt", b"# nobody\n")
        self.assert_fails(self.encrypt("-R", path), "empty.txt", "no recipients found")
        missing = os.path.join(self.tmp, "missing.txt")
        self.assert_fails(self.encrypt("-R", missing), "missing.txt", "No such file")
        self.assert_fails(self.encrypt("-R", self.indir), self.indir, "is a directory")

    def test_passphrase_with_recipient(self):
        r = self.encrypt("-p", "--passphrase-file", FIX["passfile"], "-r",
                         FIX["key.txt.recipient"])
        self.assert_fails(r, None, "-p can't be combined with -r")
        r = self.encrypt("-r", FIX["key.txt.recipient"], "--passphrase-file", FIX["passfile"])
        self.assert_fails(r, None, "-p can't be combined with -r")

    def test_no_recipients(self):
        self.assert_fails(self.encrypt(), None, "no recipients")


class UnreadablePaths(Base):
    def test_missing_input(self):
        missing = os.path.join(self.tmp, "nothere.age")
        out = os.path.join(self.outdir, "OUT")
        r = self.decrypt(missing, "-o", out)
        self.assert_fails(r, "nothere.age", "No such file")
        self.assert_dir_listing(self.outdir, [])
        r = run_varseal(["encrypt", "-r", FIX["key.txt.recipient"], "-o", out, missing])
        self.assert_fails(r, "nothere.age", "No such file")
        self.assert_dir_listing(self.outdir, [])

    def test_input_directory(self):
        out = os.path.join(self.outdir, "OUT")
        r = self.decrypt(self.indir, "-o", out)
        self.assert_fails(r, self.indir, "Is a directory")
        self.assert_dir_listing(self.outdir, [])
        r = run_varseal(["encrypt", "-r", FIX["key.txt.recipient"], "-o", out, self.indir])
        self.assert_fails(r, self.indir, "Is a directory")
        self.assert_dir_listing(self.outdir, [])

    def test_output_in_missing_directory(self):
        src = self.inpath("f.age", FIX["enc"][100])
        out = os.path.join(self.tmp, "nodir", "OUT")
        r = self.decrypt(src, "-o", out)
        self.assert_fails(r, "nodir", "No such file")
        self.assertFalse(os.path.exists(os.path.dirname(out)))
        r = run_varseal(["encrypt", "-r", FIX["key.txt.recipient"], "-o", out,
                         os.path.join(FIX["dir"], "plain100")])
        self.assert_fails(r, "nodir", "No such file")
        self.assertFalse(os.path.exists(os.path.dirname(out)))

    def test_output_is_directory(self):
        src = self.inpath("f.age", FIX["enc"][100])
        r = self.decrypt(src, "-o", self.outdir)
        self.assert_fails(r, self.outdir, "is a directory")
        self.assert_dir_listing(self.outdir, [])

    def unprivileged(self):
        """(key, run) for a user whom file modes bind: this one, or, when
        the tests run as root (whom no mode stops), nobody, through
        setpriv, with this test's directory and a copy of the key handed
        over to it. Call it once the test's files exist."""
        if os.geteuid() != 0:
            return FIX["key.txt"], run_varseal
        with open(FIX["key.txt"], "rb") as f:
            key = write(os.path.join(self.tmp, "key.txt"), f.read(), 0o600)
        for root, dirs, files in os.walk(self.tmp):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(name, NOBODY, NOBODY)
        as_nobody = ("setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                     "--clear-groups")
        return key, lambda args: run_varseal(args, prefix=as_nobody)

    def test_output_in_readonly_directory(self):
        src = self.inpath("f.age", FIX["enc"][100])
        with open(os.path.join(FIX["dir"], "plain100"), "rb") as f:
            plain = self.inpath("plain100", f.read())
        os.chmod(self.outdir, 0o500)
        out = os.path.join(self.outdir, "OUT")
        key, run = self.unprivileged()
        r = run(["decrypt", "-i", key, "-o", out, src])
        self.assert_fails(r, "out", "Permission denied")
        self.assert_dir_listing(self.outdir, [])
        r = run(["encrypt", "-r", FIX["key.txt.recipient"], "-o", out, plain])
        self.assert_fails(r, "out", "Permission denied")
        self.assert_dir_listing(self.outdir, [])

    def test_unreadable_input(self):
        src = self.inpath("f.age", FIX["enc"][100], mode=0o000)
        key, run = self.unprivileged()
        r = run(["decrypt", "-i", key, "-o", os.path.join(self.outdir, "OUT"), src])
        self.assert_fails(r, src, "Permission denied")
        self.assert_dir_listing(self.outdir, [])


class ExistingOutput(Base):
    PRECIOUS = b"precious data that must survive\n" * 10

    def make_target(self):
        out = os.path.join(self.outdir, "OUT")
        write(out, self.PRECIOUS, mode=0o640)
        return out, os.stat(out)

    def assert_untouched(self, out, before, ctx):
        after = os.stat(out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), self.PRECIOUS, "target changed " + ctx)
        self.assertEqual(stat.S_IMODE(after.st_mode), 0o640, "mode changed " + ctx)
        self.assertEqual(after.st_ino, before.st_ino, "target replaced " + ctx)
        self.assertEqual(after.st_mtime_ns, before.st_mtime_ns, "target modified " + ctx)
        self.assert_dir_listing(self.outdir, ["OUT"], ctx)

    def test_failures_leave_target_alone(self):
        data = FIX["enc"][FIX["big"]]
        p = header_len(data) + NONCE
        flipped = bytearray(data)
        flipped[p + ENC_CHUNK + 100] ^= 0x10   # chunk 1: chunk 0 was already written
        last = bytearray(data)
        last[-1] ^= 0x01                        # the very last byte
        cases = [
            ("wrong key", data, FIX["other.txt"], "no identity matched"),
            ("truncated in chunk 2", data[:p + 2 * ENC_CHUNK + 5], FIX["key.txt"], "truncated"),
            ("truncated at a boundary", data[:p + 2 * ENC_CHUNK], FIX["key.txt"], "truncated"),
            ("bit flip in chunk 1", bytes(flipped), FIX["key.txt"], "payload chunk 1"),
            ("bit flip in the last byte", bytes(last), FIX["key.txt"], "payload chunk 2"),
            ("trailing data", FIX["enc"][CHUNK] + b"\0", FIX["key.txt"], "trailing data"),
            ("a byte too many", data + b"\0", FIX["key.txt"], "payload chunk 2"),
            ("garbage", b"garbage\n", FIX["key.txt"], "not an age file"),
        ]
        out, before = self.make_target()
        for what, content, key, word in cases:
            src = self.inpath("f.age", content)
            r = self.decrypt(src, "-o", out, key=key)
            self.assert_fails(r, src, word, ctx=what)
            self.assert_untouched(out, before, what)
        # Failures before decryption starts as well.
        bad_key = self.inpath("bad.txt", b"nonsense\n")
        r = self.decrypt(self.inpath("f.age", data), "-o", out, key=bad_key)
        self.assert_fails(r, "bad.txt:1:", "not an identity")
        self.assert_untouched(out, before, "bad identity")
        r = run_varseal(["encrypt", "-r", FIX["key.txt.recipient"], "-o", out, self.indir])
        self.assert_fails(r, self.indir, "Is a directory")
        self.assert_untouched(out, before, "encrypting a directory")

    def test_success_replaces_target(self):
        out, _ = self.make_target()
        src = self.inpath("f.age", FIX["enc"][FIX["big"]])
        r = self.decrypt(src, "-o", out)
        self.assert_ok(r)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), FIX["plain"][FIX["big"]])
        self.assert_dir_listing(self.outdir, ["OUT"])
        # Encrypting over it, then decrypting again, round-trips.
        enc = os.path.join(self.outdir, "ENC")
        r = run_varseal(["encrypt", "-r", FIX["key.txt.recipient"], "-o", enc, out])
        self.assert_ok(r)
        self.assert_dir_listing(self.outdir, ["OUT", "ENC"])
        write(out, self.PRECIOUS, 0o640)
        r = self.decrypt(enc, "-o", out)
        self.assert_ok(r)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), FIX["plain"][FIX["big"]])
        self.assert_dir_listing(self.outdir, ["OUT", "ENC"])

    def test_success_through_symlink(self):
        out, _ = self.make_target()
        link = os.path.join(self.outdir, "LINK")
        os.symlink("OUT", link)
        src = self.inpath("f.age", FIX["enc"][100])
        r = self.decrypt(src, "-o", link)
        self.assert_ok(r)
        self.assertTrue(os.path.islink(link), "the symlink was replaced")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), FIX["plain"][100])
        self.assert_dir_listing(self.outdir, ["OUT", "LINK"])


class Interruption(Base):
    SIZE = 64 * 1024 * 1024
    FEED = 8 * 1024 * 1024

    @classmethod
    def setUpClass(cls):
        cls._big = tempfile.TemporaryDirectory(prefix="varseal-big-")
        plain = os.path.join(cls._big.name, "plain")
        block = random.Random(5).randbytes(1 << 20)
        with open(plain, "wb") as f:
            for _ in range(cls.SIZE // len(block)):
                f.write(block)
        cls.enc = os.path.join(cls._big.name, "big.age")
        r = run_varseal(["encrypt", "-r", FIX["key.txt.recipient"], "-o", cls.enc, plain],
                        timeout=120)
        if r.returncode != 0:
            raise RuntimeError("encrypting 64 MiB failed: %r" % r.stderr)
        os.unlink(plain)

    @classmethod
    def tearDownClass(cls):
        cls._big.cleanup()

    def output_fds(self, pid):
        """Best effort: varseal's open files in the output directory (it
        is not dumpable, so /proc/PID/fd may be unreadable unless root)."""
        found = []
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if target.startswith(self.outdir + "/"):
                    found.append((fd, target))
        except OSError:
            return None
        return found

    def assert_running(self, proc):
        if proc.poll() is not None:
            self.fail("varseal exited early (status %d): %r" %
                      (proc.returncode, proc.stderr.read().decode("utf-8", "replace")))

    def interrupt(self, sig):
        out = os.path.join(self.outdir, "OUT")
        proc = subprocess.Popen([VARSEAL, "decrypt", "-i", FIX["key.txt"], "-o", out],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            with open(self.enc, "rb") as f:
                head = f.read(self.FEED)
            # Blocks until varseal has read nearly all of it (pipe buffers
            # are small): varseal is then mid-file, waiting for more.
            try:
                proc.stdin.write(head)
                proc.stdin.flush()
            except BrokenPipeError:
                pass
            self.assert_running(proc)
            # Wait until its output file holds data, where we can see it.
            deadline = time.monotonic() + 10
            seen = None
            while time.monotonic() < deadline:
                fds = self.output_fds(proc.pid)
                if fds is None:
                    time.sleep(0.5)
                    break
                sizes = []
                for fd, _ in fds:
                    try:
                        sizes.append(os.stat("/proc/%d/fd/%s" % (proc.pid, fd)).st_size)
                    except OSError:
                        pass
                if sizes and max(sizes) >= CHUNK:
                    seen = fds
                    break
                time.sleep(0.02)
            if self.output_fds(proc.pid) is not None:
                self.assertIsNotNone(seen, "varseal never wrote to its output file")
            self.assert_running(proc)
            proc.send_signal(sig)
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            proc.wait(timeout=TIMEOUT)
            err = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        text = err.decode("utf-8", "replace")
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, text)
        self.assertEqual(proc.returncode, -sig,
                         "expected death by signal %d, got status %d: %r" %
                         (sig, proc.returncode, text))
        self.assert_dir_listing(self.outdir, [], "after signal %d" % sig)

    def test_sigterm(self):
        self.interrupt(signal.SIGTERM)

    def test_sigkill(self):
        self.interrupt(signal.SIGKILL)

    def test_sigterm_existing_target(self):
        out = os.path.join(self.outdir, "OUT")
        write(out, b"keep me\n", 0o640)
        proc = subprocess.Popen([VARSEAL, "decrypt", "-i", FIX["key.txt"], "-o", out],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            with open(self.enc, "rb") as f:
                proc.stdin.write(f.read(self.FEED // 2))
                proc.stdin.flush()
            time.sleep(0.2)
            self.assert_running(proc)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        self.assertEqual(proc.returncode, -signal.SIGTERM)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"keep me\n")
        self.assert_dir_listing(self.outdir, ["OUT"])

    def test_complete_run_succeeds(self):
        # The control: fed in full through the pipe, it works.
        out = os.path.join(self.outdir, "OUT")
        with open(self.enc, "rb") as f:
            r = run_varseal(["decrypt", "-i", FIX["key.txt"], "-o", out], stdin=f, timeout=120)
        self.assert_ok(r)
        self.assertEqual(os.path.getsize(out), self.SIZE)
        self.assert_dir_listing(self.outdir, ["OUT"])


class MessageShape(Base):
    """The one-line message must survive unusual names: a long path must
    not push the reason (or FILE:LINE) off the end of the message, and a
    name with a newline in it must not split the message in two."""

    def long_dir(self):
        d = os.path.join(self.tmp, *(["d" * 60] * 5))
        os.makedirs(d)
        self.assertGreater(len(d), 300)
        return d

    def test_long_path_identity_file(self):
        d = self.long_dir()
        key = write(os.path.join(d, "key.txt"), b"junk\n")
        src = self.inpath("f.age", FIX["enc"][100])
        r = self.decrypt(src, key=key)
        self.assert_fails(r, key + ":1:", "not an identity")
        missing = os.path.join(d, "missing.txt")
        r = self.decrypt(src, key=missing)
        self.assert_fails(r, missing, "No such file")

    def test_long_path_recipients_file(self):
        d = self.long_dir()
        rfile = write(os.path.join(d, "recipients.txt"), b"junk\n")
        r = run_varseal(["encrypt", "-R", rfile, os.path.join(FIX["dir"], "plain100")])
        self.assert_fails(r, rfile + ":1:", "unknown recipient type")

    def test_long_path_output_directory(self):
        d = self.long_dir()
        out = os.path.join(d, "nodir", "OUT")
        r = self.decrypt(self.inpath("f.age", FIX["enc"][100]), "-o", out)
        self.assert_fails(r, os.path.dirname(out), "No such file")

    def test_long_path_input_control(self):
        d = self.long_dir()
        src = write(os.path.join(d, "t.age"), FIX["enc"][100][:-5])
        self.assert_fails(self.decrypt(src), src, "truncated")

    def test_newline_in_recipient(self):
        r = run_varseal(["encrypt", "-r", "age1abc\nsecond line",
                         os.path.join(FIX["dir"], "plain100")])
        self.assert_fails(r, None, "age1abc", "second line", "malformed X25519 recipient")

    def test_newline_in_file_names(self):
        missing = os.path.join(self.tmp, "no\nsuch.age")
        r = self.decrypt(missing)
        self.assert_fails(r, None, "no", "such.age", "No such file")
        key = write(os.path.join(self.tmp, "bad\nkey.txt"), b"junk\n")
        r = self.decrypt(self.inpath("f.age", FIX["enc"][100]), key=key)
        self.assert_fails(r, None, "bad", "key.txt:1:", "not an identity")


class Fifo(Base):
    def run_into_fifo(self, args):
        fifo = os.path.join(self.outdir, "fifo")
        os.mkfifo(fifo, 0o600)
        got = {}

        def reader():
            try:
                with open(fifo, "rb") as f:
                    got["data"] = f.read()
            except Exception as e:  # reported below
                got["error"] = e

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            r = run_varseal(args[:1] + ["-o", fifo] + args[1:])
        finally:
            # If varseal never opened the FIFO, release the blocked reader.
            for _ in range(100):
                if not t.is_alive():
                    break
                try:
                    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                    os.close(fd)
                except OSError:
                    pass
                t.join(0.05)
        t.join(TIMEOUT)
        self.assertFalse(t.is_alive(), "FIFO reader still blocked")
        self.assertNotIn("error", got)
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced")
        self.assert_dir_listing(self.outdir, ["fifo"])
        return r, got.get("data")

    def test_decrypt_into_fifo(self):
        src = self.inpath("f.age", FIX["enc"][FIX["big"]])
        r, data = self.run_into_fifo(["decrypt", "-i", FIX["key.txt"], src])
        self.assert_ok(r)
        self.assertEqual(data, FIX["plain"][FIX["big"]])

    def test_failed_decrypt_into_fifo(self):
        src = self.inpath("f.age", FIX["enc"][FIX["big"]])
        r, data = self.run_into_fifo(["decrypt", "-i", FIX["other.txt"], src])
        self.assert_fails(r, src, "no identity matched")
        self.assertEqual(data, b"")

    def test_encrypt_into_fifo(self):
        r, data = self.run_into_fifo(["encrypt", "-r", FIX["key.txt.recipient"],
                                      os.path.join(FIX["dir"], "plain100")])
        self.assert_ok(r)
        self.assertTrue(data.startswith(b"age-encryption.org/v1\n"))
        r2 = run_varseal(["decrypt", "-i", FIX["key.txt"]], input=data)
        self.assert_ok(r2)
        self.assertEqual(r2.stdout, FIX["plain"][100])

# ---- hybrid post-quantum keys and stanzas (issue 14) ---------------------------

def b64(data, pad=False):
    import base64
    text = base64.b64encode(data).decode()
    return text if pad else text.rstrip("=")


def b64_decode(text):
    import base64
    return base64.b64decode(text + "=" * (-len(text) % 4))


class PQBase(Base):
    """A hybrid identity and a file sealed to it (made once per class)."""

    @classmethod
    def setUpClass(cls):
        cls._pq = tempfile.TemporaryDirectory(prefix="varseal-badinput-pq-")
        cls.pq_key = os.path.join(cls._pq.name, "pq.key")
        r = run_varseal(["keygen", "--pq", "-o", cls.pq_key])
        if r.returncode != 0:
            raise AssertionError("keygen --pq failed: %r" % r.stderr)
        cls.pq_recipient = run_varseal(["pubkey", cls.pq_key]).stdout.decode().strip()
        with open(cls.pq_key) as f:
            cls.pq_secret = [l for l in f.read().splitlines()
                             if l.startswith("AGE-SECRET-KEY-PQ-1")][0]
        r = run_varseal(["encrypt", "-r", cls.pq_recipient], input=FIX["plain"][100])
        if r.returncode != 0:
            raise AssertionError("encrypt to a hybrid recipient failed: %r" % r.stderr)
        cls.sealed = r.stdout

    @classmethod
    def tearDownClass(cls):
        cls._pq.cleanup()


class HybridStanza(PQBase):
    """Every argument count, length and base64 fault of an mlkem768x25519
    stanza: one line from decrypt (with the right identity) and from
    inspect (with none), the same words, before any decryption."""

    def stanza(self):
        lines = self.sealed[:header_len(self.sealed)].split(b"\n")
        at = [i for i, l in enumerate(lines) if l.startswith(b"-> mlkem768x25519 ")]
        self.assertEqual(len(at), 1)
        return lines, at[0]

    def mutated(self, arg_line=None, body_line=None):
        lines, i = self.stanza()
        if arg_line is not None:
            lines[i] = arg_line
        if body_line is not None:
            lines[i + 1] = body_line
        return b"\n".join(lines) + self.sealed[header_len(self.sealed):]

    def enc(self):
        lines, i = self.stanza()
        return b64_decode(lines[i].split(b" ")[2].decode())

    def check(self, name, data, *words, grammar=False):
        """grammar: a fault of age's header grammar itself (an empty
        argument, a character no base64 has in a body line), which the
        header parser refuses before any stanza type is looked at."""
        src = self.inpath(name, data)
        out = os.path.join(self.outdir, "OUT")
        words = ("malformed stanza",) + words if grammar else ("mlkem768x25519",) + words
        r = run_varseal(["decrypt", "-i", self.pq_key, "-o", out, src])
        line = self.assert_fails(r, src, *words, ctx=name)
        self.assertNotIn("MAC", line, name)
        self.assert_dir_listing(self.outdir, [], name)
        r = run_varseal(["inspect", src])
        self.assert_fails(r, src, *words, ctx="inspect " + name)

    def test_the_file_itself_opens(self):
        src = self.inpath("good.age", self.sealed)
        r = run_varseal(["decrypt", "-i", self.pq_key, src])
        self.assert_ok(r)
        self.assertEqual(r.stdout, FIX["plain"][100])

    def test_argument_count(self):
        lines, i = self.stanza()
        self.check("none.age", self.mutated(b"-> mlkem768x25519"), "0 arguments")
        self.check("two.age", self.mutated(lines[i] + b" AAAA"), "2 arguments")
        self.check("three.age", self.mutated(lines[i] + b" A B"), "3 arguments")

    def test_enc_length(self):
        enc = self.enc()
        self.assertEqual(len(enc), 1120)
        for n, data in ((1119, enc[:-1]), (1121, enc + b"\0"), (32, enc[:32]),
                        (0, b""), (2240, enc + enc)):
            with self.subTest(n=n):
                arg = b"-> mlkem768x25519 " + b64(data).encode()
                if n:
                    self.check("len%d.age" % n, self.mutated(arg), "of %d bytes" % n)
                else:
                    self.check("len0.age", self.mutated(arg), "argument", grammar=True)

    def test_enc_base64(self):
        lines, i = self.stanza()
        arg = lines[i].split(b" ")[2]
        bad_char = arg[:100] + b"-" + arg[101:]
        self.check("char.age", self.mutated(b"-> mlkem768x25519 " + bad_char), "base64")
        # 1,120 bytes end with 4 unused bits: set, the text is not canonical.
        last = b64(self.enc())
        noncanon = last[:-1] + b64_other_last(last[-1])
        self.check("bits.age", self.mutated(b"-> mlkem768x25519 " + noncanon.encode()),
                   "base64")
        self.check("pad.age", self.mutated(b"-> mlkem768x25519 " + b64(self.enc(), True)
                                           .encode()), "base64")

    def test_body(self):
        lines, i = self.stanza()
        body = b64_decode(lines[i + 1].decode())
        self.assertEqual(len(body), 32)
        for n, text in ((31, b64(body[:31])), (33, b64(body + b"\0")), (16, b64(body[:16]))):
            with self.subTest(n=n):
                self.check("body%d.age" % n, self.mutated(body_line=text.encode()))
        self.check("bodychar.age", self.mutated(body_line=lines[i + 1][:10] + b"!" +
                                                lines[i + 1][11:]), "body", grammar=True)

    def test_wrong_type_identity_skips_it(self):
        # An X25519 identity does not look at a hybrid stanza: no match (3).
        src = self.inpath("f.age", self.sealed)
        r = run_varseal(["decrypt", "-i", FIX["key.txt"], src])
        self.assert_fails(r, src, "no identity matched")


def b64_other_last(c):
    """Another base64 character of the same top two bits (for 1,120 bytes
    the last character carries 2 data bits and 4 zero bits)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return alphabet[alphabet.index(c) | 1]


class HybridKeys(PQBase):
    """Bad hybrid recipients and identities, the modulus check among them:
    one line, naming where the key came from."""

    def encrypt(self, *args):
        out = os.path.join(self.outdir, "OUT")
        r = run_varseal(["encrypt"] + list(args) + ["-o", out], input=b"hello\n")
        self.assert_dir_listing(self.outdir, [], repr(args)[:200])
        self.assertEqual(r.stdout, b"")
        return r

    def test_modulus_check_on_the_command_line(self):
        bad = failing_modulus(self.pq_recipient)
        self.assertEqual(len(bad), 1959)
        line = self.assert_fails(self.encrypt("-r", bad), None, "modulus check")
        self.assertLess(len(line), 4000)
        # Beside a good one, and in a recipients file at its line.
        self.assert_fails(self.encrypt("-r", self.pq_recipient, "-r", bad), None,
                          "modulus check")
        path = self.inpath("r.txt", ("# team\n%s\n%s\n" % (self.pq_recipient, bad)).encode())
        self.assert_fails(self.encrypt("-R", path), "r.txt:3:", "modulus check")

    def test_malformed_recipients(self):
        rec = self.pq_recipient
        hrp, pk = bech32_decode(rec)
        for name, bad, word in (
                ("checksum", rec[:-1] + ("q" if rec[-1] != "q" else "p"), "malformed"),
                ("truncated", rec[:-7], "malformed"),
                ("upper case", rec.upper(), "unknown recipient type"),
                ("mixed case", rec[:500] + rec[500:].upper(), "malformed"),
                ("1215 bytes", bech32_encode(hrp, pk[:-1]), "malformed"),
                ("1217 bytes", bech32_encode(hrp, pk + b"\0"), "malformed"),
                ("no data", "age1pq1", "malformed")):
            with self.subTest(name):
                self.assert_fails(self.encrypt("-r", bad), None, word)

    def test_bad_identities(self):
        sec = self.pq_secret
        hrp, seed = bech32_decode(sec.lower())
        src = self.inpath("f.age", self.sealed)
        for name, bad, word in (
                ("checksum", sec[:-1] + ("Q" if sec[-1] != "Q" else "P"), "malformed"),
                ("lower case", sec.lower(), "not an identity"),
                ("mixed case", sec[:30] + sec[30:].lower(), "malformed"),
                ("31-byte seed", bech32_encode(hrp, seed[:31]).upper(), "malformed"),
                ("33-byte seed", bech32_encode(hrp, seed + b"\0").upper(), "malformed"),
                ("no data", "AGE-SECRET-KEY-PQ-1", "malformed")):
            with self.subTest(name):
                key = self.inpath("k.txt", ("# created\n%s\n" % bad).encode())
                r = run_varseal(["decrypt", "-i", key, src])
                self.assert_fails(r, "k.txt:2:", word)
                self.assertEqual(r.stdout, b"")
                self.assert_fails(run_varseal(["pubkey", key]), "k.txt:2:", word)


if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)
