#!/usr/bin/env python3
"""Issue 15, small files: the tools do not read OpenSSL's configuration.

OpenSSL reads a configuration file on first use (OPENSSL_CONF from the
environment, else the system's openssl.cnf), and that file can load any
provider module into the process, which may run as root (varinject
install). The tools use a fixed set of OpenSSL's default-provider
algorithms, so they initialise OpenSSL without any configuration
(format/base/secmem.c, vf_init; docs/threat-model.md says why).

Each test points OPENSSL_CONF at a configuration that activates a provider
module, hostile_provider.so (tests/hostile_provider.c), whose constructor
appends a line to a marker file: code from the configuration, run in the
tool. The openssl command, which reads the configuration, leaves the mark
(the check is real); no tool may. (A module that does not exist, as this
test used first, stopped telling once the tools served their algorithms
through a provider of their own: a tool that read the configuration then
tried the module, failed to load it, and went on working.) Every verb
that touches OpenSSL must work and leave no mark:
keygen, pubkey, encrypt and decrypt (X25519, and a passphrase: scrypt),
get, vargen check and generate, varinject --dry-run and install (as
root), and, with the real age on the other side, X25519 and ssh-rsa
files both ways (issue 15: the tools' own provider must carry every
algorithm they use).

Standard library only. The binaries come from $VARSEAL, $VARGEN and
$VARINJECT, the module from $HOSTILE_PROVIDER (ctest sets them all).
"""
import os
import shutil
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402
from testkit import VARGEN, VARINJECT, VARSEAL, describe, read, write  # noqa: E402

testkit.skip_unless_built(VARSEAL, VARGEN, VARINJECT)

HOSTILE_PROVIDER = os.environ.get("HOSTILE_PROVIDER", "")
# What openssl.cnf would need to pull a module into the process.
HOSTILE_CONF = """openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
hostile = hostile_sect
[hostile_sect]
module = %s
activate = 1
"""

SPEC = """admins:
  alice: @ADMIN@
machines:
  vm:
    generators: [g]
    credentials:
      TOKEN: g/token
generators:
  g:
    files:
      token: {kind: random}
"""

AGE = shutil.which("age")
SSH_KEYGEN = shutil.which("ssh-keygen")

PLAINTEXT = b"hello world!"
PASSPHRASE = b"correct horse battery staple"


@unittest.skipUnless(os.path.isfile(HOSTILE_PROVIDER),
                     "HOSTILE_PROVIDER names no module (run through ctest)")
