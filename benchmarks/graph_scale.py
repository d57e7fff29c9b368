"""Cost of the whole graph analysis (`analyse`: lockstep, dense blocks, infrastructure,
trust propagation with 100 trusted and 20 rejected seeds, combining) on one window.

Windows of 10k / 100k / 1M events with one account per 10 events, one item per 20,
over 30 days, built by the lockstep generator of benchmarks/graphdata.py (honest
power-law traffic, a NAT, a viral burst, one lockstep group per 50k events). Each
size runs in a fresh subprocess, so ru_maxrss is that size's own peak (it includes
the interpreter, numpy and the generated window, so it is an upper bound for
`analyse` itself).

    python benchmarks/graph_scale.py [--max-events 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from graphdata import lockstep_case

from feedbackguard.graph.analysis import analyse
from feedbackguard.graph.window import EventWindow

SIZES = (10_000, 100_000, 1_000_000)
GIB = 1024**3


def _rss_gib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def one(n_events: int) -> dict[str, object]:
    n_accounts = n_events // 10
    groups = max(1, n_events // 50_000)
    case = lockstep_case(
        seed=11,
        n_honest=n_accounts,
        n_items=max(n_events // 20, 100),
        honest_events=int(n_events * 0.95),
        n_groups=groups,
        viral_size=min(400, n_accounts // 5),
        nat_size=min(300, n_accounts // 10),
    )
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
    rng = np.random.default_rng(0)
    trusted = [window.account_ids[a] for a in rng.choice(case.n_honest, 100, replace=False)]
    rejected = [window.account_ids[int(g[0])] for g in case.groups[:20]]
    before = _rss_gib()
    start = time.perf_counter()
    result = analyse(window, trusted=trusted, rejected=rejected)
    elapsed = time.perf_counter() - start
    return {
        "events": window.n_events,
        "accounts": window.n_accounts,
        "items": window.n_items,
        "analysis_s": round(elapsed, 3),
        "stages_s": {k: round(v, 3) for k, v in result.timings_s.items()},
        "peak_rss_gib": round(_rss_gib(), 3),
        "rss_before_analyse_gib": round(before, 3),
        "clusters": len(result.clusters),
        "accounts_at_risk": len(result.accounts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-events", type=int, default=SIZES[-1])
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    curve = []
    for n in SIZES:
        if n > args.max_events:
            break
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        curve.append(row)
        print(json.dumps(row), flush=True)
    last = curve[-1]
    out = {
        "analysis_1m_s": last["analysis_s"] if last["events"] >= 1_000_000 else None,
        "analysis_1m_peak_gib": last["peak_rss_gib"] if last["events"] >= 1_000_000 else None,
        "curve": curve,
        "load_avg_1m": os.getloadavg()[0],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
