"""The `feedbackguard` command. Each command (group) lives in its own module here;
this module only assembles them."""

from __future__ import annotations

from typing import Any

import click
from redis.exceptions import ConnectionError as RedisConnectionError

from feedbackguard import __version__
from feedbackguard.cli.accounts import accounts_group
from feedbackguard.cli.bench import bench_group
from feedbackguard.cli.decisions import decisions
from feedbackguard.cli.demo import demo
from feedbackguard.cli.held import held_group
from feedbackguard.cli.keys import keys_group
from feedbackguard.cli.policy import policy_group
from feedbackguard.cli.purge import purge_group
from feedbackguard.cli.redis import redis_group
from feedbackguard.cli.replay import replay_command
from feedbackguard.cli.review import review_group
from feedbackguard.cli.serve import serve
from feedbackguard.cli.simulate import simulate_command
from feedbackguard.cli.spool import spool_group
from feedbackguard.cli.status import status
from feedbackguard.cli.store import store
from feedbackguard.cli.users import users_group
from feedbackguard.cli.worker import worker
from feedbackguard.settings import UnknownSettingError
from feedbackguard.store import StoreKeyError


class _Main(click.Group):
    """The command group; a Redis that cannot be reached, an unknown setting or a
    wrong signing key is a clear one-line error, not a traceback, whichever command
    met it."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (UnknownSettingError, StoreKeyError) as exc:
            raise click.ClickException(str(exc)) from exc
        except RedisConnectionError as exc:
            raise click.ClickException(
                f"cannot reach Redis ({exc}); check FEEDBACKGUARD_REDIS_URL"
            ) from exc


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="feedbackguard")
def main() -> None:
    """Defend a machine-learning feedback loop against poisoning.

    Settings come from FEEDBACKGUARD_* environment variables (see config/settings.toml);
    without FEEDBACKGUARD_REDIS_URL a private Redis is started under FEEDBACKGUARD_HOME.
    """


main.add_command(demo)
main.add_command(status)
main.add_command(accounts_group)
main.add_command(review_group)
main.add_command(policy_group)
main.add_command(purge_group)
main.add_command(worker)
main.add_command(replay_command)
main.add_command(decisions)
main.add_command(redis_group)
main.add_command(store)
main.add_command(spool_group)
main.add_command(held_group)
main.add_command(serve)
main.add_command(keys_group)
main.add_command(users_group)
main.add_command(simulate_command)
main.add_command(bench_group)
