#!/usr/bin/env python3
"""The store over its life (issue 10): nothing replaced by surprise, nothing
left readable, no key lost.

A store of three machines and two admins goes through what an ordinary
week does to it: a script comment edited, an admin removed, a machine
retired, a generator dropped, a key line lost in a bad merge, a value set
by hand. Each of the nine observations of issue 10 is one class (O1..O9),
written as it was seen, and fails on the tools from before the issue.
Then:

  P. a plan (`vargen generate --plan`, `vargen prune --plan`) names exactly
     what the following run changes on disk, and writes nothing;
  K. `vargen prune` SIGKILLed at every rename and sync leaves each orphan
     whole or gone and everything else untouched, and the next prune
     finishes (kill -9 during keygen: keygen_test.py);
  T. on a terminal, --regenerate lists what it replaces and asks once,
     default no.

The removed admin's key is tried on every secret with the real `age`.
Run as `python3 tests/store_life_test.py` with VARGEN and VARSEAL set.
Standard library only.
"""
import hashlib
import os
import re
import shutil
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from ptyrun import run_pty  # noqa: E402
from testkit import VARGEN, VARINJECT, VARSEAL, describe, read, run, write  # noqa: E402
from vars_test import AGE, VarsCase, files_named, parse_states  # noqa: E402

STRACE = testkit.STRACE
HAVE_STRACE = testkit.strace_works()

# Three machines, two admins; SSH host keys made by a script, an API
# token per machine, a database password shared by web1 and web2.
SPEC = """\
admins:
  alice: @ALICE@
  bob: @BOB@
machines:
  web1:
    generators: [ssh-host, api, db]
  web2:
    generators: [ssh-host, api, db]
  web3:
    generators: [ssh-host, api]
generators:
  ssh-host:
    files:
      key: {}
      pub: {secret: false}
    script: |
      ssh-keygen -q -t ed25519 -N "" -C host -f "$out/key"
      mv "$out/key.pub" "$out/pub"
  api:
    files:
      token: {kind: random}
  db:
    share: true
    files:
      password: {kind: password}
"""
MACHINES = ("web1", "web2", "web3")


def is_temp(name):
    return name.startswith(".") and name.endswith(".tmp")


def store_tree(vars_dir):
    """{path relative to vars/: sha256} of every file, temporaries excluded
    (files, and the directories a killed prune took out of the store: every
    reader skips them, the next writer removes them)."""
    out = {}
    for d, dirs, files in os.walk(vars_dir):
        dirs[:] = [x for x in dirs if not is_temp(x)]
        for n in files:
            if is_temp(n):
                continue
            p = os.path.join(d, n)
            out[os.path.relpath(p, vars_dir)] = hashlib.sha256(read(p)).hexdigest()
    return out


def var_of(rel):
    """The list/plan name of a store path: web1/api/token, shared/db/password,
    machine-keys/web1; None for records."""
    parts = rel.split("/")
    if parts[0] == "per-machine" and len(parts) == 5:
        return "/".join(parts[1:4])
    if parts[0] == "shared" and len(parts) == 4:
        return "shared/" + "/".join(parts[1:3])
    if parts[0] == "machine-keys" and len(parts) == 3:
        return "machine-keys/" + parts[1]
    return None


def changed_vars(before, after):
    """Names whose files were added, removed or changed between two trees."""
    return {var_of(k) for k in set(before) | set(after)
            if before.get(k) != after.get(k)} - {None}


def plan_lines(text):
    """[(action, name, why)] of a plan's tab-separated lines."""
    out = []
    for line in text.splitlines():
        if line.startswith("plan: "):
            continue
        action, name, why = line.split("\t", 2)
        out.append((action, name, why))
    return out


def varinject(case, *args, expect=0, stdin=None):
    p = run([VARINJECT] + list(args), cwd=case.dir, stdin=stdin)
    if expect is not None:
        case.assertEqual(p.returncode, expect, describe(p))
    return p


VarsCase.varinject = varinject


