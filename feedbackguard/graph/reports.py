"""Report bursts: reports on an item weighed by how independent their senders are.

A product acts on an item (takes it down, demotes it) once enough accounts report it.
A brigade reaches that count with accounts that are not independent of each other;
lockstep and dense blocks need several shared items to see it, so a brigade on one
to four items passed. Here every item is judged on its own, in the spirit of
Community Notes' diversity requirement: its reporters are grouped into *cohorts*
that count as one voice, and the item's *independent count* is its number of
cohorts. Two reporters of an item fall in one cohort when

* they reported it from the same IP, /24 (or /48) or device;
* their accounts were created within `created_gap_s` of each other;
* neither has a history before its report (`history_min_buckets` periods of
  activity other than reports, at least `history_gap_s` before it) and both reported
  in one burst: accounts that never acted on their own, however old they claim to
  be, cannot show they are not one operator's. (In a window too short to show a
  history, a namespace's first hours, reporters are given the doubt.)

An item whose reporters outnumber its independent count by `min_excess` or more has
a correlated burst. The *harm* of its correlated reports is how much they move the
item toward `action_reports` beyond where the independent reporters alone bring it:
0 when the independent count reaches the action by itself (an honest crowd next to
enough independent reporters), 1 when the correlated reports alone push the item
over. The reports of the cohorts larger than one get `reports.correlated`, scored
by that harm; independent reporters' reports are left alone.

An organic viral burst is many reporters with their own histories, on their own
networks, created years apart: many cohorts, an independent count past the action,
no harm. An item is judged only once its burst has settled (`settle_s`) or has gone
on for `max_wait_s`, so that an organic crowd is seen whole first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from feedbackguard.graph.params import ReportsPolicy
from feedbackguard.graph.sets import member, unique
from feedbackguard.graph.window import MISSING, BoolArray, EventWindow, FloatArray, IntArray

CORRELATED = "reports.correlated"


@dataclass(frozen=True, eq=False)
class ReportBurst:
    """One item whose reports come from fewer independent cohorts than accounts."""

    item: int
    reporters: int
    """Distinct accounts that reported the item in the window."""
    independent: int
    """Cohorts among them: the item's independent count."""
    harm: float
    events: IntArray
    """The flagged report events: those of members of cohorts larger than one."""
    cohorts: tuple[IntArray, ...]
    """Account codes of each cohort larger than one."""
    without_history: int
    """Reporters with no history before their burst."""
    start: float
    end: float


@dataclass(frozen=True, eq=False)
class _Reporters:
    """One row per (item, account) that reported, ordered by item."""

    item: IntArray
    account: IntArray
    burst: IntArray
    """Index of the burst (of `_bursts`) holding the account's first report on the item."""
    first: FloatArray
    """Time of the account's first report on the item."""
    of_event: IntArray
    """Per report event (in `reports` order), its row here."""


