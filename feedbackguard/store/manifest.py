"""The signed manifest written beside every export: what the data file holds, its
SHA-256, the store's chain head it was verified at, and two signatures: an HMAC over
its fields (`feedbackguard store verify --manifest` checks that the store still holds
that head) and a detached Ed25519 signature of the manifest file's bytes
(`<file>.manifest.json.sig`), so a training job checks an export with the public key
alone (`check_export`, `feedbackguard store check-export`)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from feedbackguard.store import publickey, signing
from feedbackguard.store.caps import ExportCaps
from feedbackguard.store.writers import ExportFormat, count_rows

MANIFEST_DOMAIN = "fg.store.manifest.v1"  # domain tag (see feedbackguard.store.signing)
HASH_CHUNK_BYTES = 1 << 20


class ManifestCounts(BaseModel):
    model_config = ConfigDict(frozen=True)

    namespace: dict[str, int]
    kind: dict[str, int]
    status: dict[str, int]
    decided_by: dict[str, int] = Field(description="'auto' or 'moderator'")


class ChainHead(BaseModel):
    """The store's chain head an export was verified at (`feedbackguard.store.head`)."""

    model_config = ConfigDict(frozen=True)

    position: int
    digest: str


class Manifest(BaseModel):
    """What an export contains, signed: written next to the data as `<file>.manifest.json`."""

    model_config = ConfigDict(frozen=True)

    manifest_version: int = 3
    version: int
    chain: ChainHead = Field(description="the chain head verified before writing")
    created_at: datetime
    data_file: str
    format: ExportFormat
    sha256: str
    size_bytes: int
    items: int = Field(description="admitted events included")
    layout: Literal["events", "items"] = Field(description="one row per event, or per item")
    rows: int = Field(description="rows in the data file")
    columns: list[str]
    pii: bool = Field(description="whether IP, user agent, device and account id are in")
    public_key_id: str = Field(description="the Ed25519 key the .sig file is made with")
    counts: ManifestCounts
    excluded: dict[str, int] = Field(description="quarantined / capped items left out")
    caps: ExportCaps | None = None
    signature: str = ""

    def signed_bytes(self) -> bytes:
        """The canonical bytes the signature covers (everything but the signature)."""
        return signing.canonical(
            MANIFEST_DOMAIN, self.model_dump(mode="json", exclude={"signature"})
        )


def manifest_path(data_path: Path) -> Path:
    """Where the manifest of an export written to `data_path` lives."""
    return data_path.with_name(data_path.name + ".manifest.json")


def signature_path(data_path: Path) -> Path:
    """Where the Ed25519 signature of an export's manifest lives."""
    return data_path.with_name(manifest_path(data_path).name + ".sig")


def check_export(data_path: Path, key: Ed25519PublicKey) -> list[str]:
    """Problems with an export on disk, checked with the public key alone (empty when
    the manifest's signature, the file's SHA-256 and its row count all agree)."""
    try:
        raw = manifest_path(data_path).read_bytes()
        signature = signature_path(data_path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        return [f"cannot read the manifest or its signature: {exc}"]
    if not publickey.verify(key, raw, signature):
        return ["manifest signature does not verify with this public key"]
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError:
        return ["the manifest is signed but not a manifest this version understands"]
    problems = []
    if manifest.data_file != data_path.name:
        problems.append(f"the manifest is for {manifest.data_file!r}, not {data_path.name!r}")
    if sha256_file(data_path) != manifest.sha256:
        problems.append("data file SHA-256 differs from the manifest")
    elif count_rows(data_path) != manifest.rows:
        problems.append("data file row count differs from the manifest")
    return problems


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
