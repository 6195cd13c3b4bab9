#!/usr/bin/env python3
"""Independent check of a Vigil checkpoint and inclusion proof.

Written from the C2SP signed-note / tlog-checkpoint specifications and RFC 9162, using the
`cryptography` package's Ed25519 (not the Rust code under test).

usage: verify_checkpoint.py VKEY PROOF_JSON_FILE
Exits 0 when the checkpoint signature, the leaf hash and the inclusion proof all check out.
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def parse_vkey(vkey):
    name, key_hash, material = vkey.strip().split("+", 2)
    raw = base64.b64decode(material)
    if raw[0] != 0x01 or len(raw) != 33:
        fail("not an Ed25519 vkey")
    expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if expected.hex() != key_hash:
        fail("vkey hash does not match its key")
    return name, expected, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note, name, key_id, public_key):
    split = note.rfind("\n\n")
    if split < 0:
        fail("note has no blank line")
    text, sigs = note[: split + 1], note[split + 2 :]
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            fail("signature line without em dash")
        sig_name, blob = line[2:].split(" ", 1)
        blob = base64.b64decode(blob)
        if sig_name == name and blob[:4] == key_id:
            public_key.verify(blob[4:], text.encode())  # raises InvalidSignature
            return text
    fail("no signature by the expected key")


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index, size, leaf_hash, proof):
    # RFC 9162 section 2.1.3.2
    if index >= size:
        fail("index beyond tree size")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            fail("proof too long")
        if fn % 2 == 1 or fn == sn:
            r = node(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        fail("proof too short")
    return r


def main():
    vkey = open(sys.argv[1]).read()
    proof = json.load(open(sys.argv[2]))
    name, key_id, public_key = parse_vkey(vkey)
    text = open_note(proof["checkpoint"], name, key_id, public_key)
    lines = text.split("\n")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2])
    if origin != name:
        fail("origin is not the key name")
    if size != proof["tree_size"]:
        fail("tree size differs from the proof's")
    leaf = base64.b64decode(proof["leaf"])
    leaf_hash = hashlib.sha256(b"\x00" + leaf).digest()
    if leaf_hash.hex() != proof["leaf_hash"]:
        fail("leaf hash does not match the leaf bytes")
    computed = root_from_inclusion(
        proof["leaf_index"], size, leaf_hash, [bytes.fromhex(h) for h in proof["proof"]]
    )
    if computed != root:
        fail("inclusion proof does not lead to the signed root")
    print("OK", origin, size)


if __name__ == "__main__":
    main()
