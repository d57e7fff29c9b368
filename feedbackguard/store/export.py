"""Exporting a dataset version: the whole chain verified first, then the version's
live rows from the same read transaction, capped, written as flat typed rows (one per
event, or per item: `feedbackguard.store.flat`), counted against the version, and a
manifest beside it, signed with the HMAC key and with the Ed25519 export key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from feedbackguard.store import publickey, signing
from feedbackguard.store.caps import ExportCaps, over_cap, share_cap
from feedbackguard.store.database import Database
from feedbackguard.store.errors import IntegrityError
from feedbackguard.store.flat import ItemTally, columns, decided_by_group, event_row
from feedbackguard.store.manifest import (
    ChainHead,
    Manifest,
    ManifestCounts,
    manifest_path,
    sha256_file,
    signature_path,
)
from feedbackguard.store.models import Version
from feedbackguard.store.queries import live_query, stream
from feedbackguard.store.verify import Expected, verify_store
from feedbackguard.store.writers import format_of, open_writer, write_atomically

PROGRESS_EVERY = 1000  # export progress callback cadence, in rows

Progress = Callable[[int, int], None]  # (items written so far, items expected)


def export_version(
    db: Database,
    key: bytes,
    export_key: Ed25519PrivateKey,
    path: Path,
    choose: Callable[[], Version],
    caps: ExportCaps | None,
    progress: Progress | None,
    expected: Callable[[], list[Expected]],
    *,
    include_pii: bool = False,
    per_item: bool = False,
) -> Manifest:
    """Write the live items of the version `choose` gives to `path`, and its manifest.

    `path`'s suffix picks the format (`.jsonl`, `.parquet`). The file is opened first,
    so a wrong suffix or a missing pyarrow fails before a version is made.
    A chain that does not verify (against the heads `expected` gives, kept outside),
    or items written that do not add up to the version's live count, abort the export
    with `IntegrityError`; the data file appears only when complete and counted.
    """
    fmt = format_of(path)
    layout = columns(per_item, include_pii)
    writer = open_writer(path, layout)  # fails early when pyarrow is missing
    tally = ItemTally() if per_item else None
    try:
        chosen = choose()
        counts: dict[str, Counter[str]] = {
            name: Counter() for name in ("namespace", "kind", "status", "decided_by")
        }
        capped = 0
        per_account: Counter[str] = Counter()
        per_account_item: Counter[tuple[str, str]] = Counter()
        written = 0
        shared = 0
        heads = expected()
        with db.reading() as conn:
            report = verify_store(conn, key, heads, outside=bool(heads))
            if not report.ok:
                raise IntegrityError(
                    f"the store does not verify, nothing was exported ({report.problems_total} "
                    f"problem(s): {report.summary()}); run `feedbackguard store verify`"
                )
            query = live_query(chosen.watermark, chosen.version)
            over_share = share_cap(conn, query, caps)  # the policy share per account
            for row in stream(conn, query):
                if caps is not None and over_cap(caps, row, per_account, per_account_item):
                    capped += 1
                    continue
                if over_share is not None and over_share(row):
                    shared += 1
                    continue
                record = event_row(row, key, include_pii)
                if tally is None:
                    writer.write(record)
                else:
                    tally.add(record)
                written += 1
                counts["namespace"][row["namespace"]] += 1
                counts["kind"][row["kind"]] += 1
                counts["status"]["admitted"] += 1
                counts["decided_by"][decided_by_group(row["decided_by"])] += 1
                if progress is not None and written % PROGRESS_EVERY == 0:
                    progress(written, chosen.live)
        if written + capped + shared != chosen.live:
            raise IntegrityError(
                f"version {chosen.version} holds {chosen.live} live items, but "
                f"{written} were written and {capped + shared} capped: the store changed "
                "under the export; run `feedbackguard store verify`"
            )
        rows = written
        if tally is not None:
            rows = 0
            for record in tally.rows():
                writer.write(record)
                rows += 1
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    if progress is not None:
        progress(written, chosen.live)
    manifest = Manifest(
        version=chosen.version,
        chain=ChainHead(position=report.head_position, digest=report.head_digest),
        created_at=datetime.now(UTC),
        data_file=path.name,
        format=fmt,
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        items=written,
        layout="items" if per_item else "events",
        rows=rows,
        columns=[c.name for c in layout],
        pii=include_pii and not per_item,
        public_key_id=publickey.public_key_id(export_key.public_key()),
        counts=ManifestCounts(**{k: dict(sorted(v.items())) for k, v in counts.items()}),
        excluded={"quarantined": chosen.quarantined, "capped": capped, "over_share": shared},
        caps=caps,
    )
    manifest = manifest.model_copy(update={"signature": signing.sign(key, manifest.signed_bytes())})
    raw = orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
    write_atomically(signature_path(path), publickey.sign(export_key, raw).encode() + b"\n")
    write_atomically(manifest_path(path), raw)
    return manifest
