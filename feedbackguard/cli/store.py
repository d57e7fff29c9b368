"""`feedbackguard store export / verify / versions`: the retraining data, for the training job."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import orjson
import redis

from feedbackguard.cli.home import existing_settings
from feedbackguard.connection import connect
from feedbackguard.embedded import EmbeddedRedis
from feedbackguard.policy import Policy
from feedbackguard.policy.store import PolicyStore
from feedbackguard.settings import Settings
from feedbackguard.store import ExportCaps, Store, StoreError, signing


def inert(text: str) -> str:
    """Text safe to print on a terminal: control and other non-printable characters
    (ANSI escapes, bidi overrides) are shown escaped, never interpreted."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


@contextmanager
def _open_store() -> Iterator[Store]:
    store = Store.from_settings(existing_settings(store=True))
    try:
        yield store
    finally:
        store.close()


@click.group("store")
def store() -> None:
    """The retraining store: create it, export a dataset version, verify signatures,
    list versions."""


@store.command("init")
def init_command() -> None:
    """Create the home, the store and its signing key (unless they exist already).

    The key is made only for a store never written to; a store holding data whose key
    file is missing, or a different key, is refused. Keep <home>/signing.key with
    your backups: without it the store's signatures cannot be checked."""
    settings = Settings()
    key_file = settings.home / signing.KEY_FILE_NAME
    existed = settings.signing_key is not None or key_file.exists()
    with Store.from_settings(settings) as s:
        url = s.url.render_as_string(hide_password=True)
        key_id = s.key_id
    where = "FEEDBACKGUARD_SIGNING_KEY" if settings.signing_key is not None else key_file.resolve()
    state = "already initialised" if existed else "initialised"
    click.echo(
        f"{settings.home.resolve()}: {state}; store {url}, signing key {where} (id {key_id})"
    )


@store.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl")
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
    fmt: str,
    version: int | None,
    per_account: int | None,
    per_account_item: int | None,
    max_share: float | None,
) -> None:
    """Write the live items of a dataset version to PATH, and PATH.manifest.json."""
    if max_share is None:
        max_share = _policy_share()  # the policy's share cap
    caps = None
    if per_account is not None or per_account_item is not None or max_share < 1:
        caps = ExportCaps(
            per_account=per_account,
            per_account_item=per_account_item,
            max_share=max_share if max_share < 1 else None,
        )
    with _open_store() as s, click.progressbar(length=0, label="exporting") as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, done)
            bar.update(done - bar.pos)

        try:
            manifest = s.export(
                path,
                fmt="parquet" if fmt == "parquet" else "jsonl",
                version=version,
                caps=caps,
                progress=progress,
                actor="cli",
            )
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(
        f"version {manifest.version}: {manifest.items} items -> {path} "
        f"(sha256 {manifest.sha256}); excluded {manifest.excluded}"
    )


def _policy_share() -> float:
    """The policy in force's export share cap; the shipped default when Redis
    cannot be reached (an export must not need it)."""
    settings = Settings()
    if not settings.redis_url and not EmbeddedRedis(settings.home).is_running():
        return _share(Policy.default())  # no Redis to start just for an export
    try:
        r = connect(settings, timeout_s=5)
        try:
            policy = PolicyStore(r).current().policy
        finally:
            r.close()
    except (redis.RedisError, OSError, RuntimeError) as exc:
        click.echo(f"policy unreachable ({exc}); using the shipped export share", err=True)
        policy = Policy.default()
    return _share(policy)


def _share(policy: Policy) -> float:
    share = policy.consistency.export_max_share
    return 1.0 if share is None else share


@store.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_command(as_json: bool) -> None:
    """Check every signature and version; exit 1 listing what changed outside feedbackguard."""
    with _open_store() as s:
        report = s.verify()
    if as_json:
        click.echo(orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
    else:
        click.echo(
            f"checked {report.items_checked} items, {report.tombstones_checked} tombstones, "
            f"{report.versions_checked} versions: {report.problems_total} problem(s)"
        )
        for p in report.problems:
            event = f" event_id={inert(p.event_id)!r}" if p.event_id is not None else ""
            click.echo(f"{p.table} {p.id}{event}: {p.problem}")
        if report.problems_total > len(report.problems):
            click.echo(f"... and {report.problems_total - len(report.problems)} more")
    if not report.ok:
        raise SystemExit(1)


@store.command("versions")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
def versions_command(as_json: bool) -> None:
    """List the dataset versions, oldest first."""
    with _open_store() as s:
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
