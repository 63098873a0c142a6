#!/usr/bin/env python3
"""Issue 13: a clan vars + SOPS store, and single SOPS files, imported into
a vars store, verified, in one command.

  I1. `vargen import clan DIR` over every clan fixture of
      ../shared/testdata/sops (garage-store, service-dummy-test: clan vars;
      legacy-secrets: the older `clan secrets` layout): the same admins,
      machines, machine keys and generators in the new spec, `vargen check`
      all ok (exit 0), and every imported file, read back with `varseal
      get`, is byte for byte what an independent decryption of its source
      gives (the `age` CLI for the data key, Python's AES-GCM for the value)
      and what the fixtures' README says; public values are the source's
      bytes; kept machine keys are clan's and their public key is the
      machine's key.json.
  I2. `--plan` with no key lists every admin, machine, generator, kept key
      and file, exits 4, and writes nothing.
  I3. Refusals, each with its own one-line error and neither store nor spec
      left behind, the damage put in the last secret of the traversal (the
      plan's last line): a tampered value, a tampered MAC, a truncated
      file, Shamir key groups, a pgp-only file, a wrong key (exit 3); with
      --ignore-mac a bad MAC is imported with the warning line. A failure
      after the store was written (the spec's rename made to fail with
      strace, and a rename in the middle of the store's commit) leaves
      neither.
  I4. Symlinks in the source are read as clan means them, never followed:
      a `secret` that is a symlink to a (valid) file outside DIR, a
      generator directory that is one, a machines/ link leading outside
      DIR: refused, nothing written, the outside files untouched. So is
      what clan's layout does not hold, each with its own message: no
      sops/users, a machine called shared (in sops/machines or in
      vars/per-machine), a generator without files, a hidden entry, an
      entry a secret's directory does not have, a file name the spec
      cannot hold.
  I5. End to end: the garage store imported, `varseal machine key` gives
      the imported machine key, `varinject --dry-run` for machine server
      lists the imported credentials, and the real `age -d -i` opens each
      of the machine's imported secrets with that key.
  I6. Imported generators in daily use: generate never makes nor replaces
      them (--regenerate --all included), a missing one is reported with
      the hint to import again or varseal set, and varseal set mends it.
      The spec's `imported:` key is refused with line and column when
      misused.
  I7. `varseal import-sops FILE --to MACHINE|shared GEN` for every SOPS
      file of the fixtures (JSON, YAML, dotenv of sops-age; sops-nix's
      YAML): one file per value (keys joined with '.', list items by
      index), each the text `sops -d` prints (the sops-age plaintext
      secret.json, independent decryption), vargen check all ok; the spec
      edited in place (comments kept) in block and flow styles; --plan
      without a key writes nothing; a generator that exists, file names
      that collide or are not valid, a wrong key, a tampered value are
      refused with nothing written; values sops left unencrypted become
      public values; a shared generator no machine uses is kept for the
      admins and resealed to a machine once one lists it.

Run as `python3 tests/import_test.py` with VARSEAL, VARGEN, VARINJECT and
SHARED_DIR set (defaults under build/ and ../shared). Needs the `age` CLI
and Python's `cryptography` and `yaml` modules (the independent SOPS
reader); strace for the late-failure test (skipped without it).
"""
import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import (SHARED_DIR, VARGEN, VARINJECT, VARSEAL, describe, read, run,  # noqa: E402
                     write)

try:
    import yaml
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # pragma: no cover
    yaml = AESGCM = None

AGE = shutil.which("age")
STRACE = shutil.which("strace")
TIMEOUT = 120
SOPS = os.path.join(SHARED_DIR, "testdata", "sops")
CLAN = os.path.join(SOPS, "clan-core")
ADMIN_KEY = os.path.join(CLAN, "test-age-key.txt")
LEGACY_KEY = os.path.join(CLAN, "legacy-secrets", "key.age")
ENC_RE = re.compile(r"^ENC\[AES256_GCM,data:([^,]*),iv:([^,]*),tag:([^,]*),type:(\w+)\]$")

# The README's expectations (ellipses: only the ends are printed there).
README = {
    ("garage-store", "shared/garage-shared/rpc_secret"):
        b"5dfb964e843eec1a7412de092ec165deeefc78cc68a7f3a7833023e03ba42914\n",
    ("garage-store", "server/garage/admin_token"): (b"CcB3x9nq", b"ESg=\n"),
    ("garage-store", "server/garage/metrics_token"): (b"nHv0cNcl", b"nng=\n"),
    ("service-dummy-test", "peer1/new-service/a-secret"): b"a-secret",
    ("legacy-secrets", "shared/secret/secret"): b"foo",
}


# ---- an independent SOPS reader and writer (age CLI + AES-GCM) ----------------------

def age_decrypt(data, identity):
    """The age CLI's plaintext of data with identity, or None."""
    p = run([AGE, "-d", "-i", identity], stdin=data, timeout=TIMEOUT)
    return p.stdout if p.returncode == 0 else None


def data_key(meta, identity):
    for stanza in meta.get("age") or []:
        key = age_decrypt(stanza["enc"].encode(), identity)
        if key is not None:
            return key
    raise AssertionError("no age stanza opens with %s" % identity)


def open_enc(key, enc, aad):
    m = ENC_RE.match(enc)
    assert m, enc
    data, iv, tag = (base64.b64decode(x) for x in m.group(1, 2, 3))
    return AESGCM(key).decrypt(iv, data + tag, aad.encode())


def sops_leaves(doc, suffix="_unencrypted"):
    """(file name, AAD, value, encrypted) of every value of a parsed
    YAML/JSON document in document order: names join keys with '.' and list
    items by index, AADs join keys with ':' (list items: their parent's)."""
    out = []

    def walk(node, names, keys, clear):
        if isinstance(node, dict):
            for k, v in node.items():
                if not names and k == "sops":
                    continue
                walk(v, names + [str(k)], keys + [str(k)], clear or str(k).endswith(suffix))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, names + [str(i)], keys, clear)
        elif node is not None:
            out.append((".".join(names), ":".join(keys) + ":", node, not clear))
    walk(doc, [], [], False)
    return out


