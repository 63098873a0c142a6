#!/usr/bin/env python3
"""make_keys.py N DIR ADMINS: untimed key material for the store benchmarks.

Writes DIR/admin{1..ADMINS}.key (an age identity file with its "# public
key:" comment) and .pub, DIR/machines.pub (N machine recipients, one per
line) and DIR/m0.key (the first machine's identity). Keys come from the
Python cryptography package's X25519 (one process, instead of N keygen
processes), bech32-encoded here as age encodes them; the benchmarks check
that the tools accept them by running on them.
"""
import sys

from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def bech32(hrp, data):
    acc = bits = 0
    out = []
    for b in data:
        acc, bits = (acc << 8) | b, bits + 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    hv = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    pm = polymod(hv + out + [0] * 6) ^ 1
    out += [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in out)


def key():
    k = X25519PrivateKey.generate()
    raw = k.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption())
    pub = k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
    return bech32("age-secret-key-", raw).upper(), bech32("age", pub)


def save(out, name, sk, pk):
    with open("%s/%s.key" % (out, name), "w") as f:
        f.write("# public key: %s\n%s\n" % (pk, sk))
    with open("%s/%s.pub" % (out, name), "w") as f:
        f.write(pk + "\n")


def main():
    n, out, admins = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for a in range(1, admins + 1):
        save(out, "admin%d" % a, *key())
    with open(out + "/machines.pub", "w") as f:
        for m in range(n):
            sk, pk = key()
            if m == 0:
                save(out, "m0", sk, pk)
            f.write(pk + "\n")


main()
