"""`feedbackguard store init / export / check-export / public-key / verify / versions`:
the retraining data, for the training job."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import orjson
import redis

from feedbackguard.cli.home import existing_settings
from feedbackguard.connection import connect
from feedbackguard.policy import Policy
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import ExportCaps, Store, check_export, publickey, signing


def inert(text: str) -> str:
    """Text safe to print on a terminal: control and other non-printable characters
    (ANSI escapes, bidi overrides) are shown escaped, never interpreted."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


@contextmanager
def _open_store() -> Iterator[tuple[Store, redis.Redis[bytes]]]:
    """The deployment's store, with the Redis that keeps its chain head."""
    settings = existing_settings(redis=True, store=True)
    r = connect(settings)
    try:
        with Store.from_settings(settings, r) as store:
            yield store, r
    finally:
        r.close()


@click.group("store")
def store() -> None:
    """The retraining store: create or upgrade it, export a dataset version, verify its
    chain, list versions."""


@store.command("init")
@click.option(
    "--adopt-head",
    is_flag=True,
    help="Keep the store's own chain head in Redis in place of the one kept there "
    "(after restoring a backup of the store): the chain must verify on its own; audited.",
)
@click.option("--actor", default=getpass.getuser, show_default="$USER")
def init_command(adopt_head: bool, actor: str) -> None:
    """Create the home, the store and its signing key (unless they exist already);
    upgrade a store written before the hash chain; keep the chain's head in Redis.
    Make the export key pair (export.key, private; export.pub, for training jobs)
    if it is missing.

    The key is made only for a store never written to; a store holding data whose key
    file is missing, or a different key, is refused. Keep <home>/signing.key with
    your backups: without it the store's signatures cannot be checked."""
    settings = Settings()
    key_file = settings.home / signing.KEY_FILE_NAME
    existed = settings.signing_key is not None or key_file.exists()
    with Store.from_settings(settings, create=True, upgrade=True) as s:
        url = s.url.render_as_string(hide_password=True)
        key_id = s.key_id
        upgraded = s.upgraded
        head = s.head()
    where = "FEEDBACKGUARD_SIGNING_KEY" if settings.signing_key is not None else key_file.resolve()
    state = "already initialised" if existed else "initialised"
    click.echo(
        f"{settings.home.resolve()}: {state}; store {url}, signing key {where} (id {key_id})"
    )
    public = (settings.home / publickey.PUBLIC_KEY_FILE_NAME).resolve()
    click.echo(f"export public key {public} (for training jobs: `store check-export`)")
    if upgraded:
        click.echo(f"upgraded the store to the hash chain: {upgraded} entries chained")
    if head.position or adopt_head:
        _keep_head(settings, adopt_head, actor)


def _keep_head(settings: Settings, adopt: bool, actor: str) -> None:
    """Publish the store's head in Redis when none is kept there (or, with `adopt`,
    whatever is kept there)."""
    r = connect(settings)
    try:
        with Store.from_settings(settings, r) as s:
            assert s.outside is not None
            kept = s.outside.published()
            if kept is not None and not adopt:
                click.echo(f"chain head kept in Redis at position {kept.position}")
                return
            note = "store init --adopt-head" if adopt else "store init: no head kept yet"
            head, replaced = s.adopt_head(actor, note)
    finally:
        r.close()
    was = "" if replaced is None else f" (replacing position {replaced.position})"
    click.echo(f"chain head at position {head.position} now kept in Redis{was}; audited")


