"""Infrastructure clusters and the NAT allowance."""

from __future__ import annotations

import numpy as np

from feedbackguard.graph.infrastructure import detect_infrastructure
from feedbackguard.graph.params import InfrastructurePolicy
from feedbackguard.graph.window import EventWindow

DAY = 86400.0


def _window(
    rng: np.random.Generator,
    ip_of: np.ndarray,
    created: np.ndarray,
    device_of: np.ndarray | None = None,
) -> EventWindow:
    n = ip_of.size
    acc = np.repeat(np.arange(n), 5)
    t = 100 * DAY + rng.uniform(0, 3 * DAY, acc.size)
    dev = None if device_of is None else device_of[acc]
    return EventWindow.from_arrays(
        acc, rng.integers(0, 500, acc.size), t, ip=ip_of[acc], device=dev, account_created=created
    )


def _population(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    ip_of = np.arange(n)  # everyone on their own address
    created = rng.uniform(0, 90 * DAY, n)  # old accounts
    young = rng.random(n) < 0.05
    created[young] = 100 * DAY
    return ip_of, created


def test_young_swarm_on_one_ip_is_flagged() -> None:
    rng = np.random.default_rng(1)
    ip_of, created = _population(rng, 1000)
    ip_of[990:] = 5000
    created[990:] = 100 * DAY - 3600
    w = _window(rng, ip_of, created)
    clusters = detect_infrastructure(w, InfrastructurePolicy(), w.young(7 * DAY))
    assert [set(c.members.tolist()) for c in clusters if c.kind == "ip"] == [set(range(990, 1000))]


def test_honest_nat_with_many_old_accounts_is_not_flagged() -> None:
    rng = np.random.default_rng(2)
    ip_of, created = _population(rng, 1000)
    ip_of[:400] = 5000  # a campus NAT: 400 accounts, about 5 % of them new, like everywhere
    w = _window(rng, ip_of, created)
    assert detect_infrastructure(w, InfrastructurePolicy(), w.young(7 * DAY)) == []


def test_device_carrying_many_old_accounts_is_flagged() -> None:
    rng = np.random.default_rng(3)
    ip_of, created = _population(rng, 200)
    device_of = np.arange(200)
    device_of[:12] = 999
    w = _window(rng, ip_of, created, device_of)
    clusters = detect_infrastructure(w, InfrastructurePolicy(), w.young(7 * DAY))
    found = [(c.kind, c.reason, c.members.size) for c in clusters]
    assert found == [("device", "device_overload", 12)]
