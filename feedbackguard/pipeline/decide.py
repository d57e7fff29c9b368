"""The decision engine: an event's reasons -> its suspicion, its harm, one status.

Two questions are kept apart (docs/architecture.md, "Decide"):

* **suspicion**: who sent the feedback, from where, with whom: the graph's findings
  (lockstep, dense blocks, infrastructure, trust, confirmed clusters) and outliers.
  Crowds that are honest look like this too (a class on one IP, a sign-up wave,
  campus NAT, power users), so suspicion alone never rejects feedback whose harm is
  known to be low; it lowers the group's weight in the consensus instead
  (`checks.disagreement`).
* **harm** (`Decision.harm`): what admitting the event would change. A label's harm
  is its disagreement with independent evidence (the kNN reference, a confident
  model, the item's consensus weighted by trust and independence, a suspected
  trigger), discounted by the independent consensus, or the model, that backs it: a
  correction of a confident model that independent accounts agree with is no harm.
  A report's harm is what its `reports.*` reasons say it would push the item towards.

`risk` stays the noisy-OR of the scores of the reasons against the event (suspicion
and disagreement alike), so independent evidence adds up and no number of weak
reasons alone reaches certainty; the review queue orders by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from feedbackguard.decisions import Decision, Status
from feedbackguard.events import LABEL_KINDS, FeedbackEvent
from feedbackguard.graph.window import value_key
from feedbackguard.policy import Policy, Thresholds
from feedbackguard.reasons import Reason

# Reasons that reject whatever else is known: an admin's word, a limit, a known trigger.
HARD: Final = frozenset({"list.denied", "account.blocked", "trigger.known"})
RATE_LIMITED: Final = "rate_limited."
LOCKDOWN: Final = "lockdown"
UNRELIABLE: Final = "consistency.reputation"
# Who sent it: the graph's findings and behavioural outliers.
SUSPICION: Final = frozenset(
    {
        "coordination.lockstep",
        "coordination.dense_block",
        "sybil.infrastructure",
        "sybil.trust",
        "sybil.cluster",
        "outlier",
    }
)
# A label's disagreement with independent evidence.
AGAINST: Final = frozenset(
    {"consistency.consensus", "consistency.model", "consistency.knn", "trigger.suspected"}
)
SUPPORT: Final = "consistency.support"
"""The item's independent, trust-weighted consensus agrees with the label."""
REPORTS: Final = "reports."
"""Report reasons (`reports.correlated`, ...): their score is the report's harm."""
MISTAKE: Final = "consistency.mistake"
"""Added by the decision: a label that disagrees with independent evidence, from an
account in good standing, is not used for training (and the account is not
penalised: only moderators' outcomes count towards its reputation)."""
NOT_RISK: Final = frozenset({SUPPORT, MISTAKE})


def combine(reasons: Iterable[Reason]) -> float:
    """Noisy-OR of the reasons' scores, in 0..1."""
    clean = 1.0
    for reason in reasons:
        clean *= 1.0 - min(max(reason.score, 0.0), 1.0)
    return 1.0 - clean


def status_for(risk: float, thresholds: Thresholds) -> Status:
    if risk >= thresholds.reject:
        return "rejected"
    if risk >= thresholds.review:
        return "review"
    return "pending"


def _hard(reasons: Iterable[Reason]) -> bool:
    return any(r.code in HARD or r.code.startswith(RATE_LIMITED) for r in reasons)


def model_support(event: FeedbackEvent) -> float:
    """How strongly the product's model already says what the label says (its
    confidence when it agrees, else 0): admitting such a label teaches the model
    nothing it does not already predict."""
    said = event.model_output
    if said is None or event.kind not in LABEL_KINDS:
        return 0.0
    return said.confidence if value_key(said.label) == value_key(event.value) else 0.0


def _backing(event: FeedbackEvent, reasons: Iterable[Reason]) -> float:
    """The strongest independent support of a label: the item's trust-weighted
    consensus agreeing with it, or the model saying the same."""
    return max([model_support(event), *(r.score for r in reasons if r.code == SUPPORT)])


