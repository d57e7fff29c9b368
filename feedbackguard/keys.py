"""Every Redis key feedbackguard uses, named in one place.

A namespace's keys share the hash tag `{namespace}` (`fg:{ns}:...`): on a Redis
Cluster they sit in one slot, so each Lua script and MULTI touches one slot only. The
few product-wide keys have names of their own; the two families whose keys change
together in one MULTI carry a family tag, `fg:{@policy}:...` and `fg:{@auth}:...`
(docs/architecture.md, "Redis keys"). `LEGACY_FAMILIES` names their keys before the
tags, which `legacy.migrate` moves once.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "fg"

INBOX_GROUP: Final = "fg-ingesters"
"""The consumer group the ingest workers read every inbox stream through."""

INGEST_QUEUE: Final = "fg-ingest"
RELEASE_QUEUE: Final = "fg-release"
ANALYSIS_QUEUE: Final = "fg-analysis"
RQ_QUEUES: Final = (INGEST_QUEUE, RELEASE_QUEUE, ANALYSIS_QUEUE)
"""RQ's job queues (not data: RQ names its own keys from these)."""


def ns(namespace: str, *parts: str) -> str:
    """A key of the namespace: `fg:{namespace}:part:part...`."""
    return ":".join((PREFIX, "{" + namespace + "}", *parts))


def _global(*parts: str) -> str:
    return ":".join((PREFIX, *parts))


# "@" is in no namespace name (events.py), so these slots are no namespace's.
POLICY_TAG: Final = "{@policy}"
AUTH_TAG: Final = "{@auth}"
LEGACY_FAMILIES: Final = {
    "fg:policy:": "fg:" + POLICY_TAG + ":",
    "fg:auth:": "fg:" + AUTH_TAG + ":",
}
"""Old prefix -> tagged prefix of the product-wide families renamed for Redis Cluster."""


# -- the flow of events ------------------------------------------------------------------


def inbox(namespace: str) -> str:
    """Stream of captured events waiting for ingest."""
    return ns(namespace, "inbox")


def reclaims(namespace: str) -> str:
    """Counter: inbox reclaims, moved after every reclaim of entries from another
    reader (`pipeline.inbox`)."""
    return ns(namespace, "reclaims")


def record(namespace: str, event_id: str) -> str:
    """An event and its decision trail (`pipeline.ledger`)."""
    return ns(namespace, "ev", event_id)


def pending(namespace: str) -> str:
    """Sorted set: pending event ids by the end of their probation (event time)."""
    return ns(namespace, "pending")


def releasing(namespace: str) -> str:
    """Sorted set: pending ids a release has claimed and not finished."""
    return ns(namespace, "releasing")


def review(namespace: str) -> str:
    """Sorted set: ids in review by `received_at`."""
    return ns(namespace, "review")


def stats(namespace: str) -> str:
    """Hash: counters by status, and decided / duplicates / held / dead."""
    return ns(namespace, "stats")


def clock(namespace: str) -> str:
    """The namespace's event time: the latest `received_at` seen."""
    return ns(namespace, "clock")


def analysed(namespace: str) -> str:
    """Event time up to which the analysers have run."""
    return ns(namespace, "analysed")


def status_lock(namespace: str) -> str:
    """Held while a status changes after ingest (release, re-decision, moderation)."""
    return ns(namespace, "status-lock")


def dead_letters(namespace: str) -> str:
    """List: entries that could not be decided (invalid, or a check crashed on them)."""
    return ns(namespace, "dead")


def held(namespace: str) -> str:
    """List: unsure copies too late to dedupe (raw events, oldest first)."""
    return ns(namespace, "held")


def namespaces() -> str:
    """Set of namespaces that have ever received feedback (so workers find their inboxes)."""
    return _global("namespaces")


def pump_lock() -> str:
    """Held by the one worker that enqueues the periodic jobs."""
    return _global("pump", "lock")


# -- checks ------------------------------------------------------------------------------


def rate_limit_prefix(namespace: str, limit: str) -> str:
    """Prefix of a rate limit's GCRA keys (the limited value is appended)."""
    return ns(namespace, "rl", limit, "")


def first_seen_prefix(namespace: str) -> str:
    """Prefix of the keys that remember when an account was first seen."""
    return rate_limit_prefix(namespace, "first_seen")


def consensus(namespace: str, item_id: str) -> str:
    """Hash: an item's trust-weighted votes per value."""
    return ns(namespace, "consensus", item_id)


