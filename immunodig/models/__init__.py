"""Patient-level model matrix and scikit-learn compatible models for resistance and PFS.

Models are penalised by default: a pilot of 100-200 patients with ~30 % events supports only a
few unpenalised parameters (Riley et al., BMJ 2020).
"""

from __future__ import annotations

from immunodig.models.classifiers import XGBResistanceClassifier, penalised_logistic
from immunodig.models.matrix import FEATURE_SETS, feature_columns, model_matrix
from immunodig.models.persistence import load_model, save_model
from immunodig.models.registry import MODELS, ModelSpec, build_pipeline, get_model
from immunodig.models.survival import CoxPHSurvival, XGBSurvival, survival_target

__all__ = [
    "model_matrix", "FEATURE_SETS", "feature_columns",
    "XGBResistanceClassifier", "penalised_logistic", "CoxPHSurvival", "XGBSurvival",
    "survival_target", "MODELS", "ModelSpec", "get_model", "build_pipeline",
    "save_model", "load_model",
]
