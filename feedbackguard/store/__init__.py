"""The retraining store: append-only, signed, versioned by watermarks
(docs/architecture.md).

Admitted and moderator-approved events are appended as rows and never changed;
quarantine and restore are tombstones; a dataset version is a watermark over the rows
with its counts. Every entry is a link of one HMAC hash chain whose head is also kept
outside the database, so an export is reproducible and `verify` notices anything
changed, removed, reordered or cut off outside feedbackguard. One module per concern:

* `schema` — the tables;
* `rows` — entries in their stored, signed form and back, and the chain's links;
  `signing` — the HMAC and key; `keyid` — the key's id, recorded in the store so a
  wrong key is refused;
* `head` — the chain's head kept outside the database (Redis, the audit log);
* `database` — the engine and the write / read transactions (writers take turns);
* `store` — `Store`, the one writer: admit, versions, quarantine / restore, reads;
* `export`, with `caps`, `flat`, `writers` and `manifest` — a version written to a
  file as flat typed rows, its manifest signed (`publickey`: the Ed25519 export key);
* `verify` — the walk along the chain: signatures, positions, counts, outside heads;
* `legacy` — stores written before the chain, and their upgrade;
* `purge` — purges and restores as the admin API and CLI run them (audited).
"""

from __future__ import annotations

from feedbackguard.store import publickey
from feedbackguard.store.caps import ExportCaps
from feedbackguard.store.errors import (
    IntegrityError,
    LegacyStoreError,
    NotAdmittedError,
    StoreError,
    StoreKeyError,
)
from feedbackguard.store.manifest import Manifest, check_export, manifest_path, signature_path
from feedbackguard.store.models import StoredItem, Version
from feedbackguard.store.queries import EventKey
from feedbackguard.store.rows import Admission, Head, admission, admission_from_json
from feedbackguard.store.store import STORE_FILE_NAME, Store
from feedbackguard.store.verify import VerifyReport

__all__ = [
    "STORE_FILE_NAME",
    "Admission",
    "EventKey",
    "ExportCaps",
    "Head",
    "IntegrityError",
    "LegacyStoreError",
    "Manifest",
    "NotAdmittedError",
    "Store",
    "StoreError",
    "StoreKeyError",
    "StoredItem",
    "VerifyReport",
    "Version",
    "admission",
    "admission_from_json",
    "check_export",
    "manifest_path",
    "publickey",
    "signature_path",
]
