"""The planted signal's population values: what a perfect measurement of the morphology implies.

A demo cohort's cross-validated AUC and C-index are estimates; read them against these values,
computed on a large generated sample from the latent truth (no slide rendered): the AUC of
primary resistance and the C-index of PFS for (a) the true resistance probability (every
covariate), (b) the morphology part of the resistance logit (log TIL density and stroma
fraction, as planted) and (c) log TIL density alone.
"""

from __future__ import annotations

import numpy as np

from immunodig.synthetic.clinical import (
    LOG_TIL_MEAN,
    LOG_TIL_SD,
    RESISTANCE_COEF,
    STROMA_MEAN,
    STROMA_SD,
    make_clinical_table,
)


def population_signal(n_patients: int = 20000, seed: int = 0) -> dict[str, dict[str, float]]:
    """AUC (resistance) and C-index (PFS) of the planted scores on ``n_patients`` patients.

    Returns
    -------
    dict
        ``{score: {"auc": ..., "c_index": ...}}`` for the scores ``true_probability``,
        ``morphology`` and ``log_til``, plus ``{"cohort": {"resistant_fraction",
        "pfs_event_fraction"}}``.
    """
    from lifelines.utils import concordance_index
    from sklearn.metrics import roc_auc_score

    clinical, latent = make_clinical_table(n_patients, seed)
    resistant = latent["primary_resistance"].to_numpy()
    til_z = (np.log(latent["til_tumour_per_mm2"].to_numpy()) - LOG_TIL_MEAN) / LOG_TIL_SD
    stroma_z = (latent["stroma_fraction"].to_numpy() - STROMA_MEAN) / STROMA_SD
    risk = {
        "true_probability": latent["p_resistance"].to_numpy(),
        "morphology": RESISTANCE_COEF["log_til_z"] * til_z + RESISTANCE_COEF["stroma_z"] * stroma_z,
        "log_til": -til_z,
    }
    pfs, event = clinical["pfs_months"].to_numpy(), clinical["pfs_event"].to_numpy()
    out: dict[str, dict[str, float]] = {
        name: {"auc": float(roc_auc_score(resistant, r)),
               "c_index": float(concordance_index(pfs, -r, event))}
        for name, r in risk.items()}
    out["cohort"] = {"resistant_fraction": float(resistant.mean()),
                     "pfs_event_fraction": float(event.mean())}
    return out
