"""The Ed25519 key pair that signs export manifests, so a training job checks an
export with the public key alone (the HMAC key stays with feedbackguard).

`feedbackguard store init` makes the pair beside the HMAC key: `export.key` (private,
PKCS#8 PEM, mode 0600) and `export.pub` (SubjectPublicKeyInfo PEM, given to training
jobs). The signature is detached: `<file>.manifest.json.sig` holds the hex Ed25519
signature of the manifest file's exact bytes, so checking it needs no canonical form.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from feedbackguard.store.signing import KEY_FILE_MODE

PRIVATE_KEY_FILE_NAME = "export.key"
PUBLIC_KEY_FILE_NAME = "export.pub"
PUBLIC_KEY_ID_CHARS = 16


def load_or_create(home: Path) -> Ed25519PrivateKey:
    """The private key in `home`, made there with its public key the first time
    (several processes at once agree on one pair: see `signing.load_or_create_key`)."""
    path = home / PRIVATE_KEY_FILE_NAME
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process won the race
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    key = load_private(path)
    public = home / PUBLIC_KEY_FILE_NAME
    if not public.exists():
        public.write_bytes(public_pem(key.public_key()))
    return key


def load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_id(key: Ed25519PublicKey) -> str:
    """A short SHA-256 of the raw public key: which key signed a manifest."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:PUBLIC_KEY_ID_CHARS]


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    """The Ed25519 signature of `message`, hex."""
    return key.sign(message).hex()


def verify(key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    """Whether `signature` (hex) is `key`'s Ed25519 signature of `message`."""
    try:
        key.verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True