class LifeCase(VarsCase):
    def setUp(self):
        super().setUp()
        self.admins("alice", "bob")
        self.write_spec(SPEC, alice=self.alice_r, bob=self.bob_r)
        for m in MACHINES:
            self.varseal("machine", "keygen", m)
        self.vargen("generate")
        self.vargen("check")

    def edit_spec(self, old, new, count=1):
        text = read(self.spec).decode()
        self.assertEqual(text.count(old), count, old)
        write(self.spec, text.replace(old, new), 0o644)

    def secrets(self):
        return files_named(self.vars, "secret")

    def host_keys(self):
        return {m: read(self.path(m, "ssh-host", "key")) for m in MACHINES}

    def opens(self, key, path):
        p = run([AGE, "-d", "-i", key, path])
        return p.returncode == 0


# ---- O1. a comment in a script ---------------------------------------------------

class O1CommentInScript(LifeCase):
    # A comment added to ssh-host's script made every host key stale, and a
    # plain generate (or --regenerate without a selection) replaced all three.
    def test_plain_generate_replaces_nothing(self):
        keys, before = self.host_keys(), store_tree(self.vars)
        self.edit_spec("    script: |\n", "    script: |\n      # host keys, ed25519\n")
        states = self.states("check", 4)
        self.assertEqual({k: v[1] for k, v in states.items()},
                         {"%s/ssh-host/%s" % (m, f): "stale" for m in MACHINES
                          for f in ("key", "pub")})
        p = self.vargen("generate", expect=4)
        self.assertIn("vargen accept --generator ssh-host keeps them", p.stderr.decode())
        self.assertIn("vargen generate --regenerate --generator ssh-host replaces them",
                      p.stderr.decode())
        self.assertEqual(store_tree(self.vars), before)
        p = self.vargen("generate", "--regenerate", expect=None)
        self.assertIn("say which", self.assert_one_line_error(p))
        # Named, but not on a terminal and without --yes: refused, unchanged.
        p = self.vargen("generate", "--regenerate", "--generator", "ssh-host", expect=None)
        self.assertIn("--yes", self.assert_one_line_error(p))
        self.assertEqual(store_tree(self.vars), before)
        self.assertEqual(self.host_keys(), keys)
        # Accepting the new definition keeps every value.
        p = self.vargen("accept", "--generator", "ssh-host")
        self.assertIn("values kept", p.stdout.decode())
        self.vargen("check")
        self.assertEqual(self.host_keys(), keys)
        after = store_tree(self.vars)
        self.assertEqual({k for k in after if after[k] != before.get(k)},
                         {"per-machine/%s/ssh-host/%s" % (m, r) for m in MACHINES
                          for r in (".commit", ".generator")})

    def test_regenerate_a_named_machine(self):
        keys = self.host_keys()
        self.edit_spec("    script: |\n", "    script: |\n      # host keys\n")
        p = self.vargen("generate", "--regenerate", "--machine", "web2", "--generator",
                        "ssh-host", "--yes")
        self.assertIn("generated web2/ssh-host: key pub", p.stdout.decode())
        after = self.host_keys()
        self.assertNotEqual(after["web2"], keys["web2"])
        self.assertEqual((after["web1"], after["web3"]), (keys["web1"], keys["web3"]))
        states = self.states("list")
        self.assertEqual(states["web2/ssh-host/key"][1], "ok")
        self.assertEqual(states["web1/ssh-host/key"][1], "stale")


# ---- O2. a machine retired, an admin removed, a generator dropped -------------------