def _bursts(window: EventWindow, reports: IntArray, gap_s: float) -> tuple[IntArray, FloatArray]:
    """Per report event (in `reports` order), its burst id; and each burst's start.

    A burst is a run of reports on one item with no gap longer than `gap_s`.
    """
    order = np.lexsort((window.time[reports], window.item[reports]))
    item = window.item[reports][order]
    t = window.time[reports][order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (item[1:] != item[:-1]) | (t[1:] - t[:-1] > gap_s)
    burst_sorted = np.cumsum(new) - 1
    burst = np.empty(order.size, dtype=np.int64)
    burst[order] = burst_sorted
    return burst, t[new]


def _reporters(window: EventWindow, reports: IntArray, burst: IntArray) -> _Reporters:
    n = max(window.n_accounts, 1)
    key = window.item[reports] * n + window.account[reports]
    # Each (item, account) once, its burst that of its first report on the item.
    order = np.lexsort((window.time[reports], key))
    first = np.ones(order.size, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    pairs = key[order][first]
    of_event = np.empty(order.size, dtype=np.int64)
    of_event[order] = np.cumsum(first) - 1
    return _Reporters(
        item=pairs // n,
        account=pairs % n,
        burst=burst[order][first],
        first=window.time[reports][order][first],
        of_event=of_event,
    )


def _history(
    window: EventWindow,
    own: BoolArray,
    account: IntArray,
    before: FloatArray,
    policy: ReportsPolicy,
) -> IntArray:
    """Per (account, time) query: the account's distinct activity periods
    (`history_bucket_s`) holding one of its `own` events before that time."""
    asked = unique(account)
    events = np.flatnonzero(own & member(window.account, asked))
    if account.size == 0 or events.size == 0:
        return np.zeros(account.size, dtype=np.int64)
    t = window.time[events]
    who = window.account[events]
    t0 = float(t.min())
    bucket = np.floor((t - t0) / policy.history_bucket_s).astype(np.int64)
    n_buckets = int(bucket.max()) + 1
    # The first event of each (account, period), ordered by account then period (and
    # so by time): an integer sort, several times faster than a lexsort on time.
    key = who * n_buckets + bucket
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    acc = key[starts] // n_buckets
    span = float(t.max()) - t0 + 1.0
    when = acc * span + (np.minimum.reduceat(t[order], starts) - t0)
    start = np.searchsorted(acc, account, side="left")
    cut = account * span + np.clip(before - t0, 0.0, span - 0.5)
    return np.asarray(np.searchsorted(when, cut, side="left") - start, dtype=np.int64)


def _links_by_key(group: IntArray, key: IntArray, row: IntArray) -> tuple[IntArray, IntArray]:
    """Edges between consecutive rows that share (group, key)."""
    if row.size < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    order = np.lexsort((key, group))
    g, k, r = group[order], key[order], row[order]
    same = (g[1:] == g[:-1]) & (k[1:] == k[:-1])
    return r[:-1][same], r[1:][same]


def _cohort_edges(
    window: EventWindow,
    reports: IntArray,
    rep: _Reporters,
    rows: IntArray,
    established: BoolArray,
    policy: ReportsPolicy,
) -> tuple[IntArray, IntArray]:
    """Edges between reporter rows of one item that count together."""
    src: list[IntArray] = []
    dst: list[IntArray] = []
    # Reporters without history in one burst: each linked to the next one.
    newcomer = rows[~established[rows]]
    a, b = _links_by_key(rep.burst[newcomer], np.zeros(newcomer.size, np.int64), newcomer)
    src.append(a)
    dst.append(b)
    # Shared infrastructure: the IP, /24 or device of their reports on the item.
    on_rows = np.flatnonzero(member(rep.of_event, rows))
    for codes in (window.ip, window.subnet, window.device):
        key = codes[reports[on_rows]]
        has = key != MISSING
        row = rep.of_event[on_rows[has]]
        a, b = _links_by_key(rep.item[row], key[has], row)
        src.append(a)
        dst.append(b)
    # Accounts created close together.
    created = window.account_created[rep.account[rows]]
    known = rows[np.isfinite(created)]
    if known.size > 1:
        made = window.account_created[rep.account[known]]
        order = np.lexsort((made, rep.item[known]))
        r, it, t = known[order], rep.item[known][order], made[order]
        close = (it[1:] == it[:-1]) & (t[1:] - t[:-1] <= policy.created_gap_s)
        src.append(r[:-1][close])
        dst.append(r[1:][close])
    return np.concatenate(src), np.concatenate(dst)


def detect_report_bursts(
    window: EventWindow,
    is_report: BoolArray,
    policy: ReportsPolicy,
    now: float,
    trusted: BoolArray | None = None,
) -> list[ReportBurst]:
    """Items whose reports come from correlated cohorts, with the harm they do.

    `is_report` marks the window's events of the report kinds; `now` is the event
    clock; `trusted` (per account) marks accounts admins or moderators vouched for,
    which count as established whatever their history in the window.
    """
    reports = np.flatnonzero(is_report)
    if reports.size == 0:
        return []
    burst, burst_start = _bursts(window, reports, policy.burst_gap_s)
    rep = _reporters(window, reports, burst)
    n_items = window.n_items
    count = np.bincount(rep.item, minlength=n_items)
    last = np.full(n_items, -np.inf)
    np.maximum.at(last, window.item[reports], window.time[reports])
    latest_start = np.full(n_items, -np.inf)
    np.maximum.at(latest_start, rep.item, burst_start[rep.burst])
    due = (now - last >= policy.settle_s) | (now - latest_start >= policy.max_wait_s)
    candidate = due & (count >= policy.min_excess + 1)
    rows = np.flatnonzero(candidate[rep.item])
    if rows.size == 0:
        return []
    history = np.zeros(rep.item.size, dtype=np.int64)
    history[rows] = _history(
        window,
        ~is_report,
        rep.account[rows],
        rep.first[rows] - policy.history_gap_s,
        policy,
    )
    established = history >= policy.history_min_buckets
    # Where the window does not reach back far enough to show a history (a namespace's
    # first hours), nothing tells either way: such reporters are given the doubt.
    needed = policy.history_gap_s + policy.history_min_buckets * policy.history_bucket_s
    established |= rep.first - needed < float(window.time.min())
    if trusted is not None:
        established |= trusted[rep.account]
    src, dst = _cohort_edges(window, reports, rep, rows, established, policy)
    n_rows = rep.item.size
    graph = sp.coo_matrix((np.ones(src.size), (src, dst)), shape=(n_rows, n_rows))
    _, cohort = connected_components(graph, directed=False)
    size = np.bincount(cohort, minlength=n_rows)
    independent = np.zeros(n_items, dtype=np.int64)
    firsts = np.unique(cohort[rows], return_index=True)[1]
    np.add.at(independent, rep.item[rows][firsts], 1)
    excess = count - independent
    action = policy.action_reports
    flagged_items = np.flatnonzero(
        candidate & (excess >= policy.min_excess) & (independent < action)
    )
    # Rows are ordered by item: each flagged item's rows are one slice.
    lo = np.searchsorted(rep.item, flagged_items, side="left")
    hi = np.searchsorted(rep.item, flagged_items, side="right")
    event_item = window.item[reports]
    event_order = np.argsort(event_item, kind="stable")
    out: list[ReportBurst] = []
    for item, a, b in zip(flagged_items.tolist(), lo.tolist(), hi.tolist(), strict=True):
        reporters, free = int(count[item]), int(independent[item])
        harm = min(1.0, (min(reporters, action) - free) / (action - free))
        mine = np.arange(a, b)
        correlated = mine[size[cohort[mine]] > 1]
        e_lo, e_hi = np.searchsorted(event_item[event_order], [item, item + 1])
        on_item = event_order[e_lo:e_hi]
        events = np.sort(reports[on_item[member(rep.of_event[on_item], correlated)]])
        times = window.time[events]
        out.append(
            ReportBurst(
                item=item,
                reporters=reporters,
                independent=free,
                harm=harm,
                events=events,
                cohorts=tuple(
                    np.sort(rep.account[correlated[cohort[correlated] == c]])
                    for c in unique(cohort[correlated])
                ),
                without_history=int((~established[mine]).sum()),
                start=float(times.min()),
                end=float(times.max()),
            )
        )
    return out