def harm(event: FeedbackEvent, reasons: Iterable[Reason]) -> float | None:
    """What admitting `event` would change, in 0..1; None when nothing independent
    says either way: no disagreement, no consensus backing it, no model agreeing with
    it. A model that disagrees below `consistency.model.min_confidence` is no evidence
    either way: it neither clears a suspicious group (a Sybil swarm flipping items
    the model is unsure of would pass) nor condemns an honest one, so suspicion
    decides, as it does without any model.

    Label: the noisy-OR of its disagreement reasons times (1 - its best support),
    support being the independent consensus backing it (`consistency.support`) or the
    model agreeing with it. Disagreement with the model alone scores at most
    `consistency.model.max_score`, below `decide.wrong_harm`: a correction of the
    model is not harm until the kNN reference or the consensus disagrees too, and
    independent agreement outweighs both. Report (and other kinds): the noisy-OR of
    its `reports.*` reasons, None without one.
    """
    found = list(reasons)
    if event.kind not in LABEL_KINDS:
        reports = [r for r in found if r.code.startswith(REPORTS)]
        return combine(reports) if reports else None
    against = combine(r for r in found if r.code in AGAINST)
    support = _backing(event, found)
    if against == 0.0 and support == 0.0:
        return None
    return against * (1.0 - support)


def group_harm(decisions: Iterable[Decision]) -> float:
    """A group's harm: the sum of its members' (what admitting all of it would
    change, in events' worth; review cases are ordered by it)."""
    return sum(d.harm for d in decisions)


def _status(
    event: FeedbackEvent, reasons: list[Reason], risk: float, found: float | None, policy: Policy
) -> Status:
    """Suspicion and harm -> status (see `decide`)."""
    rules = policy.decide
    if _hard(reasons):
        return "rejected"
    codes = {r.code for r in reasons}
    if LOCKDOWN in codes:
        return "review"
    if UNRELIABLE in codes:
        return "rejected"
    if found is None:
        return status_for(risk, policy.thresholds)
    suspect = combine(r for r in reasons if r.code in SUSPICION) >= rules.suspect
    if found >= rules.wrong_harm:
        if suspect or event.kind not in LABEL_KINDS:
            return "rejected"
        support = max((r.score for r in reasons if r.code == SUPPORT), default=0.0)
        return "review" if support >= rules.contested_support else "pending"
    if suspect and event.kind in LABEL_KINDS and _backing(event, reasons) == 0.0:
        # Low harm clears a suspect group only where independent evidence backs its
        # labels: a swarm on items nobody else labels, that a model is unsure of,
        # meets only weak disagreement, which is no sign that it is right.
        return status_for(risk, policy.thresholds)
    return "pending"


def decide(
    event: FeedbackEvent,
    reasons: list[Reason],
    policy: Policy,
    policy_version: int,
    decided_at: datetime,
) -> Decision:
    """The automatic decision for one event, from every reason found for it so far.

    * Rate limits, deny lists, blocked accounts and known triggers reject; a locked
      down namespace sends everything to review.
    * An account whose labels disagree with independent evidence most of the time
      (`consistency.reputation`) is rejected: a moderator would only confirm it.
    * Where harm is known, it decides: a label that disagrees with independent
      evidence (harm >= `decide.wrong_harm`) is rejected with its group when the
      sender is suspect; from an account in good standing it is a lone mistake,
      which stays pending through its probation (independent accounts may still
      back it: a correction of the model) and is rejected as `consistency.mistake`
      at release if its harm stands (`still_harmful`), unless the item is contested
      (independent support of at least `decide.contested_support` against strong
      evidence): then a moderator decides. Feedback below `decide.wrong_harm` is
      admitted after probation from an account in good standing, and from a
      suspect group when independent evidence backs its labels (the consensus or
      the model agrees): shared infrastructure, creation time or co-action lower a
      group's weight in the consensus, not its labels.
    * Where nothing independent says either way (no disagreement, no consensus or
      model agreeing, a report no report analysis judged), and for a suspect
      group's labels that nothing independent backs, suspicion decides by the
      policy's `thresholds`, as before harm was known.
    """
    reasons = [r for r in reasons if r.code != MISTAKE]
    risk = combine(r for r in reasons if r.code not in NOT_RISK)
    found = harm(event, reasons)
    status = _status(event, reasons, risk, found, policy)
    return Decision(
        event_id=event.event_id,
        status=status,
        risk=round(risk, 6),
        harm=round(found or 0.0, 6),
        reasons=tuple(reasons),
        policy_version=policy_version,
        decided_at=decided_at,
    )


def still_harmful(harm: float, policy: Policy) -> bool:
    """Whether a pending or admitted event of this harm may not be (or stay)
    admitted: its harm reached `decide.wrong_harm` and no independent support
    outweighed it (`decide` keeps such lone mistakes pending through probation)."""
    return harm >= policy.decide.wrong_harm


def mistake(decision: dict[str, Any]) -> dict[str, Any]:
    """`consistency.mistake` (JSON form) for a lone mistake rejected at release."""
    return {
        "code": MISTAKE,
        "detail": (
            f"disagrees with independent evidence (harm {float(decision['harm']):.2f}) and no "
            "independent account backed it during its probation: not used for training; "
            "the account is not penalised"
        ),
        "score": round(float(decision["harm"]), 4),
    }
