"""Honest small-cohort evaluation: nested CV, metrics, corrected CV and bootstrap CIs, comparisons.

Every number produced here is **internal validation** (nested cross-validation in one cohort).
"""

from __future__ import annotations

from immunodig.evaluation.bootstrap import bootstrap_metric, paired_difference
from immunodig.evaluation.compare import compare_feature_sets
from immunodig.evaluation.curves import (
    CalibrationCurve,
    KMResult,
    calibration_curve_ci,
    km_by_group,
    survival_calibration_curve,
)
from immunodig.evaluation.cv_interval import (
    corrected_cv_interval,
    corrected_resampled_t_test,
    fold_metrics,
)
from immunodig.evaluation.explain import cox_hazard_ratios, permutation_importance, shap_values
from immunodig.evaluation.external import external_validation
from immunodig.evaluation.inference import cox_inference
from immunodig.evaluation.metrics import (
    brier,
    calibration,
    calibration_curve,
    cox_calibration_slope,
    harrell_c,
    integrated_brier_score,
    net_benefit,
    observed_expected,
    pr_auc,
    rmst,
    roc_auc,
    time_dependent_auc,
    uno_c,
)
from immunodig.evaluation.nested_cv import VALIDATION, CVResult, nested_cross_validate
from immunodig.evaluation.permutation import permutation_test
from immunodig.evaluation.risk_groups import km_curves, risk_group_km, risk_group_summary
from immunodig.evaluation.sample_size import fit_sample_size, riley_sample_size
from immunodig.evaluation.splits import grouped_splits, splits_key
from immunodig.evaluation.tabular import Outcome, evaluate_table, read_table

__all__ = [
    "VALIDATION", "CVResult", "nested_cross_validate", "grouped_splits", "splits_key",
    "bootstrap_metric", "paired_difference", "compare_feature_sets", "corrected_cv_interval",
    "fold_metrics",
    "roc_auc", "pr_auc", "brier", "calibration", "calibration_curve", "net_benefit",
    "harrell_c", "uno_c", "time_dependent_auc", "integrated_brier_score",
    "km_curves", "risk_group_km", "risk_group_summary",
    "shap_values", "permutation_importance", "cox_hazard_ratios",
    "Outcome", "evaluate_table", "read_table", "permutation_test",
    "cox_inference", "external_validation", "riley_sample_size", "fit_sample_size",
    "corrected_resampled_t_test", "cox_calibration_slope", "observed_expected", "rmst",
    "CalibrationCurve", "KMResult", "calibration_curve_ci", "km_by_group",
    "survival_calibration_curve",
]