class O2Orphans(LifeCase):
    def test_removed_admin_opens_nothing_after_prune_and_rekey(self):
        web2_files = [p for p in self.secrets() if "/web2/" in p]
        self.assertTrue(web2_files)
        self.edit_spec("    generators: [ssh-host, api, db]\n  web3:",
                       "    generators: [ssh-host, db]\n  web3:")  # web2 keeps no api
        text = read(self.spec).decode()
        text = re.sub(r"  bob: .*\n", "", text)
        text = re.sub(r"  web2:\n    key: .*\n    generators: .*\n", "", text)
        write(self.spec, text, 0o644)
        self.assertNotIn("web2", text)
        p = self.varseal("rekey", "-i", self.alice)
        # Rekey reseals what the spec names; the rest is reported, not ok.
        p = self.vargen("check", expect=4)
        other = testkit.other_rows(p.stdout.decode())
        self.assertEqual(other, {"web2": ("machine", "orphan"),
                                 "machine-keys/web2": ("key", "orphan")})
        self.assertIn("orphan: 2 orphans: not in the spec: vargen prune", p.stderr.decode())
        self.assertTrue(all(self.opens(self.bob, f) for f in web2_files))
        # The plan, then prune removes exactly that, and the rest is bob-free.
        p = self.vargen("prune", "--plan", expect=4)
        self.assertEqual(sorted(n for _, n, _ in plan_lines(p.stdout.decode())),
                         ["machine-keys/web2", "web2"])
        p = self.vargen("prune", expect=None)
        self.assertIn("--yes", self.assert_one_line_error(p))
        self.assertTrue(os.path.isdir(os.path.join(self.vars, "per-machine", "web2")))
        self.vargen("prune", "--yes")
        self.assertFalse(os.path.exists(os.path.join(self.vars, "per-machine", "web2")))
        self.assertFalse(os.path.exists(os.path.join(self.vars, "machine-keys", "web2")))
        self.vargen("check")
        self.assertEqual(self.vargen("prune", "--plan").returncode, 0)
        secrets = self.secrets()
        self.assertEqual(len(secrets), 7)  # web1 and web3: 2 each, db, 2 kept keys
        opened = [f for f in secrets if self.opens(self.bob, f)]
        self.assertEqual(opened, [], "the removed admin opens these")
        self.assertTrue(all(self.opens(self.alice, f) for f in secrets))

    def test_dropped_generator_is_orphan(self):
        text = read(self.spec).decode()
        text = text.replace("    generators: [ssh-host, api]\n", "    generators: [ssh-host]\n")
        write(self.spec, text, 0o644)
        p = self.vargen("check", expect=4)
        self.assertEqual(testkit.other_rows(p.stdout.decode()),
                         {"web3/api": ("generator", "orphan")})
        p = self.vargen("generate", expect=4)  # generate agrees with check
        self.assertIn("vargen prune", p.stderr.decode())
        self.vargen("prune", "--yes")
        self.assertFalse(os.path.exists(os.path.join(self.vars, "per-machine", "web3", "api")))
        self.vargen("check")

    def test_prune_plan_says_why(self):
        # Every reason the survey gives, each once, word for word: what a
        # user reads before removing anything (format/vars/survey.c).
        keys = dict(re.findall(r"  (web\d):\n    key: (\S+)\n", read(self.spec).decode()))
        self.write_spec("""\
admins:
  alice: @ALICE@
  bob: @BOB@
machines:
  web1:
    key: @WEB1@
    generators: [ssh-host, db]
  web2:
    key: @WEB2@
    generators: [api]
generators:
  ssh-host:
    share: true
    files:
      key: {kind: random}
  api:
    files:
      token2: {kind: random}
  db:
    files:
      password: {kind: password}
  spare:
    share: true
    files:
      x: {kind: random}
""", alice=self.alice_r, bob=self.bob_r, web1=keys["web1"], web2=keys["web2"])
        for rel in ("per-machine/web1/gone/x", "shared/spare/x", "shared/gone2/x"):
            os.makedirs(os.path.join(self.vars, rel))
        p = self.vargen("prune", "--plan", expect=4)
        self.assertEqual(sorted(plan_lines(p.stdout.decode())), sorted([
            ("remove", "web1/api", "machine web1 does not use generator api"),
            ("remove", "web1/gone", "generator gone is not in the spec"),
            ("remove", "web1/ssh-host", "generator ssh-host is shared now (kept in shared/ssh-host)"),
            ("remove", "web2/api/token", "generator api has no file token"),
            ("remove", "web2/ssh-host", "generator ssh-host is shared now (kept in shared/ssh-host)"),
            ("remove", "web3", "machine web3 is not in the spec"),
            ("remove", "machine-keys/web3", "machine web3 is not in the spec"),
            ("remove", "shared/db", "generator db is not shared now"),
            ("remove", "shared/gone2", "generator gone2 is not in the spec"),
            ("remove", "shared/spare", "no machine uses generator spare"),
        ]))

