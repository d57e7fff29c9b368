"""The retraining store: append-only, signed, versioned by watermarks
(docs/architecture.md).

Admitted and moderator-approved events are appended as HMAC-signed rows and never
changed; quarantine and restore are signed tombstones; a dataset version is a
watermark over the rows with signed counts and a keyed digest of its members, so
an export is reproducible and `verify` notices anything changed outside
feedbackguard. One module per concern:

* `schema` — the tables;
* `rows` — rows in their stored, signed form and back; `signing` — the HMAC and key;
  `keyid` — the key's id, recorded in the store so a wrong key is refused;
* `database` — the engine and the write / read transactions (locking);
* `store` — `Store`, the one writer: admit, versions, quarantine / restore, reads;
* `export`, with `caps`, `writers` and `manifest` — a version written to a file;
* `verify` — every signature and every version's digest checked;
* `purge` — purges and restores as the admin API and CLI run them (audited).
"""

from __future__ import annotations

from feedbackguard.store.caps import ExportCaps
from feedbackguard.store.errors import (
    IntegrityError,
    NotAdmittedError,
    StoreError,
    StoreKeyError,
)
from feedbackguard.store.manifest import Manifest, check_export, manifest_path
from feedbackguard.store.models import StoredItem, Version
from feedbackguard.store.rows import Admission, admission, admission_from_json
from feedbackguard.store.store import STORE_FILE_NAME, Store
from feedbackguard.store.verify import VerifyReport

__all__ = [
    "STORE_FILE_NAME",
    "Admission",
    "ExportCaps",
    "IntegrityError",
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
]
