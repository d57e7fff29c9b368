"""Lockstep groups: precision / recall of planted brigades, honest accounts flagged.

10,000 honest accounts over 30 days (300k power-law events, 5 % of the accounts
young, 300 of them behind one campus NAT), 20 planted groups of 20-200 accounts
hitting 10-50 items within 1-6 h (every other group with as many camouflage events
as campaign events; half young accounts on 3 shared IPs, half bought old accounts
on their own IPs), and one organic viral burst (400 old honest accounts on one item
within an hour). Three seeds. See benchmarks/graphdata.py for the generator.

Reported: lockstep group precision and recall (a found group is correct when half
its members come from one planted group; a planted group is recalled by a found
group with Jaccard >= 0.5), honest accounts in flagged groups, viral-burst and NAT
accounts flagged by any detector, and honest accounts the whole analysis
(`analyse`, with 100 trusted honest seeds) would send to review (risk >= 0.5).

    python benchmarks/graph_lockstep.py
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from graphdata import group_scores, lockstep_case

from feedbackguard.graph.analysis import analyse
from feedbackguard.graph.lockstep import detect_lockstep
from feedbackguard.graph.params import GraphPolicy
from feedbackguard.graph.window import EventWindow

SEEDS = (1, 2, 3)
REVIEW_RISK = 0.5


def main() -> None:
    policy = GraphPolicy()
    rows = []
    for seed in SEEDS:
        case = lockstep_case(seed)
        window = EventWindow.from_arrays(
            case.account,
            case.item,
            case.time,
            value=case.value,
            ip=case.ip,
            device=case.device,
            account_created=case.account_created,
            n_accounts=case.n_accounts,
            n_items=case.n_items,
        )
        young = window.young(policy.young_account_age_s)
        start = time.perf_counter()
        groups, _ = detect_lockstep(window, policy.lockstep, young)
        t_lock = time.perf_counter() - start
        found = [set(g.members.tolist()) for g in groups if g.flagged]
        honest = set(range(case.n_honest))
        precision, recall, honest_flagged = group_scores(
            found, [set(g.tolist()) for g in case.groups], case.n_honest, honest
        )
        rng = np.random.default_rng(seed)
        trusted = [window.account_ids[a] for a in rng.choice(case.n_honest, 100, replace=False)]
        start = time.perf_counter()
        result = analyse(window, policy, trusted=trusted)
        t_all = time.perf_counter() - start
        risky = result.risk >= REVIEW_RISK
        row = {
            "seed": seed,
            "events": window.n_events,
            "planted_groups": len(case.groups),
            "flagged_groups": len(found),
            "precision": precision,
            "recall": recall,
            "honest_flagged": honest_flagged,
            "viral_flagged": int((result.risk[case.viral_accounts] > 0).sum()),
            "viral_review": int(risky[case.viral_accounts].sum()),
            "nat_review": int(risky[case.nat_accounts].sum()),
            "honest_review_share": float(risky[: case.n_honest].mean()),
            "attackers_review_share": float(risky[case.n_honest :].mean()),
            "lockstep_s": t_lock,
            "analyse_s": t_all,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {
        "lockstep_precision": min(r["precision"] for r in rows),
        "lockstep_recall": min(r["recall"] for r in rows),
        "honest_flagged": max(r["honest_flagged"] for r in rows),
        "viral_flagged": max(r["viral_flagged"] for r in rows),
        "viral_review": max(r["viral_review"] for r in rows),
        "nat_review": max(r["nat_review"] for r in rows),
        "honest_review_share": max(r["honest_review_share"] for r in rows),
        "attackers_review_share": min(r["attackers_review_share"] for r in rows),
        "lockstep_s": max(r["lockstep_s"] for r in rows),
        "per_seed": rows,
        "load_avg_1m": os.getloadavg()[0],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