# ---- O3. a kept key deleted --------------------------------------------------------------

class O3KeptKeyDeleted(LifeCase):
    def test_check_reports_it_and_key_says_missing(self):
        shutil.rmtree(os.path.join(self.vars, "machine-keys", "web2"))
        p = self.vargen("check", expect=4)
        self.assertEqual(testkit.other_rows(p.stdout.decode()),
                         {"machine-keys/web2": ("key", "missing")})
        self.assertIn("restore", p.stderr.decode())
        p = self.varseal("machine", "key", "-i", self.alice, "web2", expect=None)
        line = self.assert_one_line_error(p, "varseal")
        self.assertIn("missing", line)
        self.assertNotIn("not made by", line)

    def test_kept_key_sealed_to_a_removed_admin(self):
        self.edit_spec("  bob: %s\n" % self.bob_r, "")
        p = self.vargen("check", expect=4)
        self.assertEqual(testkit.other_rows(p.stdout.decode())["machine-keys/web1"],
                         ("key", "wrong-recipients"))
        self.varseal("rekey", "-i", self.alice)
        self.vargen("check")
        self.assertFalse(self.opens(self.bob, os.path.join(self.vars, "machine-keys", "web1",
                                                           "secret")))


# ---- O4. a key line lost in a merge ---------------------------------------------------------

class O4KeyLineLost(LifeCase):
    def test_keygen_restores_instead_of_replacing(self):
        kept = read(os.path.join(self.vars, "machine-keys", "web1", "secret"))
        text = read(self.spec).decode()
        line = re.search(r"  web1:\n(    key: (\S+)\n)", text)
        write(self.spec, text.replace(line.group(1), ""), 0o644)
        p = self.vargen("check", expect=4)
        self.assertEqual(testkit.other_rows(p.stdout.decode())["machine-keys/web1"],
                         ("key", "no-key"))
        p = self.varseal("machine", "keygen", "web1", expect=None)
        self.assertIn("-i", self.assert_one_line_error(p, "varseal"))
        self.assertEqual(read(os.path.join(self.vars, "machine-keys", "web1", "secret")), kept)
        self.varseal("machine", "keygen", "-i", self.alice, "web1")
        self.assertIn("key: " + line.group(2), read(self.spec).decode())
        self.assertEqual(read(os.path.join(self.vars, "machine-keys", "web1", "secret")), kept)
        self.vargen("check")
        # --force works (it once shared its option code with --passphrase-file).
        self.varseal("machine", "keygen", "--force", "web1")
        self.assertNotIn("key: " + line.group(2), read(self.spec).decode())


# ---- O5. a leftover check file ---------------------------------------------------------------

class O5LeftoverCheckFile(VarsCase):
    def test_leftover_does_not_matter(self):
        self.admins("alice")
        self.write_spec("admins:\n  alice: @A@\nmachines:\n  m:\n    generators: []\n"
                        "generators: {}\n", a=self.alice_r)
        write(self.spec + ".varseal-check", b"left by an older varseal\n")
        self.varseal("machine", "keygen", "m")
        self.assertIn("key: age1", read(self.spec).decode())
        self.vargen("check")


# ---- O6. generate and check agree ---------------------------------------------------------------

