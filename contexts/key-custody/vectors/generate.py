#!/usr/bin/env python3
"""Generate the committed test vectors for @aap/key-custody with an independent implementation.

Uses only Python `cryptography` (Debian's python3-cryptography), none of our TypeScript code.
CI never runs this script; it reads the JSON files it wrote. Re-run it only when the format
changes, and review the diff:

    python3 contexts/key-custody/vectors/generate.py

Outputs (deterministic: every key and nonce is derived from a fixed label with SHA-256):
- nist-aes-256-gcm.json  NIST CAVP AES-256-GCM known-answer cases, each re-checked here;
- envelope-v1.json       a keyring document (UMK v1/v2, wallet KEKs, system root), envelopes
                         sealed under it (fields, DynamoDB attributes, binary encoding v1),
                         and the SystemKeys values derived from its root.
"""
import base64
import hashlib
import json
import struct
from pathlib import Path

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE = Path(__file__).resolve().parent


def fixed(label: str, n: int = 32) -> bytes:
    return hashlib.sha256(("aap test vector: " + label).encode()).digest()[:n]


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


# --- NIST CAVP gcmEncryptExtIV256.rsp ([Keylen = 256] [IVlen = 96] [Taglen = 128]) ------------
NIST = [
    ("PTlen=0 AADlen=0 Count=0", "b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4",
     "516c33929df5a3284ff463d7", "", "", "", "bdc1ac884d332457a1d2664f168c76f0"),
    ("PTlen=0 AADlen=160", "886cff5f3e6b8d0e1ad0a38fcdb26de97e8acbe79f6bed66959a598fa5047d65",
     "3a8efa1cd74bbab5448f9945", "", "519fee519d25c7a304d6c6aa1897ee1eb8c59655", "",
     "f6d47505ec96c98a42dc3ae719877b87"),
    ("PTlen=128 AADlen=0 Count=0", "31bdadd96698c204aa9ce1448ea94ae1fb4a9a0b3c9d773b51bb1822666b8f22",
     "0d18e06c7c725ac9e362e1ce", "2db5168e932556f8089a0622981d017d", "", "fa4362189661d163fcd6a56d8bf0405a",
     "d636ac1bbedd5cc3ee727dc2ab4a9489"),
    ("PTlen=128 AADlen=0", "381873b5f9579d8241f0c61f0d9e327bb9f678691714aaa48ea7d92678d43fe7",
     "3fc8bec23603158e012d65e5", "7b622e9b408fe91f6fa800ecef838d36", "", "8ca4de5b4e2ab22431a009f3ddd01bae",
     "b3a7f80e3edf322622731550164cd747"),
    ("PTlen=128 AADlen=128", "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
     "ac93a1a6145299bde902f21a", "2d71bcfa914e4ac045b2aa60955fad24", "1e0889016f67601c8ebea4943bc23ad6",
     "8995ae2e6df3dbf96fac7b7137bae67f", "eca5aa77d51d4a0a14d9c51e1da474ab"),
    ("PTlen=128 AADlen=160 Count=0", "83688deb4af8007f9b713b47cfa6c73e35ea7a3aa4ecdb414dded03bf7a0fd3a",
     "0b459724904e010a46901cf3", "33d893a2114ce06fc15d55e454cf90c3", "794a14ccd178c8ebfd1379dc704c5e208f9d8424",
     "cc66bee423e3fcd4c0865715e9586696", "0fb291bd3dba94a1dfd8b286cfb97ac5"),
    ("PTlen=128 AADlen=160", "013f549af9ecc2ee0259d5fc2311059cb6f10f6cd6ced3b543babe7438a88251",
     "e45e759a3bfe4b652dc66d5b", "79490d4d233ba594ece1142e310a9857", "b5fe530a5bafce7ae79b3c15471fa68334ab378e",
     "619443034e4437b893a45a4c89fad851", "6da8a991b690ff6a442087a356f8e9e3"),
    ("PTlen=128 AADlen=384", "e4fed339c7b0cd267305d11ab0d5c3273632e8872d35bdc367a1363438239a35",
     "0365882cf75432cfd23cbd42", "fff39a087de39a03919fbd2f2fa5f513",
     "8a97d2af5d41160ac2ff7dd8ba098e7aa4d618f0f455957d6a6d0801796747ba57c32dfbaaaf15176528fe3a0e4550c9",
     "8d9e68f03f7e5f4a0ffaa7650d026d08", "3554542c478c0635285a61d1b51f6afa"),
    ("PTlen=408 AADlen=128", "5fe01c4baf01cbe07796d5aaef6ec1f45193a98a223594ae4f0ef4952e82e330",
     "bd587321566c7f1a5dd8652d",
     "881dc6c7a5d4509f3c4bd2daab08f165ddc204489aa8134562a4eac3d0bcad7965847b102733bb63d1e5c598ece0c3e5dadddd",
     "9013617817dda947e135ee6dd3653382",
     "16e375b4973b339d3f746c1c5a568bc7526e909ddff1e19c95c94a6ccff210c9a4a40679de5760c396ac0e2ceb1234f9f5fe26",
     "abd3d26d65a6275f7a4f56b422acab49"),
]

# McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)" (the NIST GCM submission),
# AES-256 test cases 13-16.
H15_KEY = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
H15_PT = ("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
H15_CT = ("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad")
GCM_SPEC = [
    ("GCM spec test case 13", "00" * 32, "00" * 12, "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
    ("GCM spec test case 14", "00" * 32, "00" * 12, "00" * 16, "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"),
    ("GCM spec test case 15", H15_KEY, "cafebabefacedbaddecaf888", H15_PT, "", H15_CT,
     "b094dac5d93471bdec1a502270e3cc6c"),
    ("GCM spec test case 16", H15_KEY, "cafebabefacedbaddecaf888", H15_PT[:120],
     "feedfacedeadbeeffeedfacedeadbeefabaddad2", H15_CT[:120], "76fc6ece0f4e1768cddf8853bb2d551b"),
]


def nist_vectors():
    cases = []
    for source, rows in (("NIST CAVP gcmEncryptExtIV256.rsp", NIST), ("McGrew-Viega GCM specification", GCM_SPEC)):
        for name, key, iv, pt, aad, ct, tag in rows:
            out = AESGCM(bytes.fromhex(key)).encrypt(bytes.fromhex(iv), bytes.fromhex(pt), bytes.fromhex(aad) or None)
            assert out.hex() == ct + tag, f"{name}: python cryptography disagrees with the published vector"
            cases.append({"source": source, "name": name, "key": key, "iv": iv, "pt": pt, "aad": aad, "ct": ct,
                          "tag": tag})
            # A failing case beside every passing one: the tag with its last bit flipped.
            bad_tag = bytes.fromhex(tag)[:-1] + bytes([bytes.fromhex(tag)[-1] ^ 1])
            cases.append({"source": source, "name": name + " (tag tampered)", "key": key, "iv": iv, "pt": pt,
                          "aad": aad, "ct": ct, "tag": bad_tag.hex(), "fail": True})
    return cases


# --- Our formats, re-implemented from the ADRs ------------------------------------------------
def gcm(key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    return AESGCM(key).encrypt(nonce, data, aad)


def kek_aad(wallet: str, kek_version: int, umk: int) -> bytes:
    return f"aap:v1:kek:{wallet}:kek-v{kek_version}:umk-v{umk}".encode()


def system_aad(umk: int) -> bytes:
    return f"aap:v1:system-root:umk-v{umk}".encode()


def wrap_dek(kek: bytes, kek_version: int, wallet: str, purpose: str, dek: bytes, nonce: bytes) -> bytes:
    header = bytes([1]) + struct.pack(">I", kek_version)
    aad = f"aap:v1:dek:{wallet}:{purpose}:".encode() + header
    return header + nonce + gcm(kek, nonce, dek, aad)


def canonical_address(wallet: str, name: str, version: int) -> str:
    return f"aap:v1:vault:{wallet}:{name}:{version}"


def encode_envelope(ciphertext: bytes, nonce: bytes, wrapped: bytes, key_id: str) -> bytes:
    kid = key_id.encode()
    return (b"AAPE" + bytes([1, 1, len(nonce)]) + nonce + struct.pack(">H", len(kid)) + kid
            + struct.pack(">H", len(wrapped)) + wrapped + struct.pack(">I", len(ciphertext)) + ciphertext)


def hkdf(root: bytes, info: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"aap:v1:system-keys", info=info.encode()).derive(root)


def envelope_vectors():
    umk1, umk2 = fixed("umk v1"), fixed("umk v2")
    root = fixed("system root")
    created = "2026-11-22T00:00:00.000Z"
    keks = {("codex", 1): (fixed("kek codex v1"), 1), ("codex", 2): (fixed("kek codex v2"), 2),
            ("claude", 1): (fixed("kek claude v1"), 1), ("claude", 2): (fixed("kek claude v2"), 2)}
    umks = {1: umk1, 2: umk2}
    wallets = {}
    for (wallet, version), (kek, umk) in sorted(keks.items()):
        nonce = fixed(f"kek nonce {wallet} {version}", 12)
        wallets.setdefault(wallet, {"current": 2, "keks": []})["keks"].append({
            "version": version, "umk": umk, "nonce": b64(nonce),
            "wrapped": b64(gcm(umks[umk], nonce, kek, kek_aad(wallet, version, umk))), "createdAt": created})
    sys_nonce = fixed("system nonce", 12)
    keyring = {
        "format": "aap-keyring", "version": 1, "kind": "local", "revision": 3, "primary": 2,
        "umks": [{"version": 1, "key": b64(umk1), "createdAt": created},
                 {"version": 2, "key": b64(umk2), "createdAt": created}],
        "wallets": wallets,
        "system": {"umk": 2, "nonce": b64(sys_nonce), "wrapped": b64(gcm(umk2, sys_nonce, root, system_aad(2))),
                   "createdAt": created},
    }

    cases = []
    samples = [
        ("codex", "openrouter/api-key", 1, 1, b"sk-or-v1-canary-0001"),
        ("codex", "openrouter/api-key", 2, 2, b"sk-or-v1-canary-0002"),
        ("codex", "empty", 1, 2, b""),
        ("claude", "ssh/ca-key", 7, 2, "clé privée — ключ — 鍵".encode()),
        ("claude", "name:with:colons", 123456789, 1, bytes(range(256)) * 4),
        ("codex", "one-kib", 1, 2, fixed("1kib", 32) * 32),
    ]
    for i, (wallet, name, version, kek_version, plaintext) in enumerate(samples):
        kek = keks[(wallet, kek_version)][0]
        dek = fixed(f"dek {i}")
        wrap_nonce = fixed(f"wrap nonce {i}", 12)
        nonce = fixed(f"content nonce {i}", 12)
        wrapped = wrap_dek(kek, kek_version, wallet, "vault", dek, wrap_nonce)
        key_id = f"local:{wallet}:kek-v{kek_version}"
        aad = canonical_address(wallet, name, version).encode()
        ciphertext = gcm(dek, nonce, plaintext, aad)
        cases.append({
            "address": {"wallet": wallet, "name": name, "version": version},
            "aad": aad.decode(),
            "plaintext": plaintext.hex(),
            "dek": dek.hex(),
            "envelope": {"ciphertext": ciphertext.hex(), "nonce": nonce.hex(), "wrappedDek": wrapped.hex(),
                         "keyId": key_id},
            "attributes": {"content_encrypted": b64(ciphertext), "content_nonce": b64(nonce),
                           "wrapped_dek": b64(wrapped), "key_id": key_id},
            "binary": encode_envelope(ciphertext, nonce, wrapped, key_id).hex(),
        })

    system = {"hmac": [], "ed25519": []}
    for purpose, message in (("audit-hmac", "token-fingerprint:abc123"), ("integrity-mac", "session#01J0000000")):
        key = hkdf(root, f"hmac-sha256:{purpose}")
        mac = hmac.HMAC(key, hashes.SHA256())
        mac.update(message.encode())
        system["hmac"].append({"purpose": purpose, "key": key.hex(), "message": message, "hmac": mac.finalize().hex()})
    for purpose, message in (("audit-checkpoint", "stream=s1 seq=42 hash=" + "ab" * 32),):
        seed = hkdf(root, f"ed25519:{purpose}")
        private = Ed25519PrivateKey.from_private_bytes(seed)
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        system["ed25519"].append({"purpose": purpose, "publicKey": public.hex(), "message": message,
                                  "signature": private.sign(message.encode()).hex(),
                                  "keyId": "ed25519:" + public.hex()[:16]})

    return {"keyring": keyring, "systemRoot": root.hex(), "envelopes": cases, "systemKeys": system}


def write(name: str, body: dict) -> None:
    (HERE / name).write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    import cryptography

    generator = {"by": "vectors/generate.py", "library": f"python cryptography {cryptography.__version__}"}
    write("nist-aes-256-gcm.json", {"generator": generator, "cases": nist_vectors()})
    write("envelope-v1.json", {"generator": generator, **envelope_vectors()})
    print("wrote nist-aes-256-gcm.json and envelope-v1.json")