def sops_plaintexts(path, identity):
    """{file name: bytes as sops -d prints it} of a SOPS file, decrypted
    here without varseal (binary, YAML, JSON, dotenv)."""
    text = read(path).decode()
    if path.endswith(".env"):
        pairs = [line.split("=", 1) for line in text.splitlines() if line and line[0] != "#"]
        meta = {"age": []}
        for k, v in pairs:
            m = re.match(r"^sops_age__list_(\d+)__map_enc$", k)
            if m:
                meta["age"].append({"enc": v.replace("\\n", "\n")})
        key = data_key(meta, identity)
        return {k: open_enc(key, v, k + ":") for k, v in pairs if not k.startswith("sops_")}
    doc = yaml.safe_load(text) if path.endswith((".yaml", ".yml")) else json.loads(text)
    key = data_key(doc["sops"], identity)
    out = {}
    for name, aad, value, encrypted in sops_leaves(doc):
        if name == "data" and not path.endswith((".yaml", ".yml", ".json")):
            out[name] = open_enc(key, value, aad)
        elif encrypted:
            out[name] = open_enc(key, value, aad)
        else:
            out[name] = str(value).encode()
    return out


def enc_value(key, plaintext, aad):
    iv = os.urandom(32)
    sealed = AESGCM(key).encrypt(iv, plaintext, aad.encode())
    return "ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:str]" % tuple(
        base64.b64encode(x).decode() for x in (sealed[:-16], iv, sealed[-16:]))


def sops_json(pairs, recipient):
    """A SOPS JSON file of the ordered (key path, string) pairs (a key
    path: a tuple of keys), sealed to the age recipient, its MAC right."""
    key = os.urandom(32)
    doc, mac = {}, hashlib.sha512()
    for path, value in pairs:
        node = doc
        for k in path[:-1]:
            node = node.setdefault(k, {})
        mac.update(value.encode())
        clear = any(k.endswith("_unencrypted") for k in path)
        node[path[-1]] = value if clear else enc_value(key, value.encode(), ":".join(path) + ":")
    armored = run([AGE, "-a", "-r", recipient], stdin=key, check=True).stdout.decode()
    when = "2025-01-01T00:00:00Z"
    doc["sops"] = {"age": [{"recipient": recipient, "enc": armored}], "lastmodified": when,
                   "mac": enc_value(key, mac.hexdigest().upper().encode(), when),
                   "unencrypted_suffix": "_unencrypted", "version": "3.9.0"}
    return json.dumps(doc, indent=1)


# ---- helpers --------------------------------------------------------------------------

def key_copy(src, dst):
    """A test key with the mode a key file must have (the fixtures are 0444)."""
    return write(dst, read(src), 0o600)


def copy_repo(src, dst):
    """A writable copy of a fixture repository (links copied as they are)."""
    shutil.copytree(src, dst, symlinks=True)
    for root, dirs, files in os.walk(dst):
        for n in dirs + files:
            p = os.path.join(root, n)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)
    os.chmod(dst, os.stat(dst).st_mode | stat.S_IWUSR)
    return dst


def snapshot(top):
    """Every entry under top: (relative name, type, mode, content)."""
    out = []
    for name, st, data in testkit.walk_entries(top, read_links=True):
        out.append((name, stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), data))
    return sorted(out, key=lambda e: e[0])


def plan_rows(text):
    """(action, name, why) of a plan's lines, and its summary line."""
    rows, summary = [], None
    for line in text.splitlines():
        if line.startswith("plan: "):
            summary = line
        else:
            parts = line.split("\t")
            assert len(parts) == 3, "not ACTION<TAB>NAME<TAB>WHY: %r" % line
            rows.append(tuple(parts))
    return rows, summary


def last_secret(plan_text):
    """The source path of the last secret the plan imports."""
    rows, _ = plan_rows(plan_text)
    whys = [why for action, _, why in rows if action == "import" and "secret" in why]
    return whys[-1].split(", from ", 1)[1]


def clan_sources(repo):
    """{store name: (kind, source path)} of a clan repository, walked here
    independently: per-machine and shared vars, sops/secrets (machine keys
    <m>-age.key, the rest the older layout's secrets)."""
    out = {}
    machines = set(os.listdir(os.path.join(repo, "sops", "machines"))) \
        if os.path.isdir(os.path.join(repo, "sops", "machines")) else set()
    for layout, owner_depth in (("per-machine", 1), ("shared", 0)):
        top = os.path.join(repo, "vars", layout)
        if not os.path.isdir(top):
            continue
        for root, dirs, files in os.walk(top):
            for kind in ("secret", "value"):
                if kind in files:
                    rel = os.path.relpath(root, top).split(os.sep)
                    name = "/".join(rel if owner_depth else ["shared"] + rel)
                    out[name] = (kind, os.path.join(root, kind))
    secrets_dir = os.path.join(repo, "sops", "secrets")
    for name in sorted(os.listdir(secrets_dir)) if os.path.isdir(secrets_dir) else []:
        path = os.path.join(secrets_dir, name, "secret")
        if name.endswith("-age.key") and name[:-8] in machines:
            out["machine-keys/" + name[:-8]] = ("key", path)
        else:
            out["shared/%s/secret" % name] = ("secret", path)
    return out


@unittest.skipUnless(AGE and AESGCM and yaml, "needs the age CLI and Python's cryptography "
                     "and yaml modules")
