#!/usr/bin/env python3
"""Independent check of a Vigil compliance report (JSON or HTML), not Vigil's own code.

Written from the format stated in crates/vigil-report/src/signature.rs: the digest is the
SHA-256 of the report's JSON without its `signature` member, serialized compactly with sorted
keys; the note `vigil-report/v1\\nFRAMEWORK\\nDIGEST\\nSIZE\\n` is a C2SP signed note by the
ledger key (Ed25519, checked with the `cryptography` package).

usage: verify_report.py VKEY REPORT_FILE        exit 0 when it checks, 1 when not
"""
import base64
import hashlib
import html
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
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if key_id.hex() != key_hash:
        fail("vkey hash does not match its key")
    return name, key_id, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note, name, key_id, public_key):
    split = note.rfind("\n\n")
    if split < 0:
        fail("note has no blank line")
    text, sigs = note[: split + 1], note[split + 2 :]
    for line in sigs.splitlines():
        sig_name, blob = line[2:].split(" ", 1)
        blob = base64.b64decode(blob)
        if sig_name == name and blob[:4] == key_id:
            try:
                public_key.verify(blob[4:], text.encode())
            except Exception:
                fail("bad signature")
            return text
    fail("no signature by the expected key")


def main():
    vkey, path = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read().decode("utf-8")
    if data.lstrip().startswith("{"):
        report = json.loads(data)
    else:
        start = data.find('<pre id="vigil-report-json" hidden>')
        if start < 0:
            fail("no embedded JSON")
        start = data.index(">", start) + 1
        end = data.index("</pre>", start)
        report = json.loads(html.unescape(data[start:end]))
    sig = report.pop("signature")
    body = json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    if digest != sig["digest"]:
        fail(f"digest {digest} != stated {sig['digest']}")
    name, key_id, pub = parse_vkey(vkey)
    size = 0
    if sig.get("checkpoint"):
        cp = open_note(sig["checkpoint"], name, key_id, pub)
        size = int(cp.split("\n")[1])
    text = open_note(sig["note"], name, key_id, pub)
    want = f"vigil-report/v1\n{report['framework']}\n{digest}\n{size}\n"
    if text != want:
        fail(f"signed text {text!r} != {want!r}")
    print("OK", digest, size)


main()
