"""Declarations of the features of segmented structures (:mod:`immunodig.features.segmented_structures`).

A structure segmenter (``build-features --structure-model``; :mod:`immunodig.structures`) names its
classes freely; the classes below have features, recognised by :data:`STRUCTURE_SYNONYMS`
(case, spaces and punctuation ignored). Other classes are kept in ``structures.parquet`` only.
"""

from __future__ import annotations

from immunodig.features.feature_spec import FeatureSpec

#: Feature key of each structure class and the class names that mean it.
STRUCTURE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "tls": ("tls", "tertiarylymphoidstructure", "tertiarylymphoidstructures", "lymphoidaggregate"),
    "gland": ("gland", "glands", "tumourgland", "tumorgland"),
    "bud": ("bud", "buds", "tumourbud", "tumorbud", "tumourbudding", "tumorbudding"),
    "necrosis": ("necrosis", "necrotic", "tumournecrosis", "tumornecrosis"),
}
PLACEMENT = (
    "A structure is placed by its centroid on the tile map: intratumoural in the tumour region, "
    "peritumoural in the outer invasive margin (within cfg.margin_um outside the tumour edge)."
)

#: The features this module declares, in catalogue order.
SPECS: list[FeatureSpec] = []


def _spec(name: str, unit: str, what: str, aggregation: str = "sum", weight: str | None = None) -> FeatureSpec:
    return FeatureSpec(name=name, unit=unit, description=f"{what} {PLACEMENT}", stage="structures",
                       inputs=("structures", "tiles", "mask"), patient_aggregation=aggregation, weight=weight)


for _key in STRUCTURE_SYNONYMS:
    SPECS.extend((
        _spec(f"seg_{_key}_count", "count", f"Number of segmented {_key} structures on the slide (0 when none)."),
        _spec(f"seg_{_key}_intratumoural_count", "count", f"Number of intratumoural segmented {_key} structures."),
        _spec(f"seg_{_key}_peritumoural_count", "count", f"Number of peritumoural segmented {_key} structures."),
        _spec(f"seg_{_key}_density_tumour_per_mm2", "per_mm2",
              f"Intratumoural plus peritumoural segmented {_key} structures per mm2 of tumour region. NaN when "
              "the slide has no tumour.", "area_weighted_mean", "area_tumour_region_mm2"),
        _spec(f"seg_{_key}_intratumoural_fraction", "fraction",
              f"Intratumoural share of the intra- plus peritumoural segmented {_key} structures. NaN when none.",
              "area_weighted_mean", f"seg_{_key}_count"),
        _spec(f"seg_{_key}_area_fraction", "fraction",
              f"Total area of segmented {_key} structures over the tissue area of the mask.",
              "area_weighted_mean", "area_tissue_mm2"),
        _spec(f"seg_{_key}_area_mean_mm2", "mm2", f"Mean area of a segmented {_key} structure. NaN when none.",
              "area_weighted_mean", f"seg_{_key}_count"),
        _spec(f"seg_{_key}_edge_distance_median_um", "um",
              f"Median over segmented {_key} structures of the signed distance of the centroid's tile to the "
              "tumour edge (negative inside the tumour region). NaN when none or no tumour edge.",
              "area_weighted_mean", f"seg_{_key}_count"),
    ))
