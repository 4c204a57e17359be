"""What people look at: plots (each takes ``ax=`` and returns it), slide overlays, QuPath
GeoJSON and the self-contained HTML report."""

from __future__ import annotations

from immunodig.report.calibration import CalibrationCurve, calibration_curve_ci, plot_calibration
from immunodig.report.comparison import plot_feature_set_comparison
from immunodig.report.cv_figures import plot_cv_calibration, plot_cv_decision_curve, plot_risk_groups
from immunodig.report.distributions import plot_feature_distribution
from immunodig.report.geojson import export_slide_geojson
from immunodig.report.html import ReportInfo, build_report
from immunodig.report.importance import mean_abs_shap, plot_hazard_ratios, plot_importance
from immunodig.report.km import KMResult, km_by_group, plot_km
from immunodig.report.overlays import write_slide_overlays
from immunodig.report.roc import RocCurve, plot_roc, roc_curve_ci

__all__ = [
    "CalibrationCurve", "KMResult", "ReportInfo", "RocCurve", "build_report",
    "calibration_curve_ci", "export_slide_geojson", "km_by_group", "mean_abs_shap",
    "plot_calibration", "plot_cv_calibration", "plot_cv_decision_curve", "plot_risk_groups",
    "plot_feature_distribution", "plot_feature_set_comparison",
    "plot_hazard_ratios", "plot_importance", "plot_km", "plot_roc", "roc_curve_ci",
    "write_slide_overlays",
]
