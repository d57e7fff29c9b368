"""The home a reading command needs: refuse a never-initialised one instead of
creating it.

The default `FEEDBACKGUARD_HOME` is relative to the working directory, so a command
run from elsewhere would otherwise start a new, empty embedded Redis and store there,
and report "0 problems" or export 0 items as if that were the deployment's data.
Commands that only read (or change existing state) check here first; commands that
create state (`demo`, `worker`, `serve`, `replay`, `store init`, `users add`,
`keys add`, `policy set`) do not.
"""

from __future__ import annotations

import click

from feedbackguard.embedded import home_initialised
from feedbackguard.settings import Settings

HOME_EXIT_CODE = 2


class NoHomeError(click.ClickException):
    """No initialised home where the settings point; exit code 2."""

    exit_code = HOME_EXIT_CODE


def needs_home(settings: Settings, *, redis: bool = False, store: bool = False) -> bool:
    """Whether what a command uses lives in the home: the embedded Redis (no
    `redis_url`), the SQLite store (no `store_url`) or the store's key file."""
    uses_redis = redis and not settings.redis_url
    uses_store = store and (settings.store_url is None or settings.signing_key is None)
    return uses_redis or uses_store


def require_home(settings: Settings, *, redis: bool = False, store: bool = False) -> Settings:
    """`settings`, after refusing (`NoHomeError`) a command whose Redis or store lives
    in a home that was never initialised (`feedbackguard.embedded.home_initialised`)."""
    if needs_home(settings, redis=redis, store=store) and not home_initialised(settings.home):
        raise NoHomeError(
            f"no feedbackguard home at {settings.home.resolve()}: set FEEDBACKGUARD_HOME "
            "or run from the directory that holds it (`feedbackguard store init` "
            "creates a new one)"
        )
    return settings


def existing_settings(*, redis: bool = False, store: bool = False) -> Settings:
    """The environment's settings, for a command that must not create a home."""
    return require_home(Settings(), redis=redis, store=store)