class O6GenerateAndCheckAgree(LifeCase):
    def test_new_admin_and_new_sharer(self):
        self.admins("carol")
        self.edit_spec("  bob: %s\n" % self.bob_r, "  bob: %s\n  carol: %s\n"
                       % (self.bob_r, self.carol_r))
        self.edit_spec("    generators: [ssh-host, api]\ngenerators:",
                       "    generators: [ssh-host, api, db]\ngenerators:")
        p = self.vargen("generate", expect=4)
        self.assertIn("vargen generate -i ADMIN_KEY", p.stderr.decode())
        self.assertIn("left\tshared/db/password\twrong-recipients", p.stdout.decode())
        self.vargen("check", expect=4)
        p = self.vargen("generate", "-i", self.alice)
        self.assertIn("resealed shared/db/password", p.stdout.decode())
        self.vargen("check")
        for f in self.secrets():
            self.assertTrue(self.opens(self.carol, f), f)

    def test_check_hints_per_state(self):
        self.edit_spec("      token: {kind: random}", "      token: {kind: random, length: 20}")
        self.admins("carol")
        self.edit_spec("  bob: %s\n" % self.bob_r, "  bob: %s\n  carol: %s\n"
                       % (self.bob_r, self.carol_r))
        os.makedirs(os.path.join(self.vars, "per-machine", "old-vm", "api", "token"))
        p = self.vargen("check", expect=4)
        hints = p.stderr.decode().splitlines()
        self.assertRegex(hints[0], r"^vargen: check: \d+ of \d+ need attention$")
        joined = "\n".join(hints[1:])
        self.assertIn("stale: 3 files: vargen generate --regenerate --generator api replaces "
                      "them; vargen accept --generator api keeps them", joined)
        self.assertIn("wrong-recipients:", joined)
        self.assertIn("varseal rekey -i ADMIN_KEY", joined)
        self.assertIn("orphan: 1 orphan: not in the spec: vargen prune", joined)


# ---- O7. no store is not an empty store --------------------------------------------------------

class O7NoStore(VarsCase):
    def test_missing_store(self):
        self.admins("alice")
        self.write_spec("admins:\n  alice: @A@\nmachines:\n  m:\n    generators: [g]\n"
                        "generators:\n  g:\n    files:\n      a: {kind: random}\n",
                        a=self.alice_r)
        self.varseal("machine", "keygen", "m")
        typo = os.path.join(self.dir, "typo")
        store = ("--store", typo)
        for name, args in (("vargen", ("check",) + store), ("vargen", ("list",) + store),
                           ("vargen", ("accept", "--all") + store),
                           ("vargen", ("prune",) + store),
                           ("varseal", ("rekey", "-i", self.alice) + store),
                           ("varseal", ("rekey", "--plan") + store),
                           ("varseal", ("get", "-i", self.alice) + store + ("m", "g/a")),
                           ("varseal", ("set",) + store + ("m", "g/a")),
                           ("varseal", ("machine", "key", "-i", self.alice) + store + ("m",)),
                           ("varinject", ("--dry-run", "--machine", "m", "-i", self.alice,
                                          "--hypervisor", "qemu") + store + ("--", "qemu")),
                           ("varinject", ("install", "--machine", "m", "-i", self.alice)
                            + store + ("/dev/shm/never",))):
            with self.subTest(args=args):
                tool = {"vargen": self.vargen, "varseal": self.varseal,
                        "varinject": self.varinject}[name]
                p = tool(*args, expect=None, stdin=b"x")
                line = self.assert_one_line_error(p, name)
                self.assertIn("no store at %s" % typo, line)
                self.assertFalse(os.path.exists(typo), args)
        p = self.vargen("generate", "--store", typo, "--plan", expect=4)
        self.assertIn("would create", p.stdout.decode())
        self.assertFalse(os.path.exists(typo))
        p = self.vargen("generate", "--store", typo)
        self.assertIn("creating a new store at %s/vars" % typo, p.stderr.decode())
        self.vargen("check", "--store", typo)


# ---- O8. varseal set changes one file ---------------------------------------------------------

