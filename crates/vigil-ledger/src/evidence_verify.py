#!/usr/bin/env python3
"""Checks a Vigil evidence bundle without Vigil.

Usage: python3 verify.py BUNDLE_DIR

Needs Python 3.8+ and the `cryptography` package (pip install cryptography) for Ed25519.
Checks that:
  1. checkpoint.txt and latest-checkpoint.txt are C2SP signed notes signed by vkey.txt;
  2. each event's bytes (events.ndjson "leaf") are in the Merkle tree of checkpoint.txt
     (RFC 9162 inclusion proof in proofs.json; leaf hash SHA-256(0x00 || bytes));
  3. the latest checkpoint's tree extends checkpoint.txt's (RFC 9162 consistency proof).
Exits 0 and prints a summary when everything checks, 1 with the reason otherwise.
"""

import base64
import hashlib
import json
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Failed(Exception):
    pass


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def read_vkey(text):
    name, key_id, material = text.strip().split("+", 2)
    raw = base64.b64decode(material, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise Failed("vkey.txt: not an Ed25519 verifier key")
    public = raw[1:]
    digest = hashlib.sha256(name.encode() + b"\n" + b"\x01" + public).digest()
    if digest[:4].hex() != key_id:
        raise Failed("vkey.txt: key id does not match the key")
    return name, bytes.fromhex(key_id), Ed25519PublicKey.from_public_bytes(public)


def open_note(file, note, key):
    """Returns (origin, size, root, extensions) of a checkpoint signed by key."""
    name, key_id, public = key
    split = note.rfind("\n\n")
    if split < 0:
        raise Failed(file + ": no signature block")
    text, signatures = note[: split + 1], note[split + 2 :]
    verified = False
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            raise Failed(file + ": malformed signature line")
        signer, blob = line[2:].split(" ", 1)
        blob = base64.b64decode(blob, validate=True)
        if signer != name or blob[:4] != key_id:
            continue
        try:
            public.verify(blob[4:], text.encode())
            verified = True
        except InvalidSignature:
            raise Failed(file + ": the signature by " + name + " does not verify")
    if not verified:
        raise Failed(file + ": not signed by " + name)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise Failed(file + ": not a checkpoint")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    if origin != name:
        raise Failed(file + ": origin is not the key's name")
    if len(root) != 32:
        raise Failed(file + ": root is not 32 bytes")
    return origin, size, root, lines[3:]


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size, new_size, proof, old_root, new_root):
    """RFC 9162 section 2.1.4.2."""
    if old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def hashes(values, file):
    out = [bytes.fromhex(h) for h in values]
    if any(len(h) != 32 for h in out):
        raise Failed(file + ": a proof hash is not 32 bytes")
    return out


def verify(bundle):
    def read(name):
        path = os.path.join(bundle, name)
        # Regular files only, each bounded: a hostile bundle cannot hang or exhaust this.
        if os.path.islink(path) or not os.path.isfile(path):
            raise Failed(name + ": not a regular file")
        limit = 256 << 20 if name in ("events.ndjson", "proofs.json") else 1 << 20
        with open(path, encoding="utf-8") as f:
            text = f.read(limit + 1)
        if len(text) > limit:
            raise Failed(name + ": too large")
        return text

    manifest = json.loads(read("manifest.json"))
    if manifest.get("format") != "vigil-evidence" or manifest.get("version") != 1:
        raise Failed("manifest.json: not a version 1 Vigil evidence bundle")
    key = read_vkey(read("vkey.txt"))
    origin, size, root, ext = open_note("checkpoint.txt", read("checkpoint.txt"), key)
    _, latest_size, latest_root, _ = open_note(
        "latest-checkpoint.txt", read("latest-checkpoint.txt"), key
    )
    proofs = json.loads(read("proofs.json"))
    count = 0
    for line in read("events.ndjson").splitlines():
        event = json.loads(line)
        if type(event.get("seq")) is not int or event["seq"] < 0:
            raise Failed("events.ndjson: a seq is not a non-negative integer")
        data = base64.b64decode(event["leaf"], validate=True)
        entry = proofs.get(str(event["seq"]))
        if not entry or entry["leaf_index"] != event["seq"] or entry["tree_size"] != size:
            raise Failed("proofs.json: no proof for event seq %d at tree size %d" % (event["seq"], size))
        proof = hashes(entry["proof"], "proofs.json seq %d" % event["seq"])
        if not verify_inclusion(leaf_hash(data), event["seq"], size, proof, root):
            raise Failed("event seq %d: its bytes are not in the signed tree" % event["seq"])
        count += 1
    consistency = json.loads(read("consistency.json"))
    if consistency["old_size"] != size or consistency["new_size"] != latest_size:
        raise Failed("consistency.json: sizes do not match the checkpoints")
    proof = hashes(consistency["proof"], "consistency.json")
    if not verify_consistency(size, latest_size, proof, root, latest_root):
        raise Failed("consistency.json: the latest checkpoint does not extend checkpoint.txt")
    if count == 0:
        raise Failed("events.ndjson: no events, nothing is proven")
    time = next((e[5:] for e in ext if e.startswith("time ")), "unknown time")
    print("OK: %d event(s) are in the log %s at tree size %d (signed %s);" % (count, origin, size, time))
    print("    the latest checkpoint (tree size %d) extends it." % latest_size)
    print("    Signed by %s+%s: compare it with the key the ledger's operator publishes." % (key[0], key[1].hex()))
    print("    Only each event's \"leaf\" bytes are proven here; `vigil evidence verify` also checks")
    print("    that each readable \"event\" copy is exactly what its leaf decodes to.")


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        verify(sys.argv[1])
    except (Failed, ValueError, KeyError, TypeError, OSError) as e:
        print("FAILED: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
