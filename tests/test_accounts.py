"""Accounts: admin trust / block (audited), moderation seeds, cached graph findings,
and the `feedbackguard accounts` commands."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from feedbackguard import accounts, audit
from feedbackguard.cli import main
from feedbackguard.settings import Settings

NS = "default"


@pytest.fixture
def cli(r: redis.Redis[bytes], settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CliRunner whose commands use the test Redis."""
    monkeypatch.setenv("FEEDBACKGUARD_REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("FEEDBACKGUARD_HOME", str(settings.home))
    return CliRunner()


def invoke(cli: CliRunner, *args: str) -> Result:
    result = cli.invoke(main, ["accounts", *args])
    assert result.exit_code == 0, result.output
    return result


def findings(risk: float, *clusters: str) -> dict[str, Any]:
    return {
        "risk": risk,
        "reasons": [["coordination.lockstep", "acts in step with 24 accounts", risk]],
        "clusters": list(clusters),
    }


def evidence(cluster_id: str, members: list[str]) -> dict[str, Any]:
    return {
        "cluster_id": cluster_id,
        "code": "coordination.lockstep",
        "score": 0.9,
        "detail": "24 accounts on 6 items within 15 minutes",
        "members": members,
        "items": ["target-0", "target-1"],
        "timeline": {"start": 0.0, "counts": [3, 21]},
    }


def test_unknown_account_has_no_state(r: redis.Redis[bytes]) -> None:
    assert accounts.state(r, "nobody") is None


def test_block_then_trust_leaves_the_account_trusted(r: redis.Redis[bytes]) -> None:
    accounts.block(r, "a", actor="alice")
    accounts.trust(r, "a", actor="alice")
    assert accounts.state(r, "a") == "trusted"


def test_untrust_leaves_a_blocked_account_blocked(r: redis.Redis[bytes]) -> None:
    accounts.block(r, "a", actor="alice")
    accounts.untrust(r, "a", actor="bob")
    assert accounts.state(r, "a") == "blocked"


def test_unblock_leaves_a_trusted_account_trusted(r: redis.Redis[bytes]) -> None:
    accounts.trust(r, "a", actor="alice")
    accounts.unblock(r, "a", actor="bob")
    assert accounts.state(r, "a") == "trusted"


def test_account_state_changes_are_audited(r: redis.Redis[bytes]) -> None:
    accounts.block(r, "troll", actor="alice", note="spam wave")
    accounts.unblock(r, "troll", actor="bob")
    entries = audit.entries(r, 2)
    assert [(e["actor"], e["action"], e["account_id"]) for e in entries] == [
        ("bob", "account.cleared", "troll"),
        ("alice", "account.blocked", "troll"),
    ]
    assert accounts.state(r, "troll") is None


def test_the_audit_entry_keeps_the_note(r: redis.Redis[bytes]) -> None:
    accounts.trust(r, "a", actor="alice", note="our QA account")
    assert audit.entries(r, 1)[0]["note"] == "our QA account"


def test_seeds_combine_admin_and_moderator_decisions(r: redis.Redis[bytes]) -> None:
    accounts.trust(r, "vouched", actor="alice")
    accounts.block(r, "banned", actor="alice")
    for _ in range(2):
        accounts.record_moderation(r, NS, "good", approved=True)
    accounts.record_moderation(r, NS, "good", approved=False)
    accounts.record_moderation(r, NS, "bad", approved=False)
    assert accounts.seeds(r, NS) == (["good", "vouched"], ["bad", "banned"])


def test_admin_trust_overrides_moderator_rejections_in_seeds(r: redis.Redis[bytes]) -> None:
    accounts.record_moderation(r, NS, "a", approved=False)
    accounts.trust(r, "a", actor="alice")
    assert accounts.seeds(r, NS) == (["a"], [])


def test_an_account_with_as_many_approvals_as_rejections_is_no_seed(
    r: redis.Redis[bytes],
) -> None:
    accounts.record_moderation(r, NS, "a", approved=True)
    accounts.record_moderation(r, NS, "a", approved=False)
    assert accounts.seeds(r, NS) == ([], [])


def test_moderation_seeds_are_per_namespace(r: redis.Redis[bytes]) -> None:
    accounts.record_moderation(r, "shop", "a", approved=True)
    assert accounts.seeds(r, NS) == ([], [])


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["ok", "no", "T", "B"])),
        max_size=20,
    )
)
def test_no_account_is_both_a_trusted_and_a_rejected_seed(
    r: redis.Redis[bytes], ops: list[tuple[str, str]]
) -> None:
    r.flushdb()
    for account, op in ops:
        if op == "T":
            accounts.trust(r, account, actor="t")
        elif op == "B":
            accounts.block(r, account, actor="t")
        else:
            accounts.record_moderation(r, NS, account, approved=op == "ok")
    trusted, rejected = accounts.seeds(r, NS)
    assert not set(trusted) & set(rejected)
    for account, found in accounts.all_states(r).items():
        assert account in (trusted if found == "trusted" else rejected)


def test_findings_of_an_unanalysed_account_are_none(r: redis.Redis[bytes]) -> None:
    assert accounts.account_risk(r, NS, "a") is None
    assert accounts.cluster(r, NS, "c1") is None


def test_a_new_analysis_replaces_the_whole_previous_one(r: redis.Redis[bytes]) -> None:
    accounts.replace_findings(r, NS, [("a", findings(0.9, "c1"))], [("c1", evidence("c1", ["a"]))])
    accounts.replace_findings(r, NS, [("b", findings(0.8))], [])
    assert accounts.account_risk(r, NS, "a") is None
    assert accounts.account_risk(r, NS, "b") == findings(0.8)
    assert accounts.cluster(r, NS, "c1") is None


def test_findings_are_per_namespace(r: redis.Redis[bytes]) -> None:
    accounts.replace_findings(r, "shop", [("a", findings(0.9))], [])
    assert accounts.account_risk(r, NS, "a") is None
    assert accounts.account_risk(r, "shop", "a") == findings(0.9)


def test_accounts_cli_blocks_and_shows_an_account(cli: CliRunner) -> None:
    invoke(cli, "block", "troll", "--note", "spam", "--actor", "al")
    shown = invoke(cli, "show", "troll", "--json")
    assert '"state": "blocked"' in shown.output


def test_accounts_cli_acts_as_the_login_user_by_default(
    r: redis.Redis[bytes], cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "carol")
    invoke(cli, "trust", "a")
    assert audit.entries(r, 1)[0]["actor"] == "carol"


def test_accounts_cli_untrust_clears_trust(r: redis.Redis[bytes], cli: CliRunner) -> None:
    invoke(cli, "trust", "a", "--actor", "al")
    invoke(cli, "untrust", "a", "--actor", "al")
    assert accounts.state(r, "a") is None


def test_accounts_cli_show_prints_reasons_and_cluster_evidence(
    r: redis.Redis[bytes], cli: CliRunner
) -> None:
    accounts.replace_findings(
        r, NS, [("a", findings(0.9, "c1"))], [("c1", evidence("c1", ["a", "b"]))]
    )
    shown = invoke(cli, "show", "a").output
    assert "risk 0.9" in shown
    assert "coordination.lockstep (0.9)" in shown
    assert "cluster c1 coordination.lockstep: 2 members, items target-0, target-1" in shown
