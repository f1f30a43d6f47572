#!/usr/bin/env python3
"""A third party's check of a Tongban audit proof, written from the specs
(RFC 9162 §2.1 for the tree, C2SP signed-note and tlog-checkpoint for the
checkpoint), not from the hub's code: hashlib and `cryptography` only.

    verify_audit.py PROOF.json VERIFIER_KEY

PROOF.json is what `tongban audit prove` prints; VERIFIER_KEY what
`tongban audit key` prints (name+keyid+base64(0x01 || Ed25519 key)).
Prints `ok: …` and exits 0 when everything holds; prints the first
failure and exits 1 otherwise.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(why):
    print(f"FAILED: {why}")
    sys.exit(1)


def h(*parts):
    d = hashlib.sha256()
    for p in parts:
        d.update(p)
    return d.digest()


def leaf(data):
    return h(b"\x00", data)


def node(left, right):
    return h(b"\x01", left, right)


def verifier_key(text):
    name, key_id, key = text.strip().split("+", 2)
    raw = base64.b64decode(key)
    if len(raw) != 33 or raw[0] != 0x01:
        fail("not an Ed25519 verifier key")
    want = h(name.encode(), b"\n", raw)[:4]
    if want.hex() != key_id:
        fail("the verifier key's id does not match its name and key")
    return name, want, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note, name, key_id, public):
    """The checkpoint body's (origin, size, root) if `public` signed it."""
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        fail("not a signed note")
    body += "\n"
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            fail(f"not a signature line: {line!r}")
        signer, sig = line[2:].split(" ", 1)
        blob = base64.b64decode(sig)
        if signer != name or blob[:4] != key_id:
            continue
        try:
            public.verify(blob[4:], body.encode())
        except InvalidSignature:
            fail("the checkpoint's signature does not verify")
        origin, size, root = body.split("\n")[:3]
        if origin != name:
            fail(f"the checkpoint is of {origin}, the key of {name}")
        return origin, int(size), base64.b64decode(root)
    fail(f"no signature by {name} on the checkpoint")


def verify_inclusion(index, size, leaf_hash, path, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, path):
    """RFC 9162 §2.1.4.2."""
    if first == second:
        return not path and first_root == second_root
    if first == 0 or first > second or not path:
        return False
    if first & (first - 1) == 0:
        path = [first_root] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def main():
    proof = json.load(open(sys.argv[1]))
    name, key_id, public = verifier_key(sys.argv[2])
    origin, size, root = open_note(proof["checkpoint"], name, key_id, public)
    if size != proof["tree_size"]:
        fail(f"the proof is for a tree of {proof['tree_size']}, the checkpoint of {size}")
    record = proof["record"].encode()
    if json.loads(record)["seq"] != proof["seq"]:
        fail("the record is not the one asked for")
    lh = leaf(record)
    if lh.hex() != proof["leaf_hash"]:
        fail("the leaf hash is not that of the record")
    path = [bytes.fromhex(p) for p in proof["inclusion_path"]]
    if not verify_inclusion(proof["seq"] - 1, size, lh, path, root):
        fail(f"record {proof['seq']} is not in the tree the checkpoint signed")
    said = f"ok: record {proof['seq']} is leaf {proof['seq'] - 1} of the tree of {size} records signed by {origin}"
    c = proof.get("consistency")
    if c:
        cpath = [bytes.fromhex(p) for p in c["path"]]
        if not verify_consistency(c["from"], size, bytes.fromhex(c["from_root"]), root, cpath):
            fail(f"the tree of {size} records does not extend the one of {c['from']}")
        said += f"; it extends the tree of its first {c['from']} records"
    print(said)


main()
