#!/usr/bin/env python3
"""Day-to-day administration (issue 12, first points).

- The spec is found as git finds its repository: -f, else $VARS_SPEC, else
  vars.yaml in the working directory or its nearest parent; the store is
  beside the spec whatever the working directory (also from inside vars/).
- A public key given where an identity belongs (a .pub file, an age1...
  recipient, an SSH public key line) is called a public key, before any
  permission check.

Run as `python3 tests/daily_test.py` with VARGEN and VARSEAL set. Standard
library only.
"""
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import VARGEN, VARSEAL, checked, describe, read, run, write  # noqa: E402
from vars_test import VarsCase  # noqa: E402

SPEC = """\
admins:
  alice: @A@
machines:
  web1:
    generators: [api]
generators:
  api:
    files:
      token: {kind: random}
"""


class SpecFromAnywhere(VarsCase):
    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(SPEC, a=self.alice_r)
        self.varseal("machine", "keygen", "web1")
        self.vargen("generate")

    def test_from_a_subdirectory(self):
        deep = os.path.join(self.vars, "per-machine", "web1", "api")
        for cwd in (deep, self.vars, os.path.join(self.dir, "vars")):
            with self.subTest(cwd=cwd):
                p = run([VARGEN, "check"], cwd=cwd)
                self.assertEqual((p.returncode, p.stdout), (0, b"check: all 2 ok\n"), describe(p))
                p = run([VARSEAL, "get", "-i", self.alice, "web1", "api/token"], cwd=cwd)
                self.assertEqual(p.returncode, 0, describe(p))
                self.assertEqual(len(p.stdout), 44)
        # The spec's errors name it as reached from there.
        write(self.spec, read(self.spec).decode().replace("kind: random", "kind: randomm"),
              0o644)
        p = run([VARGEN, "check"], cwd=deep)
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertRegex(p.stderr.decode(), r"^vargen: error: \.\./\.\./\.\./\.\./vars\.yaml:\d+:\d+: ")

    def test_vars_spec_and_f(self):
        elsewhere = os.path.join(self.dir, "elsewhere")
        os.mkdir(elsewhere)
        env = dict(os.environ, VARS_SPEC=self.spec)
        p = run([VARGEN, "check"], cwd=elsewhere, env=env)
        self.assertEqual((p.returncode, p.stdout), (0, b"check: all 2 ok\n"), describe(p))
        # -f wins over VARS_SPEC.
        other = os.path.join(elsewhere, "vars.yaml")
        write(other, "admins: {}\nmachines: {}\ngenerators: {}\n", 0o644)
        p = run([VARGEN, "check", "-f", other], cwd=elsewhere, env=env)
        self.assertIn(b"no store at", p.stderr, describe(p))
        # No spec here or above: one line saying where it looked and what to do.
        os.unlink(other)
        env.pop("VARS_SPEC")
        p = run([VARGEN, "check"], cwd="/", env=env)
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertEqual(p.stderr.decode(), "vargen: error: no vars.yaml here or in any parent "
                         "directory (give -f SPEC, or set VARS_SPEC)\n")


class PublicKeyAsIdentity(VarsCase):
    def test_public_keys_are_named(self):
        self.admins("alice")
        sealed = os.path.join(self.dir, "x.age")
        checked([VARSEAL, "encrypt", "-r", self.alice_r, "-o", sealed], stdin=b"x")
        age_pub = os.path.join(self.dir, "alice.pub")
        write(age_pub, self.alice_r + "\n", 0o644)
        ssh = os.path.join(self.dir, "id")
        checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ssh])
        os.chmod(ssh + ".pub", 0o644)
        for pub in (age_pub, ssh + ".pub"):
            for extra in ((), ("--insecure-permissions",)):
                with self.subTest(pub=pub, extra=extra):
                    p = run([VARSEAL, "decrypt", "-i", pub, *extra, sealed])
                    line = self.assert_one_line_error(p, "varseal")
                    self.assertEqual(line, "varseal: error: %s: is a public key; give the "
                                     "private key (the identity file it was made from)" % pub)
        # The private key itself still works.
        p = run([VARSEAL, "decrypt", "-i", self.alice, sealed])
        self.assertEqual((p.returncode, p.stdout), (0, b"x"), describe(p))


if __name__ == "__main__":
    unittest.main(verbosity=2)
