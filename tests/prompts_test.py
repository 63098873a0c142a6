#!/usr/bin/env python3
"""vargen generate's prompts (issue 12).

- On a terminal a prompt names the machine (or `shared`) and the
  generator: `web1: root-password/password - root password for this
  machine: `. A hidden prompt is asked twice and the two must match (a
  mismatch is asked again; the typed secret never shows); a line prompt
  is asked once with echo; a multiline one once, ended by Ctrl-D.
- `--prompt [MACHINE:][GEN/]NAME=@FILE`: for each prompt the most specific
  match answers it, MACHINE:GEN/NAME > MACHINE:NAME > GEN/NAME > NAME; two
  options that are equally specific for one prompt are refused.
- An unknown --prompt (no such machine, generator or prompt) and an unused
  one (it answers no prompt this run asks) are errors that name it, before
  anything is made.
- Without a terminal the error names the --prompt that would answer.
- Prompt files are read by their own reader: any bytes, at most 1 MiB, one
  trailing newline removed for `line` prompts only; its errors say
  "prompt file".

Run as `python3 tests/prompts_test.py` with VARGEN and VARSEAL set.
Standard library only.
"""
import os
import subprocess
import sys
import threading
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptyrun import run_pty  # noqa: E402
from testkit import VARGEN, describe, read, write  # noqa: E402
from vars_test import VarsCase, files_named, tree  # noqa: E402

PTY_TIMEOUT = 90  # seconds: only a run that waits for an answer never given gets there

MACHINES = ("web1", "web2", "db1")

SPEC = """\
admins:
  alice: @ALICE@
machines:
  web1:
    generators: [root-password, motd]
  web2:
    generators: [root-password, motd]
  db1:
    generators: [root-password, motd, db]
generators:
  root-password:
    prompts:
      password: {type: hidden, description: "root password for this machine"}
    files:
      copy: {}
    script: |
      cp "$prompts/password" "$out/copy"
  motd:
    share: true
    prompts:
      banner: {type: line, description: "the login banner"}
    files:
      text: {secret: false}
    script: |
      cp "$prompts/banner" "$out/text"
  db:
    prompts:
      password: {type: hidden}
    files:
      copy: {}
    script: |
      cp "$prompts/password" "$out/copy"
"""

BYTES_SPEC = """\
admins:
  alice: @ALICE@
machines:
  web1:
    generators: [bytes]
generators:
  bytes:
    prompts:
      h: {type: hidden}
      l: {type: line, description: "one line"}
      m: {type: multiline, description: "a certificate"}
    files:
      h: {secret: false}
      l: {secret: false}
      m: {secret: false}
    script: |
      cp "$prompts/h" "$out/h"
      cp "$prompts/l" "$out/l"
      cp "$prompts/m" "$out/m"
"""


def prompt_text(owner, gen, name, description=None):
    return ("%s: %s/%s%s: " % (owner, gen, name,
                               " - " + description if description else "")).encode()


def again_text(owner, gen, name):
    return ("%s: %s/%s (again): " % (owner, gen, name)).encode()


class PromptCase(VarsCase):
    SPEC = SPEC

    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(self.SPEC, alice=self.alice_r)
        for m in self.machines():
            self.varseal("machine", "keygen", m)
        self.n = 0

    def machines(self):
        return MACHINES

    def file(self, data):
        """A new prompt file holding data; its absolute path."""
        self.n += 1
        return write(os.path.join(self.dir, "answer%d" % self.n), data)

    def secret(self, owner, gen, f="copy"):
        return self.open_secret(self.alice, self.path(owner, gen, f))

    def value(self, owner, gen, f):
        return read(self.path(owner, gen, f, "value"))

    def generate(self, *prompts, expect=0, **kw):
        """vargen generate with --prompt KEY=@FILE for each (key, data)."""
        args = []
        for key, data in prompts:
            args += ["--prompt", "%s=@%s" % (key, self.file(data))]
        return self.vargen("generate", *args, expect=expect, start_new_session=True, **kw)

    def generate_on_tty(self, answers, *args):
        rc, tty, err, unanswered = run_pty([VARGEN, "generate", "-f", self.spec] + list(args),
                                           answers, timeout=PTY_TIMEOUT)
        self.assertEqual((rc, unanswered), (0, []), "terminal: %r\nstderr: %r" % (tty, err))
        return tty

    def assert_refused(self, p, *words):
        """One error line naming each of words, exit 1, and no value made."""
        line = self.assert_one_line_error(p)
        for w in words:
            self.assertIn(w, line)
        return line


