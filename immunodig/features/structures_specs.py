"""Declarations of the tertiary-lymphoid-structure features (:mod:`immunodig.features.structures`)."""

from __future__ import annotations

from immunodig.features.feature_spec import FeatureSpec
from immunodig.features.structures import TLS_MIN_AREA_MM2

SAUTES_FRIDMAN_2019 = (
    "Sautes-Fridman C et al. Tertiary lymphoid structures in the era of cancer immunotherapy. "
    "Nat Rev Cancer 2019;19:307-325"
)
CANDIDATE = (
    "A TLS candidate is an 8-connected group of LYM tiles with tissue area >= "
    f"cfg.extra['tls_min_area_mm2'] (default {TLS_MIN_AREA_MM2} mm2); intratumoural when most "
    "of its area lies in the tumour region, peritumoural when not but a tile lies within "
    "cfg.margin_um of the tumour edge."
)

#: The features this module declares, in catalogue order.
SPECS: list[FeatureSpec] = []


def _spec(name: str, unit: str, what: str, aggregation: str = "sum",
          weight: str | None = None) -> FeatureSpec:
    return FeatureSpec(
        name=name,
        unit=unit,
        description=f"{what} {CANDIDATE}",
        stage="structures",
        inputs=("tiles",),
        patient_aggregation=aggregation,
        weight=weight,
        reference=SAUTES_FRIDMAN_2019,
    )


SPECS.extend((
    _spec("tls_count", "count", "Number of TLS candidates on the slide (0 when none)."),
    _spec("tls_intratumoural_count", "count", "Number of intratumoural TLS candidates (0 when none)."),
    _spec("tls_peritumoural_count", "count", "Number of peritumoural TLS candidates (0 when none)."),
    _spec("tls_density_tumour_per_mm2", "per_mm2",
          "Intratumoural plus peritumoural TLS candidates per mm2 of tumour region. NaN when the "
          "slide has no tumour; 0 when it has no candidate.",
          "area_weighted_mean", "area_tumour_region_mm2"),
    _spec("tls_intratumoural_fraction", "fraction",
          "Intratumoural share of the intra- plus peritumoural TLS candidates. NaN when there is "
          "none.", "area_weighted_mean", "tls_count"),
    _spec("tls_area_mm2", "mm2", "Total tissue area of TLS candidates (0 when none)."),
    _spec("tls_area_mean_mm2", "mm2", "Mean tissue area of a TLS candidate. NaN when none.",
          "area_weighted_mean", "tls_count"),
    _spec("tls_area_max_mm2", "mm2", "Largest TLS-candidate area (0 when none).", "max"),
    _spec("tls_edge_distance_median_um", "um",
          "Median over candidates of the signed distance to the tumour edge of the candidate's "
          "tile nearest to it (negative inside the tumour region, positive outside). NaN when "
          "there is no candidate or no tumour edge.", "area_weighted_mean", "tls_count"),
))