def lockdown(namespace: str) -> str:
    """The namespace's lockdown (every new event to review) and why."""
    return ns(namespace, "lockdown")


# -- graph -------------------------------------------------------------------------------


def graph_buckets(namespace: str) -> str:
    """Sorted set: the event window's buckets by start time."""
    return ns(namespace, "graph", "buckets")


def graph_bucket(namespace: str, start: int) -> str:
    """One bucket of the event window (compact rows)."""
    return ns(namespace, "graph", "w", str(start))


def graph_risk(namespace: str) -> str:
    """Hash: account -> its findings of the last graph analysis (JSON)."""
    return ns(namespace, "graph", "risk")


def graph_clusters(namespace: str) -> str:
    """Hash: cluster id -> its evidence of the last graph analysis (JSON)."""
    return ns(namespace, "graph", "clusters")


def independence(namespace: str) -> str:
    """Hash: account -> its independence weight (0..1) from the last graph analysis;
    accounts absent from it weigh 1 (`graph.independence`)."""
    return ns(namespace, "graph", "independence")


def report_ids(namespace: str) -> str:
    """Sorted set: ids of the window's report events by received_at (`graph.reports`)."""
    return ns(namespace, "graph", "reports")


# -- consistency -------------------------------------------------------------------------


def recent(namespace: str) -> str:
    """The consistency layer's window of recent events."""
    return ns(namespace, "cons", "recent")


def consistency_last_run(namespace: str) -> str:
    return ns(namespace, "cons", "last-run")


def knn_reference(namespace: str) -> str:
    return ns(namespace, "cons", "knn", "ref")


def knn_seed(namespace: str) -> str:
    return ns(namespace, "cons", "knn", "seed")


def knn_version(namespace: str) -> str:
    return ns(namespace, "cons", "knn", "version")


def suspected_triggers(namespace: str) -> str:
    return ns(namespace, "cons", "suspected")


def outliers(namespace: str) -> str:
    return ns(namespace, "cons", "outliers")


def unreliable(namespace: str) -> str:
    """Accounts whose labels disagree with the independent signals."""
    return ns(namespace, "cons", "unreliable")


def drift_alerts(namespace: str) -> str:
    return ns(namespace, "cons", "alerts")


def drift_last_alert(namespace: str) -> str:
    return ns(namespace, "cons", "alerted")


# -- accounts and moderation -------------------------------------------------------------


def account_states() -> str:
    """Hash: account -> "trusted" | "blocked" (admin states, product-wide)."""
    return _global("accounts", "state")


def moderated(namespace: str, approved: bool) -> str:
    """Sorted set: account -> how many of its items moderators approved (rejected)."""
    return ns(namespace, "moderated", "approved" if approved else "rejected")


def review_indexed(namespace: str) -> str:
    """Sorted set: the ids the review queue has indexed, scored like the review set."""
    return ns(namespace, "rq", "indexed")


def review_meta(namespace: str) -> str:
    """Hash: id -> {"a": account, "c": [codes]} (to take an id out of its indexes)."""
    return ns(namespace, "rq", "meta")


def review_risk(namespace: str) -> str:
    """Sorted set: id -> risk (risk-range filter)."""
    return ns(namespace, "rq", "risk")


def review_reason(namespace: str, code: str) -> str:
    """Sorted set: ids in review with a reason code."""
    return ns(namespace, "rq", "reason", code)


def review_account(namespace: str, account_id: str) -> str:
    """Sorted set: ids in review of an account."""
    return ns(namespace, "rq", "account", account_id)


def review_cluster(namespace: str, cluster_id: str) -> str:
    """A cached union of a cluster's member accounts' indexes."""
    return ns(namespace, "rq", "cluster", cluster_id)


def review_leases(namespace: str) -> str:
    """Sorted set: id -> lease expiry (ms)."""
    return ns(namespace, "rq", "leases")


def review_holders(namespace: str) -> str:
    """Hash: id -> the moderator holding its lease."""
    return ns(namespace, "rq", "holders")


def review_synced(namespace: str) -> str:
    """Set while the indexes were checked against the review set recently."""
    return ns(namespace, "rq", "synced")


def review_codes(namespace: str) -> str:
    """Set: reason codes ever seen in review (for filter menus)."""
    return ns(namespace, "rq", "codes")


# -- review cases (feedbackguard/review/cases.py) ----------------------------------------


def case_members(namespace: str) -> str:
    """Sorted set: id in review -> the number of the case it is in."""
    return ns(namespace, "case", "members")


