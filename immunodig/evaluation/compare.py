"""Paired comparison of feature sets (e.g. clinical vs morphology vs combined) on identical splits.

Every feature set is evaluated by :func:`nested_cross_validate` with the same patients, outcome
and seed, hence the same outer partitions (checked through the splits key). The difference of
each set's AUC / C-index from the reference set is bootstrapped on the same patient samples,
so the interval accounts for the pairing (it holds the fitted models fixed, so it is somewhat
narrow); ``ci_corrected`` is the corrected repeated-K-fold interval of the paired per-fold
differences, which also accounts for refitting, and ``p_corrected`` the matching corrected
resampled t-test (Nadeau & Bengio 2003): the test to quote for "set A adds value over B".
Each set's own ``<metric>_ci`` is the corrected repeated-K-fold interval of
:mod:`immunodig.evaluation.cv_interval` around the set's estimate, as in
:meth:`CVResult.summary`.
"""

from __future__ import annotations

import numpy as np

from immunodig.errors import ValidationError
from immunodig.evaluation import metrics as M
from immunodig.evaluation.bootstrap import bootstrap_metric, paired_difference
from immunodig.evaluation.cv_interval import corrected_cv_interval, corrected_resampled_t_test
from immunodig.evaluation.nested_cv import VALIDATION, CVResult, nested_cross_validate
from immunodig.models.preprocessing import as_frame


def compare_feature_sets(X, y, ids, feature_sets: dict[str, list[str]], model: str,
                         reference: str | None = None, *, n_boot: int = 1000, seed: int = 0,
                         extra_results: dict[str, CVResult] | None = None,
                         **cv_kwargs) -> tuple[dict, dict[str, CVResult]]:
    """Evaluate each feature set with the same splits and compare it with ``reference``.

    Parameters
    ----------
    X : DataFrame
        All candidate columns.
    y, ids : arrays
        Outcome and patient id per row.
    feature_sets : dict
        Name -> list of columns of ``X``.
    model : str
        Named model (see :data:`immunodig.models.MODELS`).
    reference : str, optional
        Set the others are compared with (default: the first).
    n_boot, seed, **cv_kwargs
        Bootstrap replicates, seed, and arguments of :func:`nested_cross_validate`.
    extra_results : dict of CVResult, optional
        Results of other models on the same rows and splits (e.g. MIL on tile embeddings:
        :func:`immunodig.mil.cross_validate_bags_result`), compared in the same table; a
        result on other splits is refused.

    Returns
    -------
    summary : dict
        ``metric``, per-set estimate + CI, per-set paired difference from the reference + CI.
    results : dict of CVResult
    """
    X = as_frame(X)
    reference = reference or next(iter(feature_sets))
    if reference not in feature_sets:
        raise ValidationError("compare_feature_sets", [{
            "row": None, "column": None, "check": f"reference set {reference!r} not given"}])
    results = {name: nested_cross_validate(X[cols], y, ids, model, seed=seed, **cv_kwargs)
               for name, cols in feature_sets.items()}
    results.update(extra_results or {})
    scored = {name: r.patient_level() for name, r in results.items()}  # one patient, one vote
    keys = {r.splits_key for r in results.values()}
    if len(keys) != 1:
        raise ValidationError("compare_feature_sets", [{
            "row": None, "column": None,
            "check": "the results were computed on different splits (patients, outcome or seed differ)"}])
    ref = scored[reference]
    ids = ref.ids
    metric = M.roc_auc if ref.task == "classification" else M.harrell_c
    name = "auc" if ref.task == "classification" else "c_index"
    y = ref.y
    out = {"validation": VALIDATION, "model": model, "metric": name, "reference": reference,
           "splits_key": keys.pop(), "n": int(len(np.unique(ref.ids))), "sets": {},
           "differences": {}}
    for set_name, res in scored.items():
        b = bootstrap_metric(metric, y, res.oof, ids, n_boot=n_boot, seed=seed)
        c = corrected_cv_interval(metric, y, res.oof, res.fold_of, res.ids,
                                  estimate=b["estimate"])
        out["sets"][set_name] = {name: b["estimate"], f"{name}_ci": c["ci"],
                                 f"{name}_fold_mean": c["fold_mean"],
                                 f"{name}_ci_oof_bootstrap": b["ci"],
                                 "n_features": len(results[set_name].feature_names),
                                 "model": results[set_name].model}
        if set_name != reference:
            d = paired_difference(metric, y, res.oof, ref.oof, ids, n_boot=n_boot, seed=seed)
            dc = corrected_cv_interval(metric, y, res.oof, res.fold_of, res.ids,
                                       preds_ref=ref.oof)
            tt = corrected_resampled_t_test(metric, y, res.oof, ref.oof, res.fold_of, res.ids)
            out["differences"][f"{set_name} - {reference}"] = {
                "estimate": d["estimate"], "ci": d["ci"], "p_boot": d["p_boot"],
                "fold_mean": dc["fold_mean"], "ci_corrected": dc["ci"],
                "t_corrected": tt["t"], "p_corrected": tt["p"], "df": tt["df"],
                "fold_differences": tt["differences"]}
    return out, results