class NoOpenSSLConfig(testkit.TempDirCase):
    PREFIX = "vtest-osslconf-"

    def setUp(self):
        super().setUp()
        self.store = testkit.TempStore(self.dir)
        self.recipient = self.store.make_admin()
        self.conf = write(os.path.join(self.dir, "hostile.cnf"),
                          (HOSTILE_CONF % HOSTILE_PROVIDER).encode(), 0o644)
        self.marker = os.path.join(self.dir, "hostile-provider-ran")
        self.env = dict(os.environ, OPENSSL_CONF=self.conf, VTEST_HOSTILE_MARKER=self.marker)

    def tool(self, *cmd, stdin=None):
        """Runs cmd in the store's directory with the hostile OPENSSL_CONF;
        it must succeed, and the module must not have been loaded."""
        p = testkit.run(list(cmd), stdin=stdin, cwd=self.dir, env=self.env)
        self.assertEqual(p.returncode, 0, describe(p))
        self.assertFalse(os.path.exists(self.marker),
                         "the configuration's module ran in %s:\n%s" % (cmd[0], describe(p)))
        return p

    def test_the_configuration_loads_the_module(self):
        """The check is real: the openssl command, which reads the file,
        loads the module (the mark) and then fails on it."""
        p = testkit.run(["openssl", "rand", "-hex", "4"], cwd=self.dir, env=self.env)
        self.assertNotEqual(p.returncode, 0, describe(p))
        self.assertIn(b"loaded into pid", read(self.marker))

    def test_keygen_pubkey_encrypt_decrypt(self):
        key = os.path.join(self.dir, "other.key")
        self.tool(VARSEAL, "keygen", "-o", key)
        recipient = self.tool(VARSEAL, "pubkey", key).stdout.decode().strip()
        self.assertTrue(recipient.startswith("age1"), recipient)
        plain = write(os.path.join(self.dir, "plain"), PLAINTEXT)
        sealed = os.path.join(self.dir, "sealed.age")
        self.tool(VARSEAL, "encrypt", "-r", recipient, "-o", sealed, plain)
        self.assertEqual(self.tool(VARSEAL, "decrypt", "-i", key, sealed).stdout, PLAINTEXT)

    def test_passphrase(self):
        plain = write(os.path.join(self.dir, "plain"), PLAINTEXT)
        pass_file = write(os.path.join(self.dir, "pass"), PASSPHRASE + b"\n")
        sealed = os.path.join(self.dir, "sealed.age")
        self.tool(VARSEAL, "encrypt", "--work-factor", "10", "--passphrase-file", pass_file,
                  "-o", sealed, plain)
        out = self.tool(VARSEAL, "decrypt", "--passphrase-file", pass_file, sealed).stdout
        self.assertEqual(out, PLAINTEXT)

    # Issue 15: the tools serve OpenSSL's algorithms through a provider of
    # their own that offers only what they use (format/base/provider.c).
    # Each family it must carry is exercised here, with the real age on the
    # other side where age speaks it.

    @unittest.skipUnless(AGE, "age not installed")
    def test_interoperates_with_age(self):
        """X25519, HKDF, HMAC and ChaCha20-Poly1305 through the subset give
        files age opens, and open age's files."""
        key = os.path.join(self.dir, "other.key")
        self.tool(VARSEAL, "keygen", "-o", key)
        recipient = self.tool(VARSEAL, "pubkey", key).stdout.decode().strip()
        plain = write(os.path.join(self.dir, "plain"), PLAINTEXT)
        ours, theirs = os.path.join(self.dir, "ours.age"), os.path.join(self.dir, "theirs.age")
        self.tool(VARSEAL, "encrypt", "-r", recipient, "-o", ours, plain)
        self.tool(AGE, "-r", recipient, "-o", theirs, plain)
        self.assertEqual(self.tool(AGE, "-d", "-i", key, ours).stdout, PLAINTEXT)
        self.assertEqual(self.tool(VARSEAL, "decrypt", "-i", key, theirs).stdout, PLAINTEXT)

    @unittest.skipUnless(AGE and SSH_KEYGEN, "age or ssh-keygen not installed")
    def test_ssh_rsa_with_age(self):
        """RSA key management and RSA-OAEP (its digests and random bytes
        drawn inside the provider) both ways with age."""
        key = os.path.join(self.dir, "id_rsa")
        testkit.checked([SSH_KEYGEN, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", key])
        plain = write(os.path.join(self.dir, "plain"), PLAINTEXT)
        ours, theirs = os.path.join(self.dir, "ours.age"), os.path.join(self.dir, "theirs.age")
        self.tool(VARSEAL, "encrypt", "-R", key + ".pub", "-o", ours, plain)
        self.tool(AGE, "-R", key + ".pub", "-o", theirs, plain)
        self.assertEqual(self.tool(AGE, "-d", "-i", key, ours).stdout, PLAINTEXT)
        self.assertEqual(self.tool(VARSEAL, "decrypt", "-i", key, theirs).stdout, PLAINTEXT)

    def test_store_get_check_inject(self):
        self.store.write_spec(SPEC)
        machine_key = self.store.machine_key("vm", os.path.join(self.dir, "vm.key"))
        self.tool(VARGEN, "generate", "-f", self.store.spec)
        self.tool(VARGEN, "check", "-f", self.store.spec)
        token = self.tool(VARSEAL, "get", "-f", self.store.spec, "-i", machine_key,
                          "vm", "g/token").stdout
        self.assertTrue(token, "get printed nothing")
        rundir = testkit.temp_dir(self, "vtest-osslconf-run-", "/dev/shm")
        p = self.tool(VARINJECT, "-f", self.store.spec, "--machine", "vm", "-i", machine_key,
                      "--credentials-dir", rundir, "--dry-run", "--", "qemu-system-x86_64")
        self.assertIn(b"TOKEN", p.stdout + p.stderr, describe(p))
        self.assertNotIn(token, p.stdout + p.stderr, "--dry-run showed the value")

    @unittest.skipUnless(os.geteuid() == 0, "needs root, as varinject install has on a host")
    def test_install_as_root(self):
        """varinject install as root, which is how a host runs it, with the
        hostile OPENSSL_CONF kept (a root shell that has it set, or sudo
        told to keep it): the secrets land, the module is never tried."""
        self.store.write_spec(SPEC)
        machine_key = self.store.machine_key("vm", os.path.join(self.dir, "vm.key"))
        self.tool(VARGEN, "generate", "-f", self.store.spec)
        token = self.tool(VARSEAL, "get", "-f", self.store.spec, "-i", machine_key,
                          "vm", "g/token").stdout
        target = os.path.join(testkit.temp_dir(self, "vtest-osslconf-inst-", "/dev/shm"),
                              "secrets")
        self.tool(VARINJECT, "install", "-f", self.store.spec, "--machine", "vm",
                  "-i", machine_key, target)
        self.assertEqual(read(os.path.join(target, "g", "token")), token)


if __name__ == "__main__":
    unittest.main()