class O8HandSet(VarsCase):
    SPEC = """\
admins:
  alice: @A@
machines:
  m:
    generators: [g, r]
generators:
  g:
    files:
      a: {}
      b: {}
    script: printf one > "$out/a"; printf one > "$out/b"
  r:
    files:
      x: {kind: random}
      y: {kind: random}
"""

    def setUp(self):
        super().setUp()
        self.admins("alice")
        self.write_spec(self.SPEC, a=self.alice_r)
        self.varseal("machine", "keygen", "m")

    def test_set_after_a_script_change(self):
        self.vargen("generate")
        self.edit("printf one", "printf two")
        self.varseal("set", "m", "g/a", stdin=b"by hand")
        states = self.states("list")
        self.assertEqual(states["m/g/a"][1], "hand-set")
        self.assertEqual(states["m/g/b"][1], "stale")
        self.vargen("check", expect=4)
        self.vargen("generate", expect=4)
        self.assertEqual(self.open_secret(self.alice, self.path("m", "g", "a")), b"by hand")
        self.vargen("accept", "--generator", "g")
        self.assertEqual(self.states("list")["m/g/a"][1], "hand-set")
        self.vargen("check")

    def test_set_next_to_a_missing_file(self):
        self.varseal("set", "m", "g/a", stdin=b"mine")
        self.varseal("set", "m", "r/x", stdin=b"mine too")
        p = self.vargen("generate", expect=4)  # g's files are made together
        self.assertIn("made together", p.stdout.decode())
        self.assertEqual(self.open_secret(self.alice, self.path("m", "g", "a")), b"mine")
        # r's files are independent: y is made, x kept.
        self.assertEqual(self.open_secret(self.alice, self.path("m", "r", "x")), b"mine too")
        states = self.states("list")
        self.assertEqual((states["m/r/x"][1], states["m/r/y"][1]), ("hand-set", "ok"))
        self.assertEqual(states["m/g/b"][1], "missing")
        self.varseal("set", "m", "g/b", stdin=b"b too")
        self.vargen("check")
        self.vargen("generate", "--regenerate", "--generator", "g", "--yes")
        self.assertEqual(self.open_secret(self.alice, self.path("m", "g", "a")), b"one")
        self.assertEqual(self.states("list")["m/g/a"][1], "ok")

    def edit(self, old, new):
        text = read(self.spec).decode()
        write(self.spec, text.replace(old, new), 0o644)


# ---- O9. reserved and equivalent names --------------------------------------------------------

class O9Names(VarsCase):
    def test_machine_named_shared(self):
        self.admins("alice")
        self.write_spec("admins:\n  alice: @A@\nmachines:\n  shared:\n    generators: []\n"
                        "generators: {}\n", a=self.alice_r)
        p = self.vargen("generate", expect=None)
        line = self.assert_one_line_error(p)
        self.assertRegex(line, r"vars\.yaml:4:3: .*shared.*reserved")

    def test_ssh_comment(self):
        key = os.path.join(self.dir, "alice_ssh")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "laptop", "-f", key],
            check=True)
        pub = read(key + ".pub").decode().strip()
        spec = ("admins:\n  alice: \"@A@\"\nmachines:\n  m:\n    generators: [g]\n"
                "generators:\n  g:\n    files:\n      a: {kind: random}\n")
        self.write_spec(spec, a=pub)
        self.varseal("machine", "keygen", "m")
        text = read(self.spec).decode()
        self.vargen("generate")
        write(self.spec, text.replace(" laptop", " desktop"), 0o644)
        self.vargen("check")
        self.assertEqual(self.vargen("generate", "--plan").returncode, 0)


# ---- P. plans match what the run does -------------------------------------------------------

