"""The consistency layer beyond the per-item consensus and the model
(`feedbackguard.checks.disagreement`):
what one account's feedback says against everything else we know.

* `recent`: the bounded window of recent label feedback (features, model output) that
  the analyser works on;
* `knn`: a label against its k nearest admitted neighbours (`consistency.knn`);
* `triggers`: discovery of suspected backdoor triggers (`trigger.suspected`);
* `outliers`: IsolationForest over per-account behaviour (`outlier`);
* `drift`: the admitted label distribution against a reference window (alerts,
  optionally lockdown);
* `ingest`: the per-batch checks, `analyser`: the periodic `ConsistencyAnalyser`.
"""
