"""Request and response bodies of the admin API (/v1). The OpenAPI document is built
from these models' JSON schemas, so what is documented is what is validated."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from feedbackguard.pipeline.dryrun import DEFAULT_HOURS, DEFAULT_MAX_EVENTS
from feedbackguard.policy.lists import Action
from feedbackguard.policy.lists import Kind as ListKind
from feedbackguard.web.auth import Role

NAME_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
"""Namespaces, account, cluster and key ids accepted in bodies."""

MAX_IDS = 10_000
NOTE_MAX = 1000
DRY_RUN_MAX_HOURS = 24 * 30
DRY_RUN_MAX_EVENTS = 200_000
AUDIT_MAX = 1000


class _In(BaseModel):
    # strict: what the schema says is what is accepted (no epoch numbers for datetimes,
    # no "1" for booleans); JSON still gives datetimes as ISO 8601 strings.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


Note = Field("", max_length=NOTE_MAX, description="Why (kept with the change and audited).")


# --- errors ---------------------------------------------------------------------------


class FieldError(_Out):
    loc: str = Field(description="dotted path of the offending field")
    msg: str
    type: str


class ErrorOut(_Out):
    error: str
    message: str
    detail: list[FieldError] | None = None


# --- policy ---------------------------------------------------------------------------


class PolicyVersionOut(_Out):
    version: int
    author: str
    created_at: datetime
    note: str
    policy: dict[str, Any]
    disables: list[str] = Field(
        default_factory=list,
        description="defences and limits this change removed (dotted paths), also in the audit log",
    )
    notes: list[str] = Field(
        default_factory=list,
        description="what the change does not do, e.g. probation_s is not retroactive",
    )


class PolicyReplace(_In):
    policy: dict[str, Any] = Field(description="a whole policy (like `policy show`)")
    note: str = Note


class PolicyPatch(_In):
    patch: dict[str, Any] = Field(description="merged into the current policy, key by key")
    note: str = Note


class PolicyHistoryEntry(_Out):
    version: int
    author: str
    created_at: datetime
    note: str
    diff: dict[str, list[Any]] = Field(
        description="dotted path -> [old, new] against the previous version"
    )


class PolicyHistoryOut(_Out):
    versions: list[PolicyHistoryEntry]


class PolicyRollback(_In):
    version: int = Field(ge=1)
    note: str = Note


class DryRunRequest(_In):
    namespace: str = Field("default", pattern=NAME_PATTERN)
    hours: float = Field(DEFAULT_HOURS, gt=0, le=DRY_RUN_MAX_HOURS)
    policy: dict[str, Any] | None = Field(None, description="a whole proposed policy")
    patch: dict[str, Any] | None = Field(None, description="or a patch to the current one")
    max_events: int = Field(DEFAULT_MAX_EVENTS, ge=1, le=DRY_RUN_MAX_EVENTS)


class MoveOut(_Out):
    old: str = Field(description="status under the policy in force (replayed)")
    new: str = Field(description="status under the proposed policy (replayed)")
    count: int
    reasons: dict[str, int] = Field(
        description="reason codes the proposal adds (+code) or drops (-code); the same "
        "codes, unprefixed, when only thresholds differ"
    )
    populations: dict[str, int] = Field(description="by account age at the event")
    examples: list[str] = Field(description="a few of the event ids that move")


class LiveAgreement(_Out):
    compared: int = Field(description="events no moderator decided live")
    agreed: int = Field(
        description="of those, replayed under the policy in force to their live status"
    )
    moderated: int = Field(description="events a moderator decided live (not compared)")


class DryRunOut(_Out):
    namespace: str
    current_version: int
    since: datetime = Field(description="event time the replay starts from")
    until: datetime = Field(description="the namespace's clock")
    window_start: datetime = Field(description="the oldest event time the graph window holds")
    events: int = Field(description="events replayed")
    missing: int = Field(description="events of the window whose record had expired")
    truncated: bool = Field(description="more events than max_events: the newest were replayed")
    changed: int = Field(description="events whose status would change")
    moves: list[MoveOut] = Field(description="by (status in force, proposed status)")
    baseline: dict[str, int] = Field(description="replayed statuses under the policy in force")
    candidate: dict[str, int] = Field(description="replayed statuses under the proposal")
    live: LiveAgreement
    audit: dict[str, dict[str, int]] = Field(
        description="audit entries each replay would have written (held back), by action"
    )
    disables: list[str] = Field(description="defences and limits the proposal removes")
    notes: list[str]
    seconds: float
    method: str


# --- accounts and lists ---------------------------------------------------------------


class ReasonOut(_Out):
    code: str
    detail: str
    score: float


class RecentEvent(_Out):
    event_id: str
    item_id: str
    value: Any = None
    time: float


class AccountOut(_Out):
    account_id: str
    namespace: str
    state: Literal["trusted", "blocked"] | None
    risk: float
    reasons: list[ReasonOut]
    clusters: list[dict[str, Any]]
    reputation: float = Field(description="posterior mean agreement with final outcomes")
    events_in_window: int
    recent_events: list[RecentEvent]


class AccountAction(_In):
    note: str = Note


class AccountStateOut(_Out):
    account_id: str
    state: Literal["trusted", "blocked"] | None


class ListEntryIn(_In):
    value: str = Field(min_length=1, max_length=256)
    action: Action
    note: str = Note


class ListRemove(_In):
    value: str = Field(min_length=1, max_length=256)


class ListEntryOut(_Out):
    kind: ListKind
    value: str
    action: Action
    actor: str
    note: str
    at: str


class ListOut(_Out):
    kind: ListKind
    entries: list[ListEntryOut]


class RemovedOut(_Out):
    removed: bool


# --- purge ----------------------------------------------------------------------------


class PurgeAccounts(_In):
    account_ids: list[str] = Field(min_length=1, max_length=MAX_IDS)
    note: str = Note


class PurgeCluster(_In):
    cluster_id: str = Field(min_length=1, max_length=128)
    namespace: str = Field("default", pattern=NAME_PATTERN)
    note: str = Note


class PurgeRange(_In):
    start: datetime = Field(description="first event time included (received_at)")
    end: datetime = Field(description="event time excluded")
    namespace: str | None = Field(None, pattern=NAME_PATTERN, description="all when absent")
    note: str = Note


class RestoreRequest(_In):
    account_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS)
    event_ids: list[str] = Field(default_factory=list, max_length=MAX_IDS)
    note: str = Note


class VersionOut(_Out):
    version: int
    changed: int
    live: int
    quarantined: int
    note: str
    actor: str


# --- namespaces -----------------------------------------------------------------------


class NamespaceOut(_Out):
    namespace: str
    stats: dict[str, int]
    inbox: int = Field(description="events captured but not yet decided")
    pending: int
    review: int
    clock: float = Field(description="event time (epoch seconds) the namespace reached")
    lag_s: float | None = Field(description="age of the oldest undecided inbox entry")
    lockdown: dict[str, str] | None


class NamespacesOut(_Out):
    namespaces: list[NamespaceOut]


class LockdownIn(_In):
    on: bool
    reason: str = Field("", max_length=NOTE_MAX)


# --- audit and keys -------------------------------------------------------------------


class AuditOut(_Out):
    entries: list[dict[str, Any]]


class KeyIn(_In):
    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    role: Role


class KeyCreated(_Out):
    key_id: str
    name: str
    role: Role
    secret: str = Field(description="shown once; only its SHA-256 is kept")


class KeyInfo(_Out):
    key_id: str
    name: str
    role: Role
    created_at: str


class KeysOut(_Out):
    keys: list[KeyInfo]


class WhoAmI(_Out):
    name: str
    role: Role
    via: Literal["key", "session"]
