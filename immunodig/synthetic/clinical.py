"""Patients of the synthetic cohort: latent morphology, clinical covariates and outcomes.

The generative model (documented in docs/synthetic.md) plants a known signal: primary resistance
and progression hazard fall with intratumoural lymphocyte density and rise with the stroma
fraction of the tumour bed, ECOG, BRAF mutation and later treatment line; the anti-PD-1 +
anti-CTLA-4 combination lowers them. The table can be made without rendering any slide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from immunodig.vocab import CLINICAL_CATEGORIES

#: Reference values used to standardise the morphology predictors.
LOG_TIL_MEAN = float(np.log(350.0))
LOG_TIL_SD = 0.9
STROMA_MEAN = 0.375
STROMA_SD = 0.13

#: Coefficients of the resistance logit (per standardised unit / per level / if present).
RESISTANCE_COEF: dict[str, float] = {
    "intercept": -1.75, "log_til_z": -1.3, "stroma_z": 0.8, "ecog": 0.6, "braf_mut": 0.5,
    "combo": -0.5, "line_minus_1": 0.2,
}
#: Coefficients of the log hazard of progression among non-resistant patients (after month 6).
HAZARD_COEF: dict[str, float] = {
    "log_til_z": -0.7, "stroma_z": 0.4, "ecog": 0.3, "braf_mut": 0.3, "combo": -0.2,
    "line_minus_1": 0.1,
}
#: Weibull shape and baseline scale (months) of progression after month 6 in responders.
PFS_SHAPE = 1.2
PFS_SCALE_MONTHS = 40.0
#: Median survival after progression (months).
POST_PROGRESSION_MEDIAN_MONTHS = 12.0
#: Follow-up (administrative censoring) range, months.
FOLLOW_UP_MONTHS = (12.0, 60.0)
#: Progression within this many months (or PD as best response) is primary resistance.
RESISTANCE_WINDOW_MONTHS = 6.0

CLINICAL_COLUMNS: tuple[str, ...] = (
    "patient_id", "age_years", "sex", "primary_side", "ras_status", "braf_status", "lynch", "ecog",
    "ici_regimen", "treatment_line", "best_response", "pfs_months", "pfs_event", "os_months",
    "os_event",
)


@dataclass(frozen=True)
class PatientMorphology:
    """Latent tumour morphology of one patient (what the slides are drawn from).

    Attributes
    ----------
    til_tumour_per_mm2 : float
        Intratumoural lymphocyte density (the planted predictor).
    til_stroma_per_mm2 : float
        Stromal lymphocyte density.
    stroma_fraction : float
        Stroma share of the tumour bed.
    necrosis_fraction, mucin_fraction : float
        Necrosis and mucus shares of the tumour bed.
    tls_per_mm2 : float
        Lymphoid aggregates per mm² of tissue.
    n_slides : int
        Number of H&E slides (1-3).
    """

    til_tumour_per_mm2: float
    til_stroma_per_mm2: float
    stroma_fraction: float
    necrosis_fraction: float
    mucin_fraction: float
    tls_per_mm2: float
    n_slides: int


def patient_id(index: int) -> str:
    """Pseudonymised identifier of the ``index``-th patient (0-based): P0001, P0002, ..."""
    return f"P{index + 1:04d}"


def sample_morphology(rng: np.random.Generator) -> PatientMorphology:
    """Draw one patient's latent morphology."""
    z_imm = rng.standard_normal()
    return PatientMorphology(
        til_tumour_per_mm2=float(np.exp(LOG_TIL_MEAN + LOG_TIL_SD * z_imm)),
        til_stroma_per_mm2=float(np.exp(np.log(500.0) + 0.7 * z_imm + 0.3 * rng.standard_normal())),
        stroma_fraction=float(rng.beta(3.0, 5.0)),
        necrosis_fraction=float(rng.uniform(0.0, 0.12)),
        mucin_fraction=float(rng.uniform(0.0, 0.15)),
        tls_per_mm2=float(0.25 * np.exp(0.5 * z_imm)),
        n_slides=int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.20])),
    )


def _linear(coef: dict[str, float], x: dict[str, np.ndarray]) -> np.ndarray:
    return sum(coef[k] * x[k] for k in coef if k != "intercept") + coef.get("intercept", 0.0)