# ---- the terminal ------------------------------------------------------------

class Terminal(PromptCase):
    def test_prompts_name_machine_and_generator(self):
        pw = {m: ("secret-of-" + m).encode() for m in MACHINES}
        ask = {m: prompt_text(m, "root-password", "password", "root password for this machine")
               for m in MACHINES}
        again = {m: again_text(m, "root-password", "password") for m in MACHINES}
        db_ask = prompt_text("db1", "db", "password")
        banner = prompt_text("shared", "motd", "banner", "the login banner")
        answers = [
            (ask["web1"], pw["web1"]), (again["web1"], pw["web1"]),
            (banner, b"Welcome to the farm"),
            # web2: a typo in the second entry; both are asked again.
            (ask["web2"], b"typo-one"), (again["web2"], b"typo-two"),
            (ask["web2"], pw["web2"]), (again["web2"], pw["web2"]),
            (ask["db1"], pw["db1"]), (again["db1"], pw["db1"]),
            (db_ask, b"db-secret"), (again_text("db1", "db", "password"), b"db-secret"),
        ]
        tty = self.generate_on_tty(answers)
        for m in MACHINES:
            self.assertIn(ask[m], tty)
            self.assertIn(again[m], tty)
            # Hidden: what was typed never reached the terminal.
            self.assertNotIn(pw[m], tty)
            self.assertEqual(self.secret(m, "root-password"), pw[m])
        self.assertEqual(tty.count(ask["web1"]), 1)
        self.assertEqual(tty.count(ask["web2"]), 2)
        self.assertIn(b"differ", tty)
        for typo in (b"typo-one", b"typo-two", b"db-secret"):
            self.assertNotIn(typo, tty)
        self.assertEqual(self.secret("db1", "db"), b"db-secret")
        # A line prompt: asked once, with echo, stored without the newline.
        self.assertEqual(tty.count(banner), 1)
        self.assertIn(b"Welcome to the farm", tty)
        self.assertEqual(self.value("shared", "motd", "text"), b"Welcome to the farm")
        self.vargen("check")

    def test_mismatch_three_times(self):
        ask = prompt_text("web1", "root-password", "password", "root password for this machine")
        again = again_text("web1", "root-password", "password")
        answers = [(ask, b"a%d" % i) if k == 0 else (again, b"b%d" % i)
                   for i in range(3) for k in range(2)]
        before = tree(self.vars)
        rc, tty, err, unanswered = run_pty([VARGEN, "generate", "-f", self.spec, "-m", "web1",
                                            "-g", "root-password"], answers,
                                           timeout=PTY_TIMEOUT)
        self.assertEqual((rc, unanswered), (1, []), "terminal: %r\nstderr: %r" % (tty, err))
        self.assertIn(b"did not match", err)
        self.assertIn(b"web1", err)
        self.assertEqual(tree(self.vars), before)


class TerminalKinds(PromptCase):
    SPEC = BYTES_SPEC

    def machines(self):
        return ("web1",)

    def test_hidden_line_multiline(self):
        answers = [
            (prompt_text("web1", "bytes", "h"), b"hush"),
            (again_text("web1", "bytes", "h"), b"hush"),
            (prompt_text("web1", "bytes", "l", "one line"), b"shown"),
            (b"web1: bytes/m - a certificate (several lines, end with Ctrl-D):\r\n",
             b"first\nsecond\n\x04"),
        ]
        tty = self.generate_on_tty(answers)
        self.assertNotIn(b"hush", tty)
        self.assertIn(b"shown", tty)
        self.assertIn(b"first", tty)
        self.assertEqual(tty.count(b"web1: bytes/l"), 1)
        self.assertEqual(tty.count(b"web1: bytes/m"), 1)
        self.assertEqual(self.value("web1", "bytes", "h"), b"hush")
        self.assertEqual(self.value("web1", "bytes", "l"), b"shown")
        self.assertEqual(self.value("web1", "bytes", "m"), b"first\nsecond")


# ---- --prompt precedence -------------------------------------------------------