class PPlans(LifeCase):
    def run_plan_then_run(self, *args):
        """The plan for args, the store unchanged by it, then the run: the
        names the plan would make, replace or reseal are exactly those
        whose files changed, and what it leaves is what check reports."""
        before = store_tree(self.vars)
        p = self.vargen("generate", "--plan", *args, expect=4)
        self.assertEqual(store_tree(self.vars), before)
        plan = plan_lines(p.stdout.decode())
        p = self.vargen("generate", *args, expect=None)
        self.assertIn(p.returncode, (0, 4), describe(p))
        changed = changed_vars(before, store_tree(self.vars))
        self.assertEqual(changed, {n for a, n, _ in plan if a in ("make", "replace", "reseal")})
        left = {n for a, n, _ in plan if a == "left"}
        selection = [a for i, a in enumerate(args)
                     if a in ("--machine", "--generator") or
                     (i and args[i - 1] in ("--machine", "--generator"))]
        p2 = self.vargen("check", *selection, expect=None)
        self.assertEqual(set(parse_states(p2.stdout.decode())) |
                         set(testkit.other_rows(p2.stdout.decode())), left)
        self.assertEqual((p.returncode, p2.returncode), (4, 4) if left else (0, 0))
        return {a for a, _, _ in plan}

    def test_generate_plan_matches_the_run(self):
        # A new admin (reseal), a new machine (make), a changed length
        # (stale: left, then replaced), a retired machine's files (orphan).
        self.admins("carol")
        text = read(self.spec).decode()
        text = text.replace("  bob: %s\n" % self.bob_r, "  bob: %s\n  carol: %s\n"
                            % (self.bob_r, self.carol_r))
        text = text.replace("generators:\n  ssh-host:", "  web4:\n    key: %s\n"
                            "    generators: [ssh-host, api]\ngenerators:\n  ssh-host:"
                            % self.carol_r)
        text = text.replace("      token: {kind: random}", "      token: {kind: random, length: 20}")
        write(self.spec, text, 0o644)
        os.makedirs(os.path.join(self.vars, "per-machine", "old-vm", "api", "token"))
        actions = self.run_plan_then_run("-i", self.alice)
        self.assertEqual(actions, {"make", "reseal", "left"})
        actions = self.run_plan_then_run("--regenerate", "--generator", "api", "--yes")
        self.assertEqual(actions, {"replace"})
        self.vargen("prune", "--yes")
        self.vargen("check")

    def test_nothing_to_do(self):
        p = self.vargen("generate", "--plan")
        self.assertEqual(p.stdout.decode(), "plan: nothing to do; nothing written\n")
        p = self.vargen("prune", "--plan")
        self.assertEqual(p.stdout.decode(), "plan: nothing to remove; nothing written\n")


# ---- K. kill -9 during prune ----------------------------------------------------------------

@unittest.skipUnless(HAVE_STRACE, "needs strace, allowed to trace (scripts/deps.sh)")
class KKillDuringPrune(LifeCase):
    def test_kill_at_every_rename_and_sync(self):
        # Retire web2 and web3, drop web1's api: five orphans.
        text = read(self.spec).decode()
        text = re.sub(r"  web[23]:\n    key: .*\n    generators: .*\n", "", text)
        text = text.replace("[ssh-host, api, db]", "[ssh-host, db]")
        write(self.spec, text, 0o644)
        pristine = store_tree(self.vars)
        snapshot = {rel: read(os.path.join(self.vars, rel)) for rel in pristine}
        orphans = [r for _, r, _ in plan_lines(self.vargen("prune", "--plan",
                                                           expect=4).stdout.decode())]
        self.assertEqual(len(orphans), 5, orphans)
        prefixes = {"web2": "per-machine/web2/", "web3": "per-machine/web3/",
                    "web1/api": "per-machine/web1/api/",
                    "machine-keys/web2": "machine-keys/web2/",
                    "machine-keys/web3": "machine-keys/web3/"}
        kills = 0
        for calls in ("rename,renameat,renameat2", "fsync,fdatasync,syncfs"):
            for n in range(1, 16):
                shutil.rmtree(self.vars)
                for rel, data in snapshot.items():
                    os.makedirs(os.path.dirname(os.path.join(self.vars, rel)), exist_ok=True)
                    write(os.path.join(self.vars, rel), data)
                p = run([STRACE, "-f", "-qq", "-o", "/dev/null", "-e",
                         "inject=%s:signal=SIGKILL:when=%d" % (calls, n), VARGEN, "prune",
                         "--yes"], cwd=self.dir, env=testkit.traced_env())
                now = store_tree(self.vars)
                for name, prefix in prefixes.items():
                    have = {k: v for k, v in now.items() if k.startswith(prefix)}
                    had = {k: v for k, v in pristine.items() if k.startswith(prefix)}
                    self.assertIn(have, (had, {}), "%s after a kill at %s #%d: half there"
                                  % (name, calls, n))
                rest = {k: v for k, v in now.items()
                        if not any(k.startswith(x) for x in prefixes.values())}
                self.assertEqual(rest, {k: v for k, v in pristine.items()
                                        if not any(k.startswith(x) for x in prefixes.values())})
                if p.returncode == 0:
                    break
                self.assertIn(p.returncode, (-9, 137), describe(p))
                kills += 1
                self.vargen("check", expect=None)
                self.vargen("prune", "--yes")
                self.varseal("rekey", "-i", self.alice)  # db lost a sharer
                self.vargen("check")
                leftovers = [d for d in os.listdir(self.vars) if d.endswith(".tmp")]
                self.assertEqual(leftovers, [])
        self.assertGreaterEqual(kills, 6)
        sys.stderr.write("[%d kills] " % kills)