def case_events(namespace: str) -> str:
    """Hash: id in review -> what its case counts of it (risk, harm, account, codes)."""
    return ns(namespace, "case", "ev")


def case_open(namespace: str) -> str:
    """Hash: case key ("a:<account>", "i:<item>", "g:<group>") -> its open case."""
    return ns(namespace, "case", "open")


def case_seq(namespace: str) -> str:
    """The last case number given."""
    return ns(namespace, "case", "seq")


def case_meta(namespace: str) -> str:
    """Hash: case -> what does not change as events come and go (JSON: kind, label,
    when it opened, the strongest reason seen)."""
    return ns(namespace, "case", "meta")


def case_counts(namespace: str) -> str:
    """Hash: "<case>:<field>" -> an open case's running counts (events, risk and harm
    sums, accounts, kind, codes), "<case>:c:<code>" and "<case>:a:<account>" -> events."""
    return ns(namespace, "case", "counts")


def case_by_harm(namespace: str) -> str:
    """Sorted set: open case -> expected harm (harm sum x mean risk)."""
    return ns(namespace, "case", "by-harm")


def case_by_risk(namespace: str) -> str:
    """Sorted set: open case -> risk sum (mean risk x events): the order while no
    event carries a harm estimate."""
    return ns(namespace, "case", "by-risk")


def case_by_age(namespace: str) -> str:
    """Sorted set: open case -> received_at of its oldest event."""
    return ns(namespace, "case", "by-age")


def case_closed(namespace: str) -> str:
    """Sorted set: closed case -> when it closed (wall time), until forgotten."""
    return ns(namespace, "case", "closed")


def case_over(namespace: str) -> str:
    """Sorted set: case given the safe default for lack of review capacity -> when."""
    return ns(namespace, "case", "over")


def case_leases(namespace: str) -> str:
    """Sorted set: case -> lease expiry (ms)."""
    return ns(namespace, "case", "leases")


def case_holders(namespace: str) -> str:
    """Hash: case -> the moderator holding its lease."""
    return ns(namespace, "case", "holders")


def case_action(namespace: str, action_id: str) -> str:
    """One decision on a case (JSON: who, when, the events approved and rejected), kept
    for undo and to reopen a case given the safe default."""
    return ns(namespace, "case", "act", action_id)


def case_action_seq(namespace: str) -> str:
    """The last action number given."""
    return ns(namespace, "case", "act-seq")


def case_decided(namespace: str) -> str:
    """Sorted set: moderators' case actions -> when (wall time): decided per day."""
    return ns(namespace, "case", "decided")


# -- policy, audit, auth, metrics --------------------------------------------------------


def policy_current() -> str:
    return _global(POLICY_TAG, "current")


def policy_seq() -> str:
    return _global(POLICY_TAG, "seq")


def policy_version(version: int) -> str:
    return _global(POLICY_TAG, "v", str(version))


def policy_bootstrap() -> str:
    return _global(POLICY_TAG, "bootstrap")


def allow_deny_list(kind: str) -> str:
    return _global("lists", kind)


def audit() -> str:
    """Stream: the audit log (capped)."""
    return _global("audit")


def store_head(key_id: str) -> str:
    """The retraining store's chain head, `<position>:<signature>`, kept outside the
    database (`feedbackguard.store.head`); one per signing key id."""
    return _global("store", "head", key_id)


def auth_user(name: str) -> str:
    return _global(AUTH_TAG, "user", name)


def auth_api_key(key_id: str) -> str:
    return _global(AUTH_TAG, "key", key_id)


def auth_keys() -> str:
    return _global(AUTH_TAG, "keys")


def auth_users() -> str:
    return _global(AUTH_TAG, "users")


def auth_failures(client: str) -> str:
    """Counter: failed (or, for logins, attempted) authentications of one client (hashed
    IP) in the current window."""
    return _global(AUTH_TAG, "fail", client)


def auth_account_failures(account: str) -> str:
    """Counter: login attempts naming one account (hashed name) in the current window."""
    return _global(AUTH_TAG, "failacct", account)


def auth_session_generation(name: str) -> str:
    """Integer: the user's session generation; a session cookie is valid only while it
    carries the current one (logout and password changes increment it)."""
    return _global(AUTH_TAG, "gen", name)


def timing(namespace: str, name: str) -> str:
    """A latency histogram (batch, analysis)."""
    return ns(namespace, "timing", name)


def reasons(namespace: str) -> str:
    """Hash: reason code -> events flagged with it."""
    return ns(namespace, "reasons")
