"""The signed manifest written beside every export: what the data file holds, its
SHA-256, the store's chain head it was verified at, and an HMAC over all of them, so a
training job can check what it is given (and `feedbackguard store verify --manifest`
that the store still holds that head)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from feedbackguard.store import signing
from feedbackguard.store.caps import ExportCaps
from feedbackguard.store.writers import ExportFormat

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

    manifest_version: int = 2
    version: int
    chain: ChainHead = Field(description="the chain head verified before writing")
    created_at: datetime
    data_file: str
    format: ExportFormat
    sha256: str
    size_bytes: int
    items: int
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


def check_export(data_path: Path, key: bytes) -> list[str]:
    """Problems with an export on disk (empty when its manifest and data verify)."""
    manifest = Manifest.model_validate_json(manifest_path(data_path).read_bytes())
    problems = []
    if not signing.verify(key, manifest.signed_bytes(), manifest.signature):
        problems.append("manifest signature does not verify")
    if sha256_file(data_path) != manifest.sha256:
        problems.append("data file SHA-256 differs from the manifest")
    return problems


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
