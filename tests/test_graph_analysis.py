"""The whole-window analysis: reasons, risk and evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from feedbackguard.events import FeedbackEvent
from feedbackguard.graph.analysis import LOCKSTEP, analyse
from feedbackguard.graph.window import EventWindow

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _events(seed: int, with_swarm: bool, with_viral: bool) -> list[FeedbackEvent]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(3000):
        a = int(rng.integers(0, 300))
        out.append(
            FeedbackEvent(
                kind="vote",
                account_id=f"user{a}",
                account_created_at=T0 - timedelta(days=200 + a),
                item_id=f"post{int(rng.integers(0, 600))}",
                value=int(rng.integers(0, 3)),
                ip=f"10.{a % 200}.{a}.1",
                received_at=T0 + timedelta(seconds=float(rng.uniform(0, 30 * 86400))),
                event_id=f"h{k}",
            )
        )
    if with_swarm:
        for m in range(25):
            for p in range(12):
                out.append(
                    FeedbackEvent(
                        kind="report",
                        account_id=f"bot{m}",
                        account_created_at=T0 + timedelta(days=9),
                        item_id=f"target{p}",
                        value="abuse",
                        ip=f"203.0.113.{m % 3}",
                        received_at=T0 + timedelta(days=10, seconds=float(rng.uniform(0, 7200))),
                    )
                )
    if with_viral:
        for a in range(200):
            out.append(
                FeedbackEvent(
                    kind="report",
                    account_id=f"user{a}",
                    item_id="viral",
                    value="abuse",
                    received_at=T0 + timedelta(days=20, seconds=float(rng.uniform(0, 3600))),
                )
            )
    return out


def test_swarm_gets_lockstep_reason_with_evidence() -> None:
    result = analyse(EventWindow.from_events(_events(1, with_swarm=True, with_viral=False)))
    bot = result.accounts["bot0"]
    assert bot.risk >= 0.5
    assert LOCKSTEP in {r.code for r in bot.reasons}
    cluster = next(c for c in result.clusters if c.code == LOCKSTEP)
    assert set(cluster.members) == {f"bot{m}" for m in range(25)}
    assert set(cluster.items) == {f"target{p}" for p in range(12)}
    assert cluster.timeline.end - cluster.timeline.start <= 7200


def test_swarm_is_confirmed_by_two_detectors_as_sybil_cluster() -> None:
    result = analyse(EventWindow.from_events(_events(1, with_swarm=True, with_viral=False)))
    assert "sybil.cluster" in {r.code for r in result.accounts["bot0"].reasons}


def test_viral_burst_of_old_accounts_is_not_flagged() -> None:
    result = analyse(EventWindow.from_events(_events(2, with_swarm=False, with_viral=True)))
    assert all(r.risk < 0.5 for r in result.accounts.values())
    assert result.clusters == ()


def test_trusted_seeds_enable_the_trust_reason() -> None:
    window = EventWindow.from_events(_events(3, with_swarm=True, with_viral=False))
    result = analyse(window, trusted=[f"user{a}" for a in range(0, 300, 10)], rejected=["bot0"])
    assert "trust" in result.timings_s
    assert any(r.code == "sybil.trust" for r in result.accounts["bot1"].reasons)


def test_empty_window_gives_empty_result() -> None:
    result = analyse(EventWindow.from_events([]))
    assert result.accounts == {}
    assert result.clusters == ()


def test_trust_reason_spares_honest_accounts() -> None:
    # Regression: the account graph is bipartite, so an odd step count once left no
    # trust on any account and flagged everyone.
    window = EventWindow.from_events(_events(4, with_swarm=True, with_viral=False))
    result = analyse(window, trusted=[f"user{a}" for a in range(0, 300, 10)], rejected=["bot0"])
    honest = [a for a in window.account_ids if a.startswith("user")]
    flagged = [
        a
        for a in honest
        if a in result.accounts and any(r.code == "sybil.trust" for r in result.accounts[a].reasons)
    ]
    assert len(flagged) < 0.1 * len(honest)
