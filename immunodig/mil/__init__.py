"""Attention-based multiple-instance learning on tile embeddings (ABMIL, TransMIL-style,
mean/max pooling), evaluated with the same nested, patient-grouped CV as the tabular models.

torch is imported only when a network is built or trained.
"""

from immunodig.mil.cross_validation import cross_validate_bags, cross_validate_bags_result
from immunodig.mil.training import MILParams, fit_mil, predict_bags
from immunodig.vocab import MIL_MODELS

__all__ = ["MIL_MODELS", "MILParams", "cross_validate_bags", "cross_validate_bags_result", "fit_mil",
           "predict_bags"]