class Precedence(PromptCase):
    def test_most_specific_wins(self):
        self.generate(("password", b"any"),                        # NAME
                      ("root-password/password", b"by-generator"),  # GEN/NAME
                      ("web2:password", b"by-machine"),             # MACHINE:NAME
                      ("db1:root-password/password", b"exact"),     # MACHINE:GEN/NAME
                      ("banner", b"hello\n"))
        self.assertEqual(self.secret("web1", "root-password"), b"by-generator")
        # MACHINE:NAME wins over GEN/NAME.
        self.assertEqual(self.secret("web2", "root-password"), b"by-machine")
        self.assertEqual(self.secret("db1", "root-password"), b"exact")
        # db's prompt is also called password; only NAME matches it.
        self.assertEqual(self.secret("db1", "db"), b"any")
        self.assertEqual(self.value("shared", "motd", "text"), b"hello")
        self.vargen("check")

    def test_order_of_options_does_not_matter(self):
        self.generate(("db1:root-password/password", b"exact"),
                      ("web2:password", b"by-machine"),
                      ("root-password/password", b"by-generator"),
                      ("password", b"any"),
                      ("shared:motd/banner", b"hello"))
        self.assertEqual(self.secret("web1", "root-password"), b"by-generator")
        self.assertEqual(self.secret("web2", "root-password"), b"by-machine")
        self.assertEqual(self.secret("db1", "root-password"), b"exact")
        self.assertEqual(self.secret("db1", "db"), b"any")

    def test_equally_specific_refused(self):
        before = tree(self.vars)
        p = self.generate(("web1:password", b"one"), ("web1:password", b"two"),
                          ("password", b"x"), ("banner", b"b"), expect=None)
        self.assert_refused(p, "--prompt web1:password=@", "answer%d" % 1, "answer%d" % 2)
        self.assertEqual(tree(self.vars), before)


# ---- unknown and unused --prompt -----------------------------------------------

class UnknownAndUnused(PromptCase):
    GOOD = (("password", b"pw"), ("banner", b"hi"))

    def refused(self, key, *words):
        """generate with the good answers and key: refused naming it and
        words, nothing written."""
        before = tree(self.vars)
        p = self.generate(*self.GOOD, (key, b"x"), expect=None)
        line = self.assert_refused(p, "--prompt %s=@" % key, *words)
        self.assertEqual(tree(self.vars), before)
        self.assertEqual(files_named(self.vars, "copy"), [])
        return line

    def test_unknown_machine(self):
        self.refused("web9:password", "no machine named web9")
        self.refused("web9:root-password/password", "no machine named web9")

    def test_unknown_generator(self):
        self.refused("rootpassword/password", "no generator named rootpassword")
        self.refused("web1:nosuch/password", "no generator named nosuch")

    def test_generator_without_that_prompt(self):
        self.refused("motd/password", "generator motd has no prompt password")
        self.refused("web1:root-password/banner", "generator root-password has no prompt banner")

    def test_misspelt_name(self):
        line = self.refused("pasword", "no generator has a prompt pasword")
        self.assertIn("password", line.split("pasword", 2)[-1])  # the suggestion

    def test_machine_without_that_prompt(self):
        # web1 uses no generator of its own with a prompt db/password, nor
        # a per-machine prompt called banner (motd is shared).
        self.refused("web1:db/password", "machine web1 does not use generator db")
        self.refused("web1:banner", "web1")
        self.refused("web1:motd/banner", "shared:motd/banner")

    def test_unused_when_nothing_is_made(self):
        self.generate(*self.GOOD)
        before = tree(self.vars)
        p = self.generate(("password", b"pw"), expect=None)
        self.assert_refused(p, "--prompt password=@", "answers no prompt")
        self.assertEqual(tree(self.vars), before)

    def test_unused_machine_not_selected(self):
        before = tree(self.vars)
        p = self.vargen("generate", "--machine", "web1",
                        "--prompt", "web1:password=@" + self.file(b"one"),
                        "--prompt", "db1:password=@" + self.file(b"two"),
                        "--prompt", "banner=@" + self.file(b"b"),
                        expect=None, start_new_session=True)
        self.assert_refused(p, "--prompt db1:password=@", "answers no prompt")
        self.assertEqual(tree(self.vars), before)
        self.assertEqual(files_named(self.vars, "copy"), [])

    def test_unused_when_shadowed(self):
        before = tree(self.vars)
        p = self.generate(("password", b"never read"), ("root-password/password", b"r"),
                          ("db1:db/password", b"d"), ("banner", b"b"), expect=None)
        self.assert_refused(p, "--prompt password=@", "more specific")
        self.assertEqual(tree(self.vars), before)

    def test_plan_checks_too(self):
        p = self.vargen("generate", "--plan", "--prompt", "web9:password=@" + self.file(b"x"),
                        expect=None)
        self.assert_refused(p, "--prompt web9:password=@", "no machine named web9")


# ---- no terminal ------------------------------------------------------------------

