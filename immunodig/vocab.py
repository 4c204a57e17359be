"""Controlled vocabularies shared by every stage."""

from __future__ import annotations

from typing import Final

#: Kather-9 tissue classes, in the canonical order used for probability columns everywhere.
KATHER_CLASSES: Final[tuple[str, ...]] = (
    "ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM",
)

#: Long names, for legends and documentation.
KATHER_NAMES: Final[dict[str, str]] = {
    "ADI": "adipose",
    "BACK": "background",
    "DEB": "debris / necrosis",
    "LYM": "lymphocytes",
    "MUC": "mucus",
    "MUS": "smooth muscle",
    "NORM": "normal colon mucosa",
    "STR": "cancer-associated stroma",
    "TUM": "colorectal adenocarcinoma epithelium",
}

#: Fixed, documented overlay colours (RGB hex) per Kather class.
KATHER_COLOURS: Final[dict[str, str]] = {
    "ADI": "#f2e394",
    "BACK": "#ffffff",
    "DEB": "#8c564b",
    "LYM": "#1f3fbf",
    "MUC": "#9edae5",
    "MUS": "#d62728",
    "NORM": "#2ca02c",
    "STR": "#ff9896",
    "TUM": "#9467bd",
}

#: Nucleus / cell classes produced by the nuclei stage.
CELL_CLASSES: Final[tuple[str, ...]] = ("lymphocyte", "epithelial", "fibroblast", "other")

#: Stains recognised for slides.
STAINS: Final[tuple[str, ...]] = ("HE", "CD3", "CD8")

#: RECIST best-response categories.
RECIST: Final[tuple[str, ...]] = ("CR", "PR", "SD", "PD", "NE")

#: Reasons a slide can fail, stored in ``slide_status.reason``.
FAILURE_REASONS: Final[tuple[str, ...]] = (
    "not_found", "unsupported", "corrupt", "no_mpp", "mpp_implausible", "no_tissue", "failed",
)

#: Pipeline stages that produce slide features (``FeatureSpec.stage``), in pipeline order.
FEATURE_STAGES: Final[tuple[str, ...]] = ("tissue", "nuclei", "structures", "spatial", "ihc")

#: Stages whose features form the ``morphology`` feature set of the model matrix (H&E only);
#: ``ihc`` features join the ``multiplex`` set. Every stage belongs to exactly one set.
MORPHOLOGY_STAGES: Final[tuple[str, ...]] = ("tissue", "nuclei", "structures", "spatial")
IHC_STAGES: Final[tuple[str, ...]] = ("ihc",)

#: How a slide feature combines over a patient's slides (``sql/views/03_patient_features_long``).
PATIENT_AGGREGATIONS: Final[tuple[str, ...]] = ("area_weighted_mean", "sum", "max", "mean")

#: Categorical clinical columns and their allowed levels (clinical schema, cohort table, generator).
CLINICAL_CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "sex": ("F", "M"),
    "primary_side": ("left", "right", "rectum"),
    "ras_status": ("wt", "mut"),
    "braf_status": ("wt", "mut"),
    "ici_regimen": ("anti-PD-1", "anti-PD-1+anti-CTLA-4", "other"),
    "best_response": RECIST,
}

#: Resolutions (µm/px) a microscopy scan can have: slide metadata outside it is refused
#: (``mpp_implausible``) unless ``--mpp`` is given, and ``--mpp`` must lie in it.
PLAUSIBLE_MPP: Final[tuple[float, float]] = (0.1, 2.0)


def mpp_is_plausible(mpp: float | None) -> bool:
    """True when ``mpp`` lies in :data:`PLAUSIBLE_MPP`."""
    return mpp is not None and PLAUSIBLE_MPP[0] <= mpp <= PLAUSIBLE_MPP[1]

#: Multiple-instance models over tile embeddings (:mod:`immunodig.mil`); ``evaluate --model``
#: accepts them beside the tabular models.
MIL_MODELS: Final[tuple[str, ...]] = ("abmil", "transmil", "meanpool", "maxpool")
