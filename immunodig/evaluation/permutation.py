"""Permutation test of "no signal": the whole nested CV rerun on permuted outcomes.

The bootstrap CI of a cross-validated AUC holds the fitted models fixed; in small cohorts it is
somewhat too narrow under the null (see docs/modelling.md for the measured coverage). Permuting
the outcome between patients and rerunning the *entire* procedure gives the null distribution of
the metric including model fitting, so its p-value is exact up to Monte-Carlo error.
"""

from __future__ import annotations

import numpy as np

from immunodig.evaluation import metrics as M
from immunodig.evaluation.nested_cv import nested_cross_validate


def permutation_test(X, y, ids, model: str, n_permutations: int = 100, seed: int = 0,
                     **cv_kwargs) -> dict:
    """Nested-CV metric (AUC or Harrell's C) on the data and on ``n_permutations`` permutations.

    Outcomes are permuted between patients (all rows of a patient keep one outcome).

    Returns
    -------
    dict
        ``observed``, ``null`` (list), ``p`` = (1 + #null >= observed) / (1 + n_permutations).
    """
    y = np.asarray(y)
    ids = np.asarray(ids).astype(str)
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)

    def score(target) -> float:
        res = nested_cross_validate(X, target, ids, model, seed=seed,
                                    **cv_kwargs).patient_level()
        metric = M.roc_auc if res.task == "classification" else M.harrell_c
        return float(np.mean([metric(res.y, p) for p in res.oof]))

    observed = score(y)
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(n_permutations):
        per_patient = y[first][rng.permutation(len(uniq))]
        null.append(score(per_patient[inverse]))
    p = (1 + sum(v >= observed for v in null)) / (1 + n_permutations)
    return {"observed": observed, "null": null, "p": float(p),
            "n_permutations": n_permutations}