@store.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--include-pii",
    is_flag=True,
    help="Keep the account id, IP, user agent and device (left out by default; the "
    "account's keyed pseudonym is always there).",
)
@click.option(
    "--per-item",
    is_flag=True,
    help="One row per item: its admitted label (weighted majority), support, agreement.",
)
@click.option(
    "--version",
    "version",
    type=int,
    default=None,
    help="Dataset version to export (default: the current state, as a version).",
)
@click.option("--per-account", type=click.IntRange(min=1), default=None, help="Cap per account.")
@click.option(
    "--per-account-item",
    type=click.IntRange(min=1),
    default=None,
    help="Cap per (account, item): 1 keeps an account's first feedback per item.",
)
@click.option(
    "--max-share",
    type=click.FloatRange(min=0, min_open=True, max=1),
    default=None,
    help="Most of any label or item one account may hold (default: the policy's "
    "consistency.export_max_share; 1 turns it off).",
)
def export_command(
    path: Path,
    include_pii: bool,
    per_item: bool,
    version: int | None,
    per_account: int | None,
    per_account_item: int | None,
    max_share: float | None,
) -> None:
    """Write the live items of a dataset version to PATH (PATH.jsonl or PATH.parquet,
    flat typed columns), PATH.manifest.json and its Ed25519 signature
    PATH.manifest.json.sig.

    The whole chain is verified first (against the head kept in Redis and in the audit
    log); an export of a store that does not verify is refused, exit 1."""
    with _open_store() as (s, r), click.progressbar(length=0, label="exporting") as bar:
        if max_share is None:
            max_share = _share(PolicyStore(r).current().policy)  # the policy's share cap
        caps = None
        if per_account is not None or per_account_item is not None or max_share < 1:
            caps = ExportCaps(
                per_account=per_account,
                per_account_item=per_account_item,
                max_share=max_share if max_share < 1 else None,
            )

        def progress(done: int, total: int) -> None:
            bar.length = max(total, done)
            bar.update(done - bar.pos)

        manifest = s.export(
            path,
            version=version,
            caps=caps,
            progress=progress,
            actor="cli",
            include_pii=include_pii,
            per_item=per_item,
        )
    click.echo(
        f"version {manifest.version}: {manifest.items} items, {manifest.rows} rows -> {path} "
        f"(sha256 {manifest.sha256}); excluded {manifest.excluded}; "
        f"chain head {manifest.chain.position}"
    )


@store.command("public-key")
def public_key_command() -> None:
    """Print the public key export manifests are signed with (PEM), for training jobs."""
    settings = existing_settings(store=True)
    path = settings.home / publickey.PRIVATE_KEY_FILE_NAME
    if not path.exists():
        raise click.ClickException(
            f"{path.resolve()} does not exist: run `feedbackguard store init`"
        )
    click.echo(publickey.public_pem(publickey.load_private(path).public_key()).decode(), nl=False)


@store.command("check-export")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The export public key (PEM); default: export.pub in FEEDBACKGUARD_HOME.",
)
def check_export_command(path: Path, public_key: Path | None) -> None:
    """Check an export with the public key alone: the manifest's Ed25519 signature,
    the file's SHA-256 and its row count; exit 1 naming what does not match."""
    if public_key is None:
        public_key = Settings().home / publickey.PUBLIC_KEY_FILE_NAME
        if not public_key.exists():
            raise click.ClickException(f"{public_key.resolve()} does not exist: pass --public-key")
    problems = check_export(path, publickey.load_public(public_key))
    for problem in problems:
        click.echo(f"{path}: {inert(problem)}")
    if problems:
        raise SystemExit(1)
    click.echo(f"{path}: manifest signature, SHA-256 and row count check out")


def _share(policy: Policy) -> float:
    share = policy.consistency.export_max_share
    return 1.0 if share is None else share


@store.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--manifest",
    "manifests",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An export's manifest whose chain head the store must still hold (repeatable).",
)
def verify_command(as_json: bool, manifests: tuple[Path, ...]) -> None:
    """Walk the whole chain: every entry's signature and position, every version's
    counts, and the heads kept in Redis, in the audit log and in the manifests given;
    exit 1 listing what changed, moved or was cut off outside feedbackguard."""
    with _open_store() as (s, _):
        report = s.verify(manifests)
    if as_json:
        click.echo(orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
    else:
        click.echo(
            f"checked {report.items_checked} items, {report.tombstones_checked} tombstones, "
            f"{report.versions_checked} versions up to chain position {report.head_position}, "
            f"against the head kept in {', '.join(report.heads_checked) or 'no place'}: "
            f"{report.problems_total} problem(s)"
        )
        for p in report.problems:
            event = f" event_id={inert(p.event_id)!r}" if p.event_id is not None else ""
            click.echo(f"{p.table} {p.id}{event}: {inert(p.problem)}")
        if report.problems_total > len(report.problems):
            click.echo(f"... and {report.problems_total - len(report.problems)} more")
    if not report.ok:
        raise SystemExit(1)


@store.command("versions")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
def versions_command(as_json: bool) -> None:
    """List the dataset versions, oldest first."""
    with Store.from_settings(existing_settings(store=True)) as s:
        versions = s.versions()
    if as_json:
        payload = [v.model_dump(mode="json") for v in versions]
        click.echo(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
        return
    header = f"{'version':>7}  {'created_at (UTC)':<19}  {'watermark':>9}  {'live':>9}  "
    click.echo(header + f"{'quarantined':>11}  actor / note")
    for v in versions:
        click.echo(
            f"{v.version:>7}  {v.created_at:%Y-%m-%d %H:%M:%S}  {v.watermark:>9}  {v.live:>9}  "
            f"{v.quarantined:>11}  {inert(v.actor)} / {inert(v.note)}"
        )
