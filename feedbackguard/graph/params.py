"""Every threshold of the graph detectors, validated, with the reason for each default.

`GraphPolicy` is the policy's `graph.detect` part; it is a model of its own so the
detectors can be benchmarked and tested without Redis or the policy store.
Times are seconds of event time.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from feedbackguard.events import Kind

HOUR = 3600.0
DAY = 24 * HOUR


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LockstepPolicy(_Section):
    """Synchronised action (CopyCatch / SynchroTrap spirit).

    Two actions *match* when they are on the same item with the same value within
    `t_sim_s`. A pair of accounts is *similar* when they match on at least
    `min_shared_items` distinct items and on at least `min_similarity` of the
    smaller account's items: chance coincidences of honest accounts match on one
    item (a viral burst) or on a tiny share of a heavy user's items.
    """

    t_sim_s: float = Field(
        3 * HOUR,
        gt=0,
        description="Match window. Brigades act within a few hours; honest pairs rarely "
        "meet on the same item within 3 h on more than one item.",
    )
    max_neighbours: int = Field(
        48,
        gt=0,
        description="Each action is compared with at most this many following actions on "
        "the same (item, value): bounds the cost of very busy items, whose coincidences "
        "carry little evidence anyway.",
    )
    min_shared_items: int = Field(3, ge=2, description="Distinct matched items for a pair edge.")
    hot_item_accounts: float = Field(
        100,
        gt=0,
        description="A matched item acted on by more accounts than this in the window "
        "counts only hot_item_accounts / its accounts towards min_shared_items: honest "
        "accounts meet on popular items by chance (measured: with every item counting "
        "fully, two days of heavy-tailed honest traffic put 65 % of accounts in one "
        "'lockstep' group on the ten most popular items).",
    )
    min_value_agreement: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Matched items / (matched + items where the pair acted within t_sim "
        "with different values). Honest accounts meeting on popular items by chance "
        "also disagree there; a swarm agrees with itself.",
    )
    min_chance_ratio: float = Field(
        3.0,
        ge=0,
        description="A pair's weighted matched items must be at least this many times "
        "what chance gives two accounts with their item counts: on each item both acted "
        "on, min(1, n_a * n_b * 2 t_sim / window span). Heavy honest users act on the "
        "same popular items again and again and so meet on them by chance (measured: "
        "without this test, 25 % of a simulated honest population's events went to "
        "review as lockstep, nearly all of its heaviest users'); a swarm matches on "
        "every target it shares.",
    )
    chance_min_span_s: float = Field(
        DAY,
        gt=0,
        description="The window span the chance test assumes at least. A young window "
        "(a new namespace, the demo's minute) spans less than t_sim, where every action "
        "is within t_sim of every other and nothing could beat chance; under a day, "
        "heavy users have not yet returned to the same items often enough to need it.",
    )
    min_item_weight: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Items whose match weight is below this are not matched at all "
        "(they would need 1/weight times min_shared_items of them to link a pair).",
    )
    min_similarity: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Matched items / items of the less active account of the pair. "
        "Half camouflage still leaves a brigade member at ~0.5.",
    )
    min_group_size: int = Field(5, ge=2, description="Smallest group reported.")
    min_group_items: int = Field(
        5,
        ge=1,
        description="Fewest shared items a group must act on to be flagged. An organic "
        "crowd on a viral item and a couple of its neighbours is as synchronised as a "
        "swarm (measured: two simulated viral bursts of 3 items each formed a 29-account "
        "group on 4 items); swarms flip or report more targets than that. Fewer targets "
        "are left to the consensus, young-account and trust checks.",
    )
    min_core_degree: int = Field(
        2,
        ge=1,
        description="A member must be similar to at least this many other members; "
        "stops one coincidental honest pair edge from chaining an account into a group.",
    )
    base_score: float = Field(
        0.4, ge=0, le=1, description="Score of a group that only passes the pair tests."
    )
    synchrony_weight: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Added for perfect synchrony (matched actions at the same second).",
    )
    young_weight: float = Field(0.1, ge=0, le=1, description="Added if every member is young.")
    infrastructure_weight: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Added if every member shares an ip/subnet/device with another.",
    )
    density_weight: float = Field(
        0.1, ge=0, le=1, description="Added if the group is a clique in the similarity graph."
    )
    min_score: float = Field(0.5, ge=0, le=1, description="Group score needed to flag.")


class DensePolicy(_Section):
    """FRAUDAR-style dense-block detection on account x (item, time bucket)."""

    time_bucket_s: float = Field(
        6 * HOUR,
        gt=0,
        description="Width of the time buckets the item columns are split into, so that "
        "a block concentrated in time is dense although its 30-day density is low.",
    )
    use_time: bool = Field(True, description="False runs plain FRAUDAR on account x item.")
    col_log_offset: float = Field(
        5.0, gt=1, description="Column weight 1/log(degree + offset), as in FRAUDAR."
    )
    epsilon: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Batched peeling removes, in one pass, every node whose weight is "
        "within (1 + epsilon) of the current minimum; 0 is exact greedy order.",
    )
    coarse_epsilon: float = Field(
        0.1,
        gt=0,
        description="Tolerance of the first, parallel peel (nodes up to (1 + this) x the "
        "average weight go in one pass), whose density bounds the core that the fine "
        "peel searches: ~11 passes instead of thousands at 1M edges.",
    )
    fine_max_nodes: int = Field(
        50_000,
        gt=0,
        description="Cores larger than this many nodes are peeled with `large_epsilon`: "
        "at 1M edges an honest bulk core of 170k nodes takes 11k passes (2.6 s) at "
        "epsilon 0.02; a 67k-node core holding a block took 974 passes (0.13 s) at 0.1 and "
        "139 (0.05 s) at 0.3, finding the same 200 x 202 block.",
    )
    large_epsilon: float = Field(0.3, ge=0, le=1, description="See `fine_max_nodes`.")
    max_blocks: int = Field(4, ge=1, description="Blocks searched for per window.")
    min_lift: float = Field(
        2.5,
        gt=1,
        description="Edges in the block / edges expected from the degrees of its rows and "
        "columns. Honest dense cores (popular items x heavy users) measured 1.0-1.35; a "
        "large block in a small graph cannot exceed total edges / block edges, so this "
        "cannot be much higher.",
    )
    min_mean_degree: float = Field(
        3.0,
        gt=0,
        description="Edges per account and per column inside the block. Once the honest "
        "core is peeled, loose matchings of one-event accounts reach a high lift at "
        "about 2 edges per node; a swarm needs several actions each to matter.",
    )
    expand_ratio: float = Field(
        0.5,
        ge=0,
        description="After peeling, accounts (then columns) outside the block with at least "
        "this share of the block's median in-block degree are added: greedy peeling "
        "drops the members that happened to draw the fewest block edges.",
    )
    min_accounts: int = Field(5, ge=1, description="Smallest block (accounts).")
    min_items: int = Field(3, ge=1, description="Smallest block (distinct items).")


class InfrastructurePolicy(_Section):
    """Many young accounts on a few IPs / subnets / devices, with a NAT allowance."""

    min_young_accounts: int = Field(
        5, ge=2, description="Young accounts on one key needed to consider it at all."
    )
    young_excess_ratio: float = Field(
        3.0,
        gt=1,
        description="Young accounts must exceed this multiple of what the key's size "
        "predicts from the window's overall young share: a campus or carrier NAT with "
        "hundreds of accounts gets a proportional allowance of honest sign-ups.",
    )
    device_max_accounts: int = Field(
        4,
        ge=1,
        description="Accounts one device may honestly carry (a family tablet); beyond "
        "this, a device cluster is flagged whatever the ages.",
    )
    min_score: float = Field(0.5, ge=0, le=1, description="Cluster score needed to flag.")


class TrustPolicy(_Section):
    """SybilRank and its signed (SybilSCAR-like) variant."""

    iterations: int | None = Field(
        None,
        ge=1,
        description="Power iterations of SybilRank; None means ceil(log2(n)), the paper's "
        "O(log n) early termination (see trust.default_iterations for measurements).",
    )
    min_distrust_ratio: float = Field(
        3.0,
        gt=1,
        description="With rejected accounts as negative seeds, an account is reported when "
        "its distrust is at least this multiple of its trust; far from every seed both "
        "are near the stationary value and their ratio is noise around 1.",
    )
    low_trust_ratio: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="An account whose degree-normalised trust is below this share of "
        "the median account's is reported as sybil.trust.",
    )


class ReportsPolicy(_Section):
    """Report bursts weighed by independence (`graph.reports`, reports.correlated).

    Per item, its reporters are grouped into cohorts that count as one voice: accounts
    that share an IP, /24 or device, were created within `created_gap_s` of each
    other, or lack history before the item's burst (nothing tells them apart, so
    they count together). The item's independent count is its number of cohorts;
    when the raw count of reporters exceeds it, the reports of the cohorts larger
    than one get `reports.correlated`, scored by harm: the share of the way from the
    independent count to `action_reports` that the correlated reports cover.
    """

    enabled: bool = Field(True, description="False skips the report analysis.")
    kinds: tuple[Kind, ...] = Field(
        ("report",),
        min_length=1,
        description="Feedback kinds that count towards an action on an item.",
    )
    action_reports: int = Field(
        5,
        ge=1,
        description="Reports on one item at which the product acts on it (takedown or "
        "demotion). Independent reporters reaching it alone make the item's reports "
        "harmless whatever their cohorts.",
    )
    min_excess: int = Field(
        3,
        ge=1,
        description="Reporters beyond the independent count needed to flag an item. Two "
        "reporters in one cohort are common and weak evidence (a couple on one home IP, "
        "two carrier-NAT users, two newcomers): measured on simulated honest traffic, "
        "2 flagged honest reports on the most reported items, 3 none.",
    )
    burst_gap_s: float = Field(
        DAY,
        gt=0,
        description="Reports of one item further apart than this start a new burst. Only "
        "reporters without history within one burst count together: newcomers who "
        "report an item days apart are as independent as anyone.",
    )
    history_bucket_s: float = Field(
        6 * HOUR,
        gt=0,
        description="Width of the activity periods that make up an account's history.",
    )
    history_min_buckets: int = Field(
        2,
        ge=1,
        description="Distinct periods with activity before the burst (at least "
        "history_gap_s before it) that make an account established: it acted on its "
        "own before. Account age alone never does (accounts bought aged, idle until "
        "the attack, have none).",
    )
    history_gap_s: float = Field(
        HOUR,
        ge=0,
        description="Activity this close before a burst is not history (a warm-up).",
    )
    created_gap_s: float = Field(
        HOUR,
        ge=0,
        description="Reporters of one item whose accounts were created within this of "
        "each other count together (accounts made in bulk). Among a crowd of old "
        "accounts, creation times this close are rare.",
    )
    settle_s: float = Field(
        30 * 60,
        ge=0,
        description="An item is judged once its last report is this old, so that an "
        "organic burst is seen whole (its historied reporters keep arriving) before "
        "any of its reports is sent away.",
    )
    max_wait_s: float = Field(
        3 * HOUR,
        ge=0,
        description="An item still receiving reports is judged anyway once its burst is "
        "this old, so that a slow brigade is judged before its first reports end their "
        "probation (keep it below probation_s minus analysis.interval_s).",
    )


class CombinePolicy(_Section):
    """How detector findings become per-account risk (noisy-OR of reason scores)."""

    lockstep_weight: float = Field(0.9, ge=0, le=1, description="Max score of lockstep.")
    dense_weight: float = Field(0.8, ge=0, le=1, description="Max score of a dense block.")
    infrastructure_weight: float = Field(0.7, ge=0, le=1)
    trust_weight: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Low trust alone is weak evidence (new honest accounts are poorly "
        "connected), so it can send to review only together with another reason.",
    )
    corroboration_overlap: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Two clusters from different detectors sharing this share of the "
        "smaller one's members form a sybil.cluster.",
    )
    corroboration_bonus: float = Field(0.5, ge=0, le=1)


class GraphPolicy(_Section):
    """All graph-detection parameters."""

    young_account_age_s: float = Field(
        7 * DAY, ge=0, description="An account younger than this at its first event is young."
    )
    timeline_bucket_s: float = Field(
        HOUR, gt=0, description="Bucket width of the per-cluster activity timeline (evidence)."
    )
    evidence_max_items: int = Field(
        50, ge=1, description="Items listed per cluster (the most acted-on by its members)."
    )
    lockstep: LockstepPolicy = LockstepPolicy()
    dense: DensePolicy = DensePolicy()
    infrastructure: InfrastructurePolicy = InfrastructurePolicy()
    trust: TrustPolicy = TrustPolicy()
    reports: ReportsPolicy = ReportsPolicy()
    combine: CombinePolicy = CombinePolicy()
