"""typage (npm `age-encryption`), the independent age implementation with
post-quantum hybrid keys that the post-quantum tests check varseal against
(the real age in Debian 12 is 1.1, which has none).

The version is pinned with every dependency by tests/typage/package-lock.json
(integrity hashes included) and installed by `npm ci` into a cache directory,
once: TYPAGE_DIR (tests/CMakeLists.txt puts it in the build tree), else
build/typage of this checkout. Installing needs node and npm (scripts/deps.sh)
and the npm registry: when the registry cannot be reached, the tests that
need typage are skipped saying so; any other failure fails them.

Node.js 18 (Debian 12's) runs it although its engines field asks for 20.19:
tests/typage/peer.mjs provides the Web Crypto global that 18 lacks.
"""

import fcntl
import filecmp
import os
import shutil
import subprocess
import unittest

from testkit import BUILD, HERE, describe, run

VERSION = "0.3.1"  # the age-encryption pinned in tests/typage/package.json
SOURCE = os.path.join(HERE, "typage")
CACHE = os.path.abspath(os.environ.get("TYPAGE_DIR", os.path.join(BUILD, "typage")))
PEER = os.path.join(CACHE, "peer.mjs")
INSTALL_TIMEOUT = 600  # seconds for npm ci: 8 small packages, a slow registry

# What npm prints when the registry cannot be reached at all.
UNREACHABLE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET",
               "ENETUNREACH", "EHOSTUNREACH", "network request", "getaddrinfo")

_ready = False


def _installed():
    """Whether CACHE holds this checkout's lock, installed."""
    lock = os.path.join(CACHE, "package-lock.json")
    return (os.path.exists(os.path.join(CACHE, "node_modules", "age-encryption", "package.json"))
            and os.path.exists(lock)
            and filecmp.cmp(lock, os.path.join(SOURCE, "package-lock.json"), shallow=False))


def _install():
    missing = [t for t in ("node", "npm") if not shutil.which(t)]
    if missing:
        raise AssertionError("%s not installed: scripts/deps.sh installs them"
                             % " and ".join(missing))
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(os.path.join(SOURCE, name), os.path.join(CACHE, name))
    p = run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=CACHE, timeout=INSTALL_TIMEOUT)
    if p.returncode != 0:
        text = (p.stdout + p.stderr).decode(errors="replace")
        if any(word in text for word in UNREACHABLE):
            raise unittest.SkipTest("the npm registry cannot be reached, so typage "
                                    "(age-encryption %s) cannot be installed: %s"
                                    % (VERSION, text.strip().splitlines()[-1]))
        raise AssertionError("npm ci of typage failed:\n" + describe(p))


def ensure():
    """Installs typage once (a lock serialises parallel tests); raises
    SkipTest only when the npm registry is unreachable."""
    global _ready
    if _ready:
        return
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            _install()
        shutil.copyfile(os.path.join(SOURCE, "peer.mjs"), PEER)
    _ready = True


def peer(*args, stdin=None, check=True):
    """node peer.mjs ARGS (see tests/typage/peer.mjs); the CompletedProcess."""
    ensure()
    p = run(["node", PEER] + list(args), stdin=stdin, cwd=CACHE)
    if check and p.returncode != 0:
        raise AssertionError("typage: " + describe(p))
    return p


def keygen(path, x25519=False):
    """A new identity from typage into path (0600); its recipient, as typage
    derives it."""
    ident = peer("keygen", *(["--x25519"] if x25519 else [])).stdout
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(ident)
    return recipient(path)


def recipient(identity_file):
    return peer("recipient", identity_file).stdout.decode().strip()


def encrypt(recipients_file, data, armor=False):
    return peer("encrypt", recipients_file, *(["--armor"] if armor else []), stdin=data).stdout


def decrypt(identity_file, data, check=True):
    return peer("decrypt", identity_file, stdin=data, check=check)