class ImportCase(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        testkit.skip_unless_built(VARSEAL, VARGEN, VARINJECT)
        if not os.path.isdir(CLAN):
            raise unittest.SkipTest("no fixtures at %s" % SOPS)

    def setUp(self):
        self.dir = testkit.temp_dir(self, "import_test.")
        self.admin = key_copy(ADMIN_KEY, os.path.join(self.dir, "clan-admin.key"))
        self.legacy = key_copy(LEGACY_KEY, os.path.join(self.dir, "legacy.key"))

    def tool(self, *cmd, cwd=None, **kw):
        return run(list(cmd), cwd=cwd or self.dir, timeout=TIMEOUT, **kw)

    def ok(self, *cmd, **kw):
        p = self.tool(*cmd, **kw)
        self.assertEqual(p.returncode, 0, describe(p))
        return p

    def out_dir(self, name):
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        return d

    def import_clan(self, repo, out, *extra):
        return self.tool(VARGEN, "import", "clan", repo, "-i", self.admin, "-i", self.legacy,
                         *extra, cwd=out)

    def assert_nothing_written(self, out, before=None):
        """No spec, no store (and nothing else new) in out."""
        self.assertFalse(os.path.lexists(os.path.join(out, "vars.yaml")), os.listdir(out))
        self.assertFalse(os.path.lexists(os.path.join(out, "vars")), os.listdir(out))
        if before is not None:
            self.assertEqual(snapshot(out), before)

    def get(self, out, owner, gen_file, identity=None):
        p = self.ok(VARSEAL, "get", "-i", identity or self.admin, owner, gen_file, cwd=out)
        return p.stdout

    def check_all_ok(self, out):
        p = self.tool(VARGEN, "check", cwd=out)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertRegex(p.stdout.decode(), r"^check: all \d+ ok\n$")


class I1ClanFixtures(ImportCase):
    """I1 and I2 over every clan fixture."""

    def expected(self, repo, kind, path):
        if kind == "value":
            return read(path)
        for identity in (self.admin, self.legacy):
            doc = json.loads(read(path))
            try:
                key = data_key(doc["sops"], identity)
            except AssertionError:
                continue
            return open_enc(key, doc["data"], "data:")
        raise AssertionError("%s opens with no test key" % path)

    def check_fixture(self, name):
        repo = os.path.join(CLAN, name)
        out = self.out_dir(name)
        sources = clan_sources(repo)
        before = snapshot(out)
        repo_before = snapshot(repo)
        # I2: the plan needs no key, names everything, writes nothing.
        p = self.tool(VARGEN, "import", "clan", repo, "--plan", cwd=out)
        self.assertEqual(p.returncode, 4, describe(p))
        rows, summary = plan_rows(p.stdout.decode())
        self.assertRegex(summary, r"^plan: \d+ admins?, .* to import into vars.yaml and "
                         r"\./vars; nothing written$")
        imported = {n for a, n, _ in rows if a == "import"}
        self.assertEqual(imported, set(sources), p.stdout.decode())
        added = {n for a, n, _ in rows if a == "add"}
        for user in os.listdir(os.path.join(repo, "sops", "users")):
            self.assertIn("admins/" + user, added)
        for m in os.listdir(os.path.join(repo, "sops", "machines")):
            self.assertIn("machines/" + m, added)
        gens = {n.split("/")[1] for n in sources if not n.startswith("machine-keys/")}
        self.assertEqual({n[len("generators/"):] for n in added if n.startswith("generators/")},
                         gens)
        self.assert_nothing_written(out, before)
        # I1: the import, then check and every value.
        p = self.import_clan(repo, out)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertEqual(snapshot(repo), repo_before)
        self.check_all_ok(out)
        spec = yaml.safe_load(read(os.path.join(out, "vars.yaml")))
        for user in os.listdir(os.path.join(repo, "sops", "users")):
            pub = json.loads(read(os.path.join(repo, "sops", "users", user, "key.json")))
            pub = pub[0] if isinstance(pub, list) else pub
            self.assertEqual(spec["admins"][user], pub["publickey"])
        for m in os.listdir(os.path.join(repo, "sops", "machines")):
            pub = json.loads(read(os.path.join(repo, "sops", "machines", m, "key.json")))
            pub = pub[0] if isinstance(pub, list) else pub
            self.assertEqual(spec["machines"][m]["key"], pub["publickey"])
        for gen in spec["generators"].values():
            self.assertEqual(gen["imported"], "clan")
        for store_name, (kind, path) in sorted(sources.items()):
            with self.subTest(fixture=name, file=store_name):
                want = self.expected(repo, kind, path)
                if kind == "key":
                    machine = store_name.split("/")[1]
                    got = self.ok(VARSEAL, "machine", "key", "-i", self.admin, machine,
                                  cwd=out).stdout
                    self.assertEqual(got, want)
                    mkey = write(os.path.join(self.dir, machine + ".key"), got, 0o600)
                    pub = self.ok(AGE + "-keygen", "-y", mkey).stdout.decode().strip()
                    self.assertEqual(pub, spec["machines"][machine]["key"])
                    continue
                owner, gen_file = store_name.split("/", 1)
                got = self.get(out, owner, gen_file,
                               self.legacy if name == "legacy-secrets" else self.admin)
                self.assertEqual(got, want)
                readme = README.get((name, store_name))
                if isinstance(readme, tuple):
                    self.assertTrue(got.startswith(readme[0]) and got.endswith(readme[1]), got)
                elif readme is not None:
                    self.assertEqual(got, readme)
                secret = os.path.join(out, "vars", "per-machine" if owner != "shared" else "",
                                      *([owner] if owner != "shared" else ["shared"]),
                                      *gen_file.split("/"), "secret")
                self.assertEqual(os.path.exists(secret), kind == "secret", secret)

    def test_garage_store(self):
        self.check_fixture("garage-store")
        key = self.ok(VARSEAL, "machine", "key", "-i", self.admin, "server",
                      cwd=os.path.join(self.dir, "garage-store")).stdout
        self.assertTrue(key.startswith(b"AGE-SECRET-KEY-180M75") and key.endswith(b"G7P8TU"))
        # The new spec holds public keys only and goes to git: 0644 despite
        # the tools' umask 077.
        spec = os.path.join(self.dir, "garage-store", "vars.yaml")
        self.assertEqual(stat.S_IMODE(os.stat(spec).st_mode), 0o644)

    def test_service_dummy_test(self):
        self.check_fixture("service-dummy-test")

    def test_legacy_secrets(self):
        self.check_fixture("legacy-secrets")
        spec = yaml.safe_load(read(os.path.join(self.dir, "legacy-secrets", "vars.yaml")))
        # Each older-layout secret: a shared generator of its name, file
        # "secret", used by the machines its links name (groups included).
        self.assertEqual(spec["generators"]["group-secret"],
                         {"share": True, "imported": "clan", "files": {"secret": {"secret": True}}})
        self.assertEqual(sorted(spec["machines"]["machine"]["generators"]),
                         ["group-secret", "secret"])

    def test_refuses_existing_spec_and_store(self):
        out = self.out_dir("out")
        repo = os.path.join(CLAN, "garage-store")
        write(os.path.join(out, "vars.yaml"), "# mine\n", 0o644)
        p = self.import_clan(repo, out)
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("vars.yaml exists", p.stderr.decode())
        self.assertEqual(read(os.path.join(out, "vars.yaml")), b"# mine\n")
        self.assertFalse(os.path.exists(os.path.join(out, "vars")))
        os.unlink(os.path.join(out, "vars.yaml"))
        os.mkdir(os.path.join(out, "vars"))
        p = self.import_clan(repo, out)
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("vars exists", p.stderr.decode())
        self.assertEqual(os.listdir(os.path.join(out, "vars")), [])
        # -f and --store put them elsewhere.
        p = self.import_clan(repo, out, "-f", "sub/spec.yaml", "--store", "st")
        self.assertEqual(p.returncode, 1, describe(p))  # sub/ does not exist
        os.mkdir(os.path.join(out, "sub"))
        self.ok(VARGEN, "import", "clan", repo, "-i", self.admin, "-f", "sub/spec.yaml",
                "--store", "st", cwd=out)
        self.ok(VARGEN, "check", "-f", "sub/spec.yaml", "--store", "st", cwd=out)


class I1MachineKeys(ImportCase):
    """A kept machine key, once open, opens its machine's files."""

    def test_file_sealed_to_its_machine_only(self):
        repo = copy_repo(os.path.join(CLAN, "garage-store"), os.path.join(self.dir, "repo"))
        path = os.path.join(repo, "vars/per-machine/server/garage/metrics_token/secret")
        want = self.expected_plain(path)
        admin_pub = self.ok(AGE + "-keygen", "-y", self.admin).stdout.decode().strip()
        doc = json.loads(read(path))
        doc["sops"]["age"] = [s for s in doc["sops"]["age"] if s["recipient"] != admin_pub]
        self.assertEqual(len(doc["sops"]["age"]), 1)  # the machine's alone
        write(path, json.dumps(doc, indent=1))
        out = self.out_dir("out")
        p = self.import_clan(repo, out)
        self.assertEqual(p.returncode, 0, describe(p))
        self.check_all_ok(out)
        self.assertEqual(self.get(out, "server", "garage/metrics_token"), want)
        # Without the kept key (its file gone), nothing opens it: exit 3.
        shutil.rmtree(os.path.join(repo, "sops/secrets/server-age.key"))
        out = self.out_dir("out2")
        p = self.import_clan(repo, out)
        self.assertEqual(p.returncode, 3, describe(p))
        self.assertIn("metrics_token/secret: no identity opens the data key", p.stderr.decode())
        self.assert_nothing_written(out)

    def expected_plain(self, path):
        doc = json.loads(read(path))
        return open_enc(data_key(doc["sops"], self.admin), doc["data"], "data:")


class I3Refusals(ImportCase):
    """I3: each damage refused with its own message; nothing left behind."""

    def damaged(self, change):
        """A copy of the garage store with its last secret changed by
        change(text) -> text; (repo, path of the damaged file)."""
        repo = copy_repo(os.path.join(CLAN, "garage-store"), os.path.join(self.dir, "repo"))
        p = self.tool(VARGEN, "import", "clan", repo, "--plan")
        self.assertEqual(p.returncode, 4, describe(p))
        last = last_secret(p.stdout.decode())
        self.assertTrue(last.endswith("/vars/shared/garage-shared/rpc_secret/secret"), last)
        write(last, change(read(last).decode()), 0o644)
        return repo, last

    def refused(self, change, status, message, *extra, plan_too=False):
        repo, last = self.damaged(change)
        out = self.out_dir("out")
        before = snapshot(out)
        p = self.import_clan(repo, out, *extra)
        self.assertEqual(p.returncode, status, describe(p))
        err = p.stderr.decode()
        self.assertEqual(len(err.splitlines()), 1, describe(p))
        self.assertRegex(err, message)
        self.assertIn(last if last in err else os.path.basename(last), err)
        self.assert_nothing_written(out, before)
        if plan_too:  # what the metadata shows, the plan refuses too
            p = self.tool(VARGEN, "import", "clan", repo, "--plan", cwd=out)
            self.assertEqual(p.returncode, status, describe(p))
            self.assertRegex(p.stderr.decode(), message)
        return p

    def test_tampered_value(self):
        def change(text):
            return re.sub(r'("data": "ENC\[AES256_GCM,data:)(.)',
                          lambda m: m.group(1) + ("A" if m.group(2) != "A" else "B"), text,
                          count=1)
        self.refused(change, 1, r"^vargen: error: .*/rpc_secret/secret:2:10: value of data: "
                     r"does not decrypt \(wrong data key or tampered value\)\n$")

    def tampered_mac(self, text):
        i = text.index('"mac": "ENC[AES256_GCM,data:') + len('"mac": "ENC[AES256_GCM,data:')
        return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]

    def test_tampered_mac(self):
        self.refused(self.tampered_mac, 1,
                     r"^vargen: error: .*/rpc_secret/secret: the MAC does not decrypt")

    def test_ignore_mac(self):
        repo, last = self.damaged(self.tampered_mac)
        out = self.out_dir("out")
        p = self.import_clan(repo, out, "--ignore-mac")
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("vargen: warning: %s: MAC does not verify; imported anyway "
                      "(--ignore-mac)\n" % last, p.stderr.decode())
        self.check_all_ok(out)
        self.assertEqual(self.get(out, "shared", "garage-shared/rpc_secret"),
                         README[("garage-store", "shared/garage-shared/rpc_secret")])

    def test_truncated_file(self):
        self.refused(lambda t: t[:len(t) // 2], 1,
                     r"^vargen: error: .*/rpc_secret/secret:\d+:\d+: JSON syntax error: the "
                     r"file ends early", plan_too=True)

    def test_shamir_file(self):
        def change(text):
            doc = json.loads(text)
            stanza = doc["sops"].pop("age")[0]
            doc["sops"]["key_groups"] = [{"age": [stanza]}, {"age": [stanza]}]
            doc["sops"]["shamir_threshold"] = 2
            return json.dumps(doc, indent=1)
        self.refused(change, 1, r"^vargen: error: .*/rpc_secret/secret: the data key is split "
                     r"over 2 key groups \(Shamir\): not supported", plan_too=True)

    def test_pgp_only_file(self):
        def change(text):
            doc = json.loads(text)
            doc["sops"].pop("age")
            doc["sops"]["pgp"] = [{"created_at": "2020-07-12T08:03:51Z",
                                   "enc": "-----BEGIN PGP MESSAGE-----\nx\n-----END PGP "
                                          "MESSAGE-----\n",
                                   "fp": "7FB89715AADA920D65D25E63F9BA9DEBD03F57C0"}]
            return json.dumps(doc, indent=1)
        self.refused(change, 1, r"^vargen: error: .*/rpc_secret/secret: the data key is sealed "
                     r"to pgp keys only, no age recipient", plan_too=True)

    def test_wrong_key(self):
        out = self.out_dir("out")
        wrong = os.path.join(self.dir, "wrong.key")
        self.ok(VARSEAL, "keygen", "-o", wrong)
        p = self.tool(VARGEN, "import", "clan", os.path.join(CLAN, "garage-store"), "-i", wrong,
                      cwd=out)
        self.assertEqual(p.returncode, 3, describe(p))
        self.assertRegex(p.stderr.decode(), r"^vargen: error: .*/secret: no identity opens the "
                         r"data key \(sealed to 1 age recipient: age1\w+\)\n$")
        self.assert_nothing_written(out)

    def late_failure(self, syscall, when):
        """The import with the when-th call of syscall failing (strace)."""
        out = self.out_dir("out-%s-%d" % (syscall, when))
        env = testkit.traced_env()
        p = run([STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall,
                 "-e", "inject=%s:error=EIO:when=%d" % (syscall, when),
                 VARGEN, "import", "clan", os.path.join(CLAN, "garage-store"),
                 "-i", self.admin], cwd=out, env=env, timeout=TIMEOUT)
        return out, p

    @unittest.skipUnless(STRACE, "needs strace")
    def test_failure_after_the_store_was_written(self):
        # The spec's rename (renameat2: the only one) fails after the
        # store's transaction committed: the new store goes again.
        out, p = self.late_failure("renameat2", 1)
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertRegex(p.stderr.decode(), r"vars.yaml: renaming into .*; the new store is "
                         r"removed again")
        self.assert_nothing_written(out)
        self.assertEqual([n for n in os.listdir(out) if n.startswith(".vars.yaml")], [])
        # A rename in the middle of the store's own commit fails.
        out, p = self.late_failure("renameat", 5)
        self.assertEqual(p.returncode, 1, describe(p))
        self.assert_nothing_written(out)


class DamagedRepo(ImportCase):
    """A copy of the garage store to damage, and a directory outside it."""

    def setUp(self):
        super().setUp()
        self.repo = copy_repo(os.path.join(CLAN, "garage-store"), os.path.join(self.dir, "repo"))
        self.outside = os.path.join(self.dir, "outside")
        os.mkdir(self.outside)
        self.secret = os.path.join(self.repo, "vars/shared/garage-shared/rpc_secret/secret")
        self.outs = 0

    def refused(self, message):
        self.outs += 1
        out = self.out_dir("out%d" % self.outs)
        outside_before = snapshot(self.outside)
        for extra in (["--plan"], ["-i", self.admin]):
            p = self.tool(VARGEN, "import", "clan", self.repo, *extra, cwd=out)
            self.assertEqual(p.returncode, 1, describe(p))
            self.assertRegex(p.stderr.decode(), message)
            self.assertEqual(len(p.stderr.decode().splitlines()), 1, describe(p))
            self.assert_nothing_written(out)
        self.assertEqual(snapshot(self.outside), outside_before)


class I4Symlinks(DamagedRepo):
    """I4: links are read, never followed; what leads outside is refused."""

    def test_secret_symlink_outside(self):
        # A file that would import fine, reached only by following a link.
        shadow = os.path.join(self.outside, "shadow")
        shutil.copy(self.secret, shadow)
        os.unlink(self.secret)
        os.symlink(shadow, self.secret)
        self.refused(r"rpc_secret/secret: a symlink where clan keeps a file; not followed")

    def test_generator_directory_symlink(self):
        gen = os.path.join(self.repo, "vars/per-machine/server/garage")
        shutil.move(gen, os.path.join(self.outside, "garage"))
        os.symlink(os.path.join(self.outside, "garage"), gen)
        self.refused(r"server/garage: a symlink where clan keeps a directory; not followed")

    def test_machine_link_leading_outside(self):
        link = os.path.join(self.repo, "vars/shared/garage-shared/rpc_secret/machines/server")
        os.unlink(link)
        os.symlink("../../../../../../outside/machines/server", link)
        self.refused(r"machines/server: a link to \.\./\.\./\.\./\.\./\.\./\.\./outside/machines/"
                     r"server, not to sops/machines/server within .*\(links are read, never "
                     r"followed\)")

    def test_real_symlinks_as_clan_writes_them(self):
        # The fixtures hold links as git writes them without symlinks
        # (files of their target); real ones read the same.
        for root, dirs, files in os.walk(self.repo):
            if os.path.basename(root) in ("machines", "users", "groups") and "sops" not in \
                    os.path.relpath(root, self.repo).split(os.sep)[:1]:
                for n in files:
                    p = os.path.join(root, n)
                    target = read(p).decode().strip()
                    os.unlink(p)
                    os.symlink(target, p)
        out = self.out_dir("out")
        self.ok(VARGEN, "import", "clan", self.repo, "-i", self.admin, cwd=out)
        self.check_all_ok(out)


class I4Layout(DamagedRepo):
    """I4: what clan's layout does not hold is refused, each with its own
    message naming where, nothing written (the walk of sops/ and vars/)."""

    def test_no_users(self):
        shutil.rmtree(os.path.join(self.repo, "sops/users"))
        self.refused(r"sops/users: no admins \(expected clan's users, each with a key\.json\)")

    def test_machine_called_shared(self):
        for where in ("sops/machines", "vars/per-machine"):
            with self.subTest(where=where):
                os.rename(os.path.join(self.repo, where, "server"),
                          os.path.join(self.repo, where, "shared"))
                self.refused(r"%s/shared: a machine called shared, a name the new spec "
                             r"reserves for shared generators" % where)
                os.rename(os.path.join(self.repo, where, "shared"),
                          os.path.join(self.repo, where, "server"))

    def test_generator_without_files(self):
        os.mkdir(os.path.join(self.repo, "vars/per-machine/server/empty"))
        self.refused(r"vars/per-machine/server/empty: a generator without files")

    def test_hidden_entry(self):
        write(os.path.join(self.repo, "vars/shared/garage-shared/.extra"), b"x")
        self.refused(r"vars/shared/garage-shared/\.extra: a hidden entry where clan keeps none")

    def test_entry_outside_the_layout(self):
        write(os.path.join(self.repo, "sops/secrets/server-age.key/notes"), b"x")
        self.refused(r"sops/secrets/server-age\.key/notes: not part of clan's layout")

    def test_file_name_the_spec_cannot_hold(self):
        os.rename(os.path.dirname(self.secret),
                  os.path.join(os.path.dirname(os.path.dirname(self.secret)), "rpc secret"))
        self.refused(r"garage-shared/rpc secret: file name 'rpc secret' ")


class I5EndToEnd(ImportCase):
    """I5: the garage store imported, then deployed with the imported key."""

    def test_varinject_and_age(self):
        out = self.out_dir("garage")
        self.ok(VARGEN, "import", "clan", os.path.join(CLAN, "garage-store"), "-i", self.admin,
                cwd=out)
        mkey = os.path.join(self.dir, "server.key")
        self.ok(VARSEAL, "machine", "key", "-i", self.admin, "-o", mkey, "server", cwd=out)
        self.assertEqual(stat.S_IMODE(os.stat(mkey).st_mode), 0o600)
        rundir = testkit.temp_dir(self, "import_run.", "/dev/shm")
        p = self.ok(VARINJECT, "--machine", "server", "-i", mkey, "--credentials-dir", rundir,
                    "--dry-run", "--", "qemu-system-x86_64", cwd=out)
        shown = p.stdout.decode()
        creds = re.findall(r"io\.systemd\.credential:([^=]+)=<secret: (\d+) bytes>", shown)
        names = {n for n, _ in creds}
        self.assertEqual(names, {"HOST-ADMIN_TOKEN", "HOST-METRICS_TOKEN", "HOST-VERSION",
                                 "HOST-RPC_SECRET"}, shown)
        sizes = dict(creds)
        self.assertEqual(int(sizes["HOST-RPC_SECRET"]), 65)
        secrets = {
            "vars/per-machine/server/garage/admin_token/secret": "server/garage/admin_token",
            "vars/per-machine/server/garage/metrics_token/secret": "server/garage/metrics_token",
            "vars/shared/garage-shared/rpc_secret/secret": "shared/garage-shared/rpc_secret",
        }
        for rel, name in secrets.items():
            with self.subTest(secret=rel):
                p = self.ok(AGE, "-d", "-i", mkey, os.path.join(out, rel))
                owner, gen_file = name.split("/", 1)
                self.assertEqual(p.stdout, self.get(out, owner, gen_file))
                self.assertEqual(len(p.stdout), int(sizes["HOST-" + name.rsplit("/", 1)[1]
                                                           .upper()]))


class I6DailyUse(ImportCase):
    """I6: generate, check and set with imported generators."""

    def test_generate_leaves_imported_values(self):
        out = self.out_dir("garage")
        self.ok(VARGEN, "import", "clan", os.path.join(CLAN, "garage-store"), "-i", self.admin,
                cwd=out)
        before = snapshot(os.path.join(out, "vars"))
        p = self.ok(VARGEN, "generate", cwd=out)
        self.assertEqual(p.stdout, b"generate: everything is up to date\n")
        p = self.ok(VARGEN, "generate", "--regenerate", "--all", "--yes", cwd=out)
        self.assertEqual(snapshot(os.path.join(out, "vars")), before)
        shutil.rmtree(os.path.join(out, "vars/per-machine/server/garage/metrics_token"))
        p = self.tool(VARGEN, "check", cwd=out)
        self.assertEqual(p.returncode, 4, describe(p))
        self.assertEqual(p.stdout, b"server/garage/metrics_token\tsecret\tmissing\n")
        self.assertIn("missing: 1 file: imported values are not made by vargen: import them "
                      "again, restore them from git, or varseal set M GEN/FILE",
                      p.stderr.decode())
        p = self.tool(VARGEN, "generate", cwd=out)
        self.assertEqual(p.returncode, 4, describe(p))
        self.assertIn("left\tserver/garage/metrics_token\tmissing: imported from clan: vargen "
                      "makes no imported value", p.stdout.decode())
        self.assertFalse(os.path.exists(os.path.join(
            out, "vars/per-machine/server/garage/metrics_token")))
        self.ok(VARSEAL, "set", "server", "garage/metrics_token", stdin=b"mended\n", cwd=out)
        self.check_all_ok(out)
        self.assertEqual(self.get(out, "server", "garage/metrics_token"), b"mended\n")

    def test_spec_imported_key_errors(self):
        pub = self.ok(AGE + "-keygen", "-y", self.admin).stdout.decode().strip()
        base = "admins:\n  a: %s\nmachines:\n  m:\n    generators: [g]\ngenerators:\n  g:\n" % pub
        cases = [
            ("    imported: nix\n    files:\n      f:\n",
             r"vars.yaml:8:15: unknown imported 'nix' in generator 'g' \(expected one of: "
             r"clan, sops\)"),
            ("    imported: clan\n    script: echo\n    files:\n      f:\n",
             r"vars.yaml:9:5: generator 'g' was imported and has a script \(expected either "
             r"imported values or a script that makes them\)"),
            ("    imported: sops\n    files:\n      f: {kind: random}\n",
             r"vars.yaml:10:11: file 'f' has kind random but generator 'g' was imported "
             r"\(expected no kind: imported values are not made\)"),
            ("    imported: sops\n",
             r"vars.yaml:7:3: generator 'g' was imported and has no files"),
        ]
        for body, message in cases:
            with self.subTest(body=body):
                write(os.path.join(self.dir, "vars.yaml"), base + body)
                p = self.tool(VARGEN, "check")
                self.assertEqual(p.returncode, 1, describe(p))
                self.assertRegex(p.stderr.decode(), "^vargen: error: " + message)


SEALED_SPEC = """\
# the spec of this test; its comments must stay
admins:
  alice: @ADMIN@   # the admin

machines:
  web:
    generators:
      - app   # a block list
  db:
    generators: [app]
  bare:
    key: @KEY@

generators:
  app:
    files:
      token: {kind: random}
# the end
"""


class I7ImportSops(ImportCase):
    """I7: varseal import-sops."""

    def setUp(self):
        super().setUp()
        self.store = testkit.TempStore(self.dir)
        self.store.make_admin()
        self.store.write_spec(SEALED_SPEC.replace("@KEY@", "@ADMIN@"))
        for m in ("web", "db"):
            self.store.tool(VARSEAL, "machine", "keygen", m)
        self.ok(VARGEN, "generate")
        self.age_key = key_copy(os.path.join(SOPS, "sops-age", "key.txt"),
                                os.path.join(self.dir, "sops-age.key"))
        self.nix_key = key_copy(os.path.join(SOPS, "sops-nix", "age-keys.txt"),
                                os.path.join(self.dir, "sops-nix.key"))

    def import_sops(self, path, to, gen, *extra, key=None):
        return self.tool(VARSEAL, "import-sops", path, "-i", key or self.age_key, "--to", to,
                         gen, *extra)

    def spec_text(self):
        return read(self.store.spec).decode()

    def assert_values(self, owner, gen, want):
        for name, value in want.items():
            with self.subTest(gen=gen, file=name):
                p = self.ok(VARSEAL, "get", "-i", self.store.admin, owner, "%s/%s" % (gen, name))
                self.assertEqual(p.stdout, value)

    def test_every_fixture_file(self):
        secret_json = json.loads(read(os.path.join(SOPS, "sops-age", "secret.json")))
        printed = {name: (json.dumps(v) if not isinstance(v, str) else v).encode()
                   for name, _, v, _ in sops_leaves(secret_json)}
        cases = [("sops-age/secret.enc.json", "web", "from-json", self.age_key),
                 ("sops-age/secret.enc.yaml", "db", "from-yaml", self.age_key),
                 ("sops-age/secret.enc.env", "bare", "from-env", self.age_key),
                 ("sops-nix/secrets.yaml", "shared", "from-nix", self.nix_key)]
        spec_before = self.spec_text()
        for rel, to, gen, key in cases:
            with self.subTest(file=rel):
                path = os.path.join(SOPS, rel)
                want = sops_plaintexts(path, key)
                if rel in ("sops-age/secret.enc.json", "sops-age/secret.enc.yaml"):
                    # sops keeps a bool as "True" in its ENC[]; what sops -d
                    # prints is the plaintext secret.json holds.
                    self.assertEqual(want["boolean"], b"True")
                    want = {name: printed[name] for name in want}
                spec = self.spec_text()
                store = snapshot(os.path.join(self.dir, "vars"))
                p = self.tool(VARSEAL, "import-sops", path, "--to", to, gen, "--plan")
                self.assertEqual(p.returncode, 4, describe(p))
                rows, summary = plan_rows(p.stdout.decode())
                self.assertEqual({n for a, n, _ in rows if a == "import"},
                                 {"%s/%s/%s" % (to, gen, n) for n in want})
                self.assertIn(("add", "generators/" + gen), [r[:2] for r in rows])
                self.assertEqual(summary, "plan: 1 generator and %d file%s to import into "
                                 "vars.yaml and ./vars; nothing written"
                                 % (len(want), "s" if len(want) > 1 else ""))
                self.assertEqual(self.spec_text(), spec)
                self.assertEqual(snapshot(os.path.join(self.dir, "vars")), store)
                p = self.import_sops(path, to, gen, key=key)
                self.assertEqual(p.returncode, 0, describe(p))
                self.check_all_ok(self.dir)
                self.assert_values(to, gen, want)
        # The spec grew by the four generators; every line it had is kept.
        text = self.spec_text()
        for line in spec_before.splitlines():
            if not line.endswith("]"):  # flow lists grow
                self.assertIn(line + "\n", text)
        spec = yaml.safe_load(text)
        self.assertEqual(spec["machines"]["web"]["generators"], ["app", "from-json"])
        self.assertEqual(spec["machines"]["db"]["generators"], ["app", "from-yaml"])
        self.assertEqual(spec["machines"]["bare"]["generators"], ["from-env"])
        self.assertEqual(spec["generators"]["from-nix"]["share"], True)
        self.assertEqual(list(spec["generators"]["from-nix"]["files"]),
                         ["test_key", "a_list.0", "a_list.1", "nested.test.file"])
        self.assertEqual(spec["generators"]["from-json"]["imported"], "sops")

    def test_shared_kept_for_the_admins_then_used(self):
        path = os.path.join(SOPS, "sops-nix", "secrets.yaml")
        p = self.import_sops(path, "shared", "nix", key=self.nix_key)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertIn("no machine uses shared generator nix yet", p.stdout.decode())
        self.check_all_ok(self.dir)
        manifest = read(os.path.join(self.dir, "vars/shared/nix/test_key/recipients")).decode()
        self.assertEqual(manifest, self.store.admin_pub + "\n")
        text = self.spec_text().replace("generators: [app]", "generators: [app, nix]")
        write(self.store.spec, text)
        p = self.tool(VARGEN, "check")
        self.assertEqual(p.returncode, 4, describe(p))
        self.assertIn("shared/nix/test_key\tsecret\twrong-recipients", p.stdout.decode())
        self.ok(VARSEAL, "rekey", "-i", self.store.admin)
        self.check_all_ok(self.dir)
        dbkey = os.path.join(self.dir, "db.key")
        write(dbkey, self.ok(VARSEAL, "machine", "key", "-i", self.store.admin, "db").stdout,
              0o600)
        p = self.ok(AGE, "-d", "-i", dbkey, os.path.join(self.dir, "vars/shared/nix/test_key/secret"))
        self.assertEqual(p.stdout, sops_plaintexts(path, self.nix_key)["test_key"])

    def refused(self, path, gen, message, status=1, to="web", key=None, *extra):
        spec = self.spec_text()
        store = snapshot(os.path.join(self.dir, "vars"))
        p = self.import_sops(path, to, gen, *extra, key=key)
        self.assertEqual(p.returncode, status, describe(p))
        self.assertEqual(len(p.stderr.decode().splitlines()), 1, describe(p))
        self.assertRegex(p.stderr.decode(), message)
        self.assertEqual(self.spec_text(), spec)
        self.assertEqual(snapshot(os.path.join(self.dir, "vars")), store)

    def test_refusals(self):
        path = os.path.join(SOPS, "sops-age", "secret.enc.yaml")
        self.refused(path, "app", r"^varseal: error: vars.yaml already has a generator app")
        self.refused(path, "x", r"^varseal: error: vars.yaml: no machine named nosuch",
                     to="nosuch")
        self.refused(path, "x", r"^varseal: error: .*secret.enc.yaml: no identity opens the "
                     r"data key", status=3, key=self.nix_key)
        bad = os.path.join(self.dir, "tampered.yaml")
        write(bad, read(path).decode().replace("data:ME9a8+", "data:ME9a9+"))
        self.refused(bad, "x", r"^varseal: error: .*tampered.yaml:1:9: value of secret: does "
                     r"not decrypt")
        pub = self.ok(AGE + "-keygen", "-y", self.age_key).stdout.decode().strip()
        for pairs, message in [
            ([(("a.b",), "1"), (("a", "b"), "2")],
             r"^varseal: error: .*collide.json:\d+:\d+: value of a:b: would be file 'a.b', as "
             r"value of a.b: would \(names join keys with '.'\); rename one of the keys"),
            ([(("a b",), "1")],
             r"^varseal: error: .*collide.json:\d+:\d+: value of a b: cannot be a file: its "
             r"name 'a b' contains a space"),
        ]:
            f = write(os.path.join(self.dir, "collide.json"), sops_json(pairs, pub))
            self.refused(f, "x", message)

    def test_unencrypted_values_are_public(self):
        pub = self.ok(AGE + "-keygen", "-y", self.age_key).stdout.decode().strip()
        f = write(os.path.join(self.dir, "mixed.json"), sops_json(
            [(("token",), "s3cret"), (("host_unencrypted",), "db.example"),
             (("nested", "list_unencrypted"), "x")], pub))
        p = self.import_sops(f, "web", "mixed")
        self.assertEqual(p.returncode, 0, describe(p))
        self.check_all_ok(self.dir)
        base = os.path.join(self.dir, "vars/per-machine/web/mixed")
        self.assertTrue(os.path.exists(os.path.join(base, "token/secret")))
        self.assertEqual(read(os.path.join(base, "host_unencrypted/value")), b"db.example")
        self.assertEqual(read(os.path.join(base, "nested.list_unencrypted/value")), b"x")
        self.assert_values("web", "mixed", {"token": b"s3cret"})

    def test_spec_styles(self):
        """Flow and block lists, a machine without generators:, a spec
        without generators:, each edited in place and read back."""
        path = os.path.join(SOPS, "sops-age", "secret.enc.env")
        for i, (before, machine) in enumerate([
            ("admins:\n  a: @ADMIN@\nmachines:\n  web:\n    key: @WEB@\n"
             "    generators: [app]\ngenerators:\n  app:\n    files:\n      t: {kind: uuid}",
             "web"),
            ("admins:\n  a: @ADMIN@\nmachines:\n  web:\n    key: @WEB@   # k\n"
             "    generators:\n    - app\n  other:\n    key: @WEB@\ngenerators:\n  app:\n"
             "    files:\n      t: {kind: uuid}\n", "web"),
            ("admins:\n  a: @ADMIN@\nmachines:\n  web:\n    key: @WEB@\n", "web"),
            ("machines:\n  web:\n    key: @WEB@\n    generators: []\n"
             "admins:\n  a: @ADMIN@\n", "web"),
            # An empty flow mapping, as a spec with no generators yet is
            # often written, with and without a comment after it.
            ("admins:\n  a: @ADMIN@\nmachines:\n  web:\n    key: @WEB@\n"
             "    generators: []\ngenerators: {}  # none yet\n", "web"),
            ("admins:\n  a: @ADMIN@\nmachines:\n  web:\n    key: @WEB@\n"
             "    generators: []\ngenerators: {}", "web"),
        ]):
            with self.subTest(case=i):
                d = self.out_dir("style%d" % i)
                text = before.replace("@ADMIN@", self.store.admin_pub).replace(
                    "@WEB@", read(os.path.join(self.dir, "vars/per-machine/web/.machine-key"))
                    .decode().strip())
                write(os.path.join(d, "vars.yaml"), text)
                p = self.tool(VARSEAL, "import-sops", path, "-i", self.age_key, "--to", machine,
                              "env", cwd=d)
                self.assertEqual(p.returncode, 0, describe(p))
                after = read(os.path.join(d, "vars.yaml")).decode()
                for line in text.splitlines():
                    if "generators:" not in line or "[" not in line and "{" not in line:
                        self.assertIn(line, after)
                if "# none yet" in text:
                    self.assertIn("\ngenerators:  # none yet\n", after)
                spec = yaml.safe_load(after)
                self.assertIn("env", spec["machines"]["web"]["generators"])
                self.assertEqual(spec["generators"]["env"]["imported"], "sops")
                self.ok(VARGEN, "generate", cwd=d)
                self.check_all_ok(d)
                self.assertEqual(self.ok(VARSEAL, "get", "-i", self.store.admin, "web",
                                         "env/another_secret", cwd=d).stdout,
                                 sops_plaintexts(path, self.age_key)["another_secret"])

    @unittest.skipUnless(STRACE, "needs strace")
    def test_spec_failure_takes_the_files_back(self):
        path = os.path.join(SOPS, "sops-age", "secret.enc.env")
        spec = self.spec_text()
        store = snapshot(os.path.join(self.dir, "vars"))
        # The spec's new text is named (linkat: only the spec's O_TMPFILE
        # is) after the store's transaction committed: that fails.
        p = run([STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=linkat",
                 "-e", "inject=linkat:error=EIO:when=1", VARSEAL, "import-sops", path,
                 "-i", self.age_key, "--to", "web", "env"], cwd=self.dir,
                env=testkit.traced_env(), timeout=TIMEOUT)
        self.assertEqual(p.returncode, 1, describe(p))
        self.assertIn("the imported files are removed again", p.stderr.decode())
        self.assertEqual(self.spec_text(), spec)
        self.assertEqual(snapshot(os.path.join(self.dir, "vars")), store)


if __name__ == "__main__":
    unittest.main()