def clinical_table(morphology: list[PatientMorphology], seed: int, ids: list[str] | None = None):
    """Clinical covariates and outcomes for patients with the given latent morphology.

    Parameters
    ----------
    morphology : list of PatientMorphology
        One per patient.
    seed : int
        Seed of the clinical randomness (independent of the slides).
    ids : list of str, optional
        Patient identifiers; ``P0001 ...`` by default.

    Returns
    -------
    tuple of polars.DataFrame
        ``(clinical, latent)``: the clinical table with the architecture's columns, and a table of
        the latent truth per patient (``patient_id``, morphology, ``p_resistance``,
        ``primary_resistance``).
    """
    import polars as pl

    n = len(morphology)
    ids = [patient_id(i) for i in range(n)] if ids is None else ids
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 77])
    til = np.array([m.til_tumour_per_mm2 for m in morphology])
    stroma = np.array([m.stroma_fraction for m in morphology])
    lynch = (rng.random(n) < 0.25).astype(int)
    braf = np.where(lynch == 1, 0, (rng.random(n) < 0.35).astype(int))
    ras = np.where(braf == 1, 0, (rng.random(n) < 0.3).astype(int))
    ecog = rng.choice([0, 1, 2], size=n, p=[0.5, 0.4, 0.1])
    regimen = rng.choice(list(CLINICAL_CATEGORIES["ici_regimen"]), size=n,
                         p=[0.65, 0.30, 0.05])
    line = rng.choice([1, 2, 3], size=n, p=[0.45, 0.35, 0.20])
    x = {
        "log_til_z": (np.log(til) - LOG_TIL_MEAN) / LOG_TIL_SD,
        "stroma_z": (stroma - STROMA_MEAN) / STROMA_SD,
        "ecog": ecog.astype(float), "braf_mut": braf.astype(float),
        "combo": (regimen == "anti-PD-1+anti-CTLA-4").astype(float),
        "line_minus_1": (line - 1).astype(float),
    }
    p_res = 1.0 / (1.0 + np.exp(-_linear(RESISTANCE_COEF, x)))
    resistant = rng.random(n) < p_res

    # progression: resistant patients progress (or die) before month 6; the others after it
    early = rng.uniform(1.0, RESISTANCE_WINDOW_MONTHS - 0.5, n)
    scale = PFS_SCALE_MONTHS * np.exp(-_linear(HAZARD_COEF, x) / PFS_SHAPE)
    late = RESISTANCE_WINDOW_MONTHS + scale * rng.weibull(PFS_SHAPE, n)
    pfs_true = np.where(resistant, early, late)
    post = rng.exponential(POST_PROGRESSION_MEDIAN_MONTHS / np.log(2), n)
    os_true = pfs_true + post
    follow = rng.uniform(*FOLLOW_UP_MONTHS, n)
    pfs = np.minimum(pfs_true, follow)
    os_ = np.minimum(os_true, follow)
    responder_best = rng.choice(["CR", "PR", "SD"], size=n, p=[0.15, 0.5, 0.35])
    best = np.where(resistant, np.where(rng.random(n) < 0.9, "PD", "NE"), responder_best)

    clinical = pl.DataFrame({
        "patient_id": ids,
        "age_years": np.clip(np.round(rng.normal(65, 11, n)), 25, 90).astype(int),
        "sex": rng.choice(list(CLINICAL_CATEGORIES["sex"]), size=n),
        "primary_side": rng.choice(list(CLINICAL_CATEGORIES["primary_side"]), size=n, p=[0.25, 0.55, 0.20]),
        "ras_status": np.where(ras == 1, "mut", "wt"),
        "braf_status": np.where(braf == 1, "mut", "wt"),
        "lynch": lynch, "ecog": ecog, "ici_regimen": regimen, "treatment_line": line,
        "best_response": best,
        "pfs_months": np.round(pfs, 1), "pfs_event": (pfs_true <= follow).astype(int),
        "os_months": np.round(os_, 1), "os_event": (os_true <= follow).astype(int),
    }).select(CLINICAL_COLUMNS)
    latent = pl.DataFrame({
        "patient_id": ids, "til_tumour_per_mm2": til,
        "til_stroma_per_mm2": [m.til_stroma_per_mm2 for m in morphology],
        "stroma_fraction": stroma,
        "necrosis_fraction": [m.necrosis_fraction for m in morphology],
        "mucin_fraction": [m.mucin_fraction for m in morphology],
        "tls_per_mm2": [m.tls_per_mm2 for m in morphology],
        "n_slides": [m.n_slides for m in morphology],
        "p_resistance": p_res, "primary_resistance": resistant.astype(int),
    })
    return clinical, latent


def make_clinical_table(n_patients: int, seed: int):
    """Clinical and latent tables of ``n_patients`` patients without rendering slides.

    Uses exactly the per-patient morphology draws of :func:`immunodig.synthetic.make_cohort` with
    the same seed, so the tables equal the cohort's.
    """
    return clinical_table(cohort_morphology(n_patients, seed), seed)


def cohort_morphology(n_patients: int, seed: int) -> list[PatientMorphology]:
    """Latent morphology of every patient of a cohort (one independent stream per patient)."""
    children = np.random.SeedSequence([seed & 0xFFFFFFFF, 1]).spawn(n_patients)
    return [sample_morphology(np.random.default_rng(c)) for c in children]