# ---- D. dependencies nested deep ------------------------------------------------------------

class DDiamonds(VarsCase):
    # Which existing values a new value would change is found in one pass:
    # a walk along every path takes 2^N steps on N chained diamonds (on 28,
    # minutes: the plan below then runs into its 60 s limit).
    def test_chained_diamonds(self):
        self.admins("alice")
        levels = 28
        gens = ["generators:"]
        names = []
        for k in range(levels):
            for side in "ab":
                deps = "[a%d, b%d]" % (k - 1, k - 1) if k else "[]"
                gens.append("  %s%d:\n    dependencies: %s\n    files:\n      v: {secret: false}\n"
                            "    script: printf x > \"$out/v\"" % (side, k, deps))
                names.append("%s%d" % (side, k))
        spec = ("admins:\n  alice: @A@\nmachines:\n  m:\n    generators: [%s]\n"
                % ", ".join(names)) + "\n".join(gens) + "\n"
        self.write_spec(spec, a=self.alice_r)
        self.varseal("machine", "keygen", "m")
        p = self.vargen("generate", "--plan", expect=4, timeout=60)
        self.assertEqual(len(plan_lines(p.stdout.decode())), 2 * levels)
        self.vargen("generate", timeout=120)
        os.unlink(self.path("m", "a0", "v", "value"))
        p = self.vargen("generate", expect=4, timeout=60)
        self.assertIn("made from it, exists", p.stdout.decode())


# ---- T. the question on a terminal ------------------------------------------------------------

class TTerminal(LifeCase):
    def test_asks_once_default_no(self):
        keys = self.host_keys()
        self.edit_spec("    script: |\n", "    script: |\n      # x\n")
        cmd = [VARGEN, "generate", "-f", self.spec, "--regenerate", "--generator", "ssh-host"]
        rc, tty, err, left = run_pty(cmd, [(b"[y/N] ", b"")])
        self.assertEqual((rc, left), (1, []), err)
        self.assertIn(b"replace\tweb1/ssh-host/key", err)
        self.assertIn(b"not confirmed", err)
        self.assertEqual(self.host_keys(), keys)
        rc, tty, err, left = run_pty(cmd, [(b"[y/N] ", b"y")])
        self.assertEqual((rc, left), (0, []), err)
        self.assertTrue(all(self.host_keys()[m] != keys[m] for m in MACHINES))
        self.vargen("check")


if __name__ == "__main__":
    for tool in (VARGEN, VARSEAL, AGE):
        if not os.access(tool, os.X_OK):
            sys.exit("store_life_test: %s is not an executable" % tool)
    unittest.main(verbosity=2)
