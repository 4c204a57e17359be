"""Declarations of the invasive-margin / tumour-core features (:mod:`immunodig.features.margin`)."""

from __future__ import annotations

from immunodig.features.composition import CLASS_STEM
from immunodig.features.feature_spec import FeatureSpec
from immunodig.features.margin import COMPARTMENT_CLASSES
from immunodig.vocab import KATHER_NAMES

GALON_2006 = (
    "Galon J et al. Type, density, and location of immune cells within human colorectal tumors "
    "predict clinical outcome. Science 2006;313:1960-1964; Pages F et al. International "
    "validation of the consensus Immunoscore. Lancet 2018;391:2128-2139"
)
REGION = (
    "Tumour region = TUM tiles with enclosed holes filled; host = other classified tissue; "
    "the edge is where they meet; margin = tiles whose centre lies within cfg.margin_um "
    "(default 500 um) of the edge on either side; core = tumour region minus margin."
)

#: The features this module declares, in catalogue order.
SPECS: list[FeatureSpec] = []


def _area(name: str, what: str, zero_when: str) -> FeatureSpec:
    return FeatureSpec(
        name=name,
        unit="mm2",
        description=f"Tissue area of {what}. {REGION} 0 when {zero_when}.",
        stage="tissue",
        inputs=("tiles",),
        patient_aggregation="sum",
        weight=None,
        reference=GALON_2006,
    )


SPECS.extend((
    _area("area_tumour_region_mm2", "the tumour region", "the slide has no TUM tile"),
    _area("area_margin_mm2", "the invasive-margin band (both sides of the edge)",
          "there is no tumour edge (no tumour, or no host tissue)"),
    _area("area_margin_inner_mm2", "the tumour-side half of the invasive-margin band",
          "there is no tumour edge"),
    _area("area_margin_outer_mm2", "the host-side half of the invasive-margin band",
          "there is no tumour edge"),
    _area("area_core_mm2", "the tumour core (tumour region beyond the margin band)",
          "the slide has no tumour or all of it lies within the margin"),
    FeatureSpec(
        name="tumour_edge_length_mm",
        unit="mm",
        description=(
            "Length of the tumour edge, estimated from tumour/host transitions between "
            "neighbouring tiles in 4 directions with the Cauchy-Crofton formula (within ~7 % "
            f"for edges of any orientation longer than a few tiles). {REGION} 0 when there is "
            "no tumour or no host tissue."
        ),
        stage="tissue",
        inputs=("tiles",),
        patient_aggregation="sum",
        weight=None,
    ),
))

for _where, _weight in (("margin", "area_margin_mm2"), ("core", "area_core_mm2")):
    SPECS.extend((
        *(
            FeatureSpec(
                name=f"prop_{CLASS_STEM[c]}_{_where}",
                unit="fraction",
                description=(
                    f"Share of class {c} ({KATHER_NAMES[c]}) in the tissue area of the "
                    f"{_where}. {REGION} NaN when the {_where} is empty."
                ),
                stage="tissue",
                inputs=("tiles",),
                weight=_weight,
                reference=GALON_2006,
            )
            for c in COMPARTMENT_CLASSES
        ),
        FeatureSpec(
            name=f"til_density_{_where}_per_mm2",
            unit="per_mm2",
            description=(
                f"Lymphocyte nuclei (cell_class lymphocyte) per mm2 of tissue in the {_where} "
                f"(Immunoscore {'IM' if _where == 'margin' else 'CT'} compartment). {REGION} "
                f"NaN when the {_where} is empty; 0 when it holds no lymphocyte."
            ),
            stage="nuclei",
            inputs=("tiles", "nuclei"),
            weight=_weight,
            reference=GALON_2006,
        ),
    ))