class NoTerminal(PromptCase):
    def test_error_names_the_prompt_option(self):
        before = tree(self.vars)
        p = self.generate(("banner", b"hi"), expect=None)
        line = self.assert_one_line_error(p)
        self.assertEqual(line, "vargen: error: generator root-password needs prompt password "
                         "for web1 and there is no terminal: give --prompt "
                         "web1:root-password/password=@FILE")
        self.assertEqual(tree(self.vars), before)

    def test_shared(self):
        p = self.generate(("password", b"pw"), expect=None)
        line = self.assert_one_line_error(p)
        self.assertIn("give --prompt shared:motd/banner=@FILE", line)
        self.assertNotIn("passphrase", line)


# ---- prompt files ---------------------------------------------------------------------

class Files(PromptCase):
    SPEC = BYTES_SPEC

    def machines(self):
        return ("web1",)

    def stored(self):
        return {k: self.value("web1", "bytes", k) for k in "hlm"}

    def test_bytes(self):
        self.generate(("h", b"\x00pw\xff\n"), ("l", b"one line\n\n"), ("m", b"a\nb\n"))
        # Only the line prompt loses one trailing newline; the others keep
        # every byte.
        self.assertEqual(self.stored(), {"h": b"\x00pw\xff\n", "l": b"one line\n",
                                         "m": b"a\nb\n"})
        # No newline to remove, or no byte at all: taken as they are.
        self.vargen("generate", "--regenerate", "--all", "--yes",
                    "--prompt", "h=@" + self.file(b""), "--prompt", "l=@" + self.file(b"x"),
                    "--prompt", "m=@" + self.file(b"\n"), start_new_session=True)
        self.assertEqual(self.stored(), {"h": b"", "l": b"x", "m": b"\n"})

    def test_size_bound(self):
        before = tree(self.vars)
        p = self.generate(("h", b"h"), ("l", b"l"), ("m", b"x" * ((1 << 20) + 1)), expect=None)
        self.assert_refused(p, "--prompt m=@", "prompt file", "larger than 1 MiB")
        self.assertEqual(tree(self.vars), before)
        # 1 MiB itself is an answer.
        big = b"x" * (1 << 20)
        self.generate(("h", b"h"), ("l", b"l"), ("m", big))
        self.assertEqual(self.value("web1", "bytes", "m"), big)

    def test_missing(self):
        before = tree(self.vars)
        gone = os.path.join(self.dir, "gone")
        p = self.vargen("generate", "--prompt", "h=@" + self.file(b"h"),
                        "--prompt", "l=@" + self.file(b"l"), "--prompt", "m=@" + gone,
                        expect=None, start_new_session=True)
        line = self.assert_refused(p, "--prompt m=@" + gone)
        self.assertTrue(line.endswith(": prompt file %s: No such file or directory" % gone),
                        line)
        self.assertNotIn("key", line)
        self.assertEqual(tree(self.vars), before)

    def test_named_pipe(self):
        # =@FIFO (what =@<(pass show ...) hands over) is read to its end
        # like standard input: here 100 KiB, more than a pipe holds, so
        # vargen reads while the writer is still writing.
        fifo = os.path.join(self.dir, "answer.fifo")
        os.mkfifo(fifo, 0o600)
        data = b"a\nb\n" * 25600

        def feed():  # open blocks until vargen opens the other end
            with open(fifo, "wb") as w:
                w.write(data)

        # A daemon: if vargen fails before opening the pipe, its exit
        # status fails the test instead of the test waiting for a reader.
        threading.Thread(target=feed, daemon=True).start()
        self.vargen("generate", "--prompt", "h=@" + self.file(b"h"),
                    "--prompt", "l=@" + self.file(b"l"), "--prompt", "m=@" + fifo,
                    start_new_session=True)
        self.assertEqual(self.value("web1", "bytes", "m"), data)

    def test_standard_input(self):
        self.vargen("generate", "--prompt", "h=@" + self.file(b"h"),
                    "--prompt", "l=@-", "--prompt", "m=@" + self.file(b"m"),
                    stdin=b"from a pipe\n", start_new_session=True)
        self.assertEqual(self.value("web1", "bytes", "l"), b"from a pipe")
        p = self.vargen("generate", "--regenerate", "--all", "--yes",
                        "--prompt", "h=@-", "--prompt", "l=@-", "--prompt", "m=@" + self.file(b"m"),
                        stdin=b"x", expect=None, start_new_session=True)
        self.assert_refused(p, "--prompt l=@-", "standard input")


if __name__ == "__main__":
    unittest.main()
