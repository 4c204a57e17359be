"""Declarations of the TIL (H&E) and IHC positive-cell features (:mod:`immunodig.features.til`)."""

from __future__ import annotations

from dataclasses import replace

from immunodig.features.feature_spec import FeatureSpec
from immunodig.features.til import IHC_AREA_OF

SALTZ_2018 = (
    "Saltz J et al. Spatial organization and molecular correlation of tumor-infiltrating "
    "lymphocytes using deep learning on pathology images. Cell Rep 2018;23:181-193"
)
HENDRY_2017 = (
    "Hendry S et al. Assessing tumor-infiltrating lymphocytes in solid tumors: a practical review "
    "for pathologists (International Immuno-Oncology Biomarkers Working Group), Adv Anat Pathol "
    "2017;24:311-335"
)
GALON_2006 = "Galon J et al. Science 2006;313:1960-1964 (Immunoscore compartments)"
_AREAS = (
    "Areas are tissue areas of classified tiles (tile area x tissue fraction); a cell belongs to "
    "the tile containing its centroid."
)

#: The features this module declares, in catalogue order.
SPECS: list[FeatureSpec] = []
_COMPARTMENTS = {
    "intraepithelial": ("tumour epithelium (TUM tiles)", "area_tumour_mm2", "the slide has no TUM tile", HENDRY_2017),
    "stromal": ("stroma adjacent to tumour (STR tiles within cfg.margin_um, default 500 um, of a TUM tile)",
                "area_stroma_mm2", "no STR tile lies near tumour", HENDRY_2017),
    "tumour_region": ("the tumour region (TUM tiles with enclosed holes filled)", "area_tumour_region_mm2",
                      "the slide has no TUM tile", SALTZ_2018),
}


def _density(prefix: str, cells: str, comp: str, stage: str, inputs: tuple[str, ...]) -> FeatureSpec:
    where, weight, nan_when, ref = _COMPARTMENTS[comp]
    return FeatureSpec(
        name=f"{prefix}_density_{comp}_per_mm2",
        unit="per_mm2",
        description=f"{cells} per mm2 of {where}. {_AREAS} NaN when {nan_when}; 0 when the compartment holds none.",
        stage=stage,
        inputs=inputs,
        weight=weight,
        reference=ref,
    )


def _hotspot(prefix: str, cells: str, stage: str, inputs: tuple[str, ...]) -> FeatureSpec:
    return FeatureSpec(
        name=f"{prefix}_hotspot_density_per_mm2",
        unit="per_mm2",
        description=(
            f"Hotspot density: maximum over all square windows of k x k tiles (k = round(1000 um / "
            f"tile edge), about 1 mm2) of {cells} in the window divided by the window area, "
            "anywhere on the slide. 0 without such cells; NaN for a slide without tiles."
        ),
        stage=stage,
        inputs=inputs,
        patient_aggregation="max",
        weight=None,
        reference=SALTZ_2018,
    )


_HE = ("tiles", "nuclei")
_LYM = "Lymphocyte nuclei (cell_class lymphocyte)"
SPECS.extend((
    *(_density("til", _LYM, c, "nuclei", _HE) for c in _COMPARTMENTS),
    FeatureSpec(
        name="til_fraction_tumour",
        unit="fraction",
        description=(
            "Lymphocyte nuclei / all segmented nuclei in the tumour region (TUM tiles with "
            "enclosed holes filled). NaN when the tumour region holds no nucleus (no tumour)."
        ),
        stage="nuclei",
        inputs=_HE,
        weight="area_tumour_region_mm2",
        reference=SALTZ_2018,
    ),
    _hotspot("til", "lymphocyte nuclei", "nuclei", _HE),
))

_MARGIN_CORE_WHAT = {
    "margin": "invasive-margin band (tiles within cfg.margin_um of the tumour edge, both sides)",
    "core": "tumour core (tumour region beyond the margin band)",
}
_IHC_AREA_WHAT = {
    "tumour": "tumour epithelium (TUM tiles)",
    "stroma": "stroma adjacent to tumour (STR tiles within cfg.margin_um of a TUM tile)",
    "tumour_region": "the tumour region (TUM tiles with enclosed holes filled)",
    "margin": "the invasive-margin band (tiles within cfg.margin_um of the tumour edge)",
    "core": "the tumour core (tumour region beyond the margin band)",
}
for _marker in ("cd3", "cd8"):
    _cells = f"{_marker.upper()}-positive cells (DAB colour deconvolution, immunodig.nuclei.ihc)"
    _ihc = ("tiles", "ihc_cells")
    SPECS.extend((
        *(replace(_density(_marker, _cells, c, "ihc", _ihc),
                  weight=f"{_marker}_area_{IHC_AREA_OF[c]}_mm2") for c in _COMPARTMENTS),
        *(
            FeatureSpec(
                name=f"{_marker}_density_{w}_per_mm2",
                unit="per_mm2",
                description=(
                    f"{_cells} per mm2 of the {_MARGIN_CORE_WHAT[w]}. "
                    f"{_AREAS} NaN when the compartment is empty; 0 when it holds none."
                ),
                stage="ihc",
                inputs=_ihc,
                weight=f"{_marker}_area_{w}_mm2",
                reference=GALON_2006,
            )
            for w in ("margin", "core")
        ),
        *(
            FeatureSpec(
                name=f"{_marker}_area_{a}_mm2",
                unit="mm2",
                description=(
                    f"Tissue area of {what} in which the {_marker.upper()} slide's positive cells "
                    "are counted: the compartment of the patient's H&E tile map the IHC slide is "
                    "registered onto (the denominator of the matching density). NaN when the "
                    "patient has no H&E slide to register onto. Weights the IHC densities when a "
                    "patient's IHC slides are combined."
                ),
                stage="ihc",
                inputs=_ihc,
                patient_aggregation="sum",
                weight=None,
            )
            for a, what in _IHC_AREA_WHAT.items()
        ),
        _hotspot(_marker, _cells, "ihc", _ihc),
    ))
