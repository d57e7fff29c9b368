"""`feedbackguard spool status|replay`: the local spool capture writes while Redis is down.

Each app process replays its spool by itself once Redis answers again (every
`spool_retry_s`); these commands are for operators: see what waits, or replay now
(e.g. from a host whose app is stopped).
"""

from __future__ import annotations

import click
import redis

from feedbackguard.capture.spool import Spool
from feedbackguard.cli.home import existing_settings
from feedbackguard.connection import connect
from feedbackguard.settings import Settings


def _spool(settings: Settings) -> Spool:
    return Spool(settings.resolved_spool_path, settings.spool_max_bytes)


@click.group("spool")
def spool_group() -> None:
    """Events captured while Redis was unreachable."""


@spool_group.command()
def status() -> None:
    """Say how many events wait in the spool, and how full it is."""
    st = _spool(Settings()).status()
    used = st.spooled_bytes + st.replaying_bytes
    click.echo(
        f"{st.pending_events} event(s) waiting in {st.path} "
        f"({used} of {st.max_bytes} bytes; {st.replaying_events} in an unfinished replay; "
        f"{st.bad_events} unreadable line(s) set aside)"
    )


@spool_group.command()
def replay() -> None:
    """Send every spooled event to its inbox stream now."""
    settings = existing_settings(redis=True)
    client = connect(settings)
    try:
        result = _spool(settings).replay(
            client, cap=settings.inbox_maxlen, batch=settings.spool_replay_batch
        )
    except redis.RedisError as exc:
        raise click.ClickException(f"Redis refused the replay ({exc}); the spool is kept") from exc
    finally:
        client.close()
    if result.busy:
        raise click.ClickException("another process is replaying this spool; try again later")
    click.echo(f"replayed {result.replayed} event(s); {result.bad} unreadable line(s) set aside")
