"""Declarations of the spatial-organisation features (:mod:`immunodig.features.spatial`)."""

from __future__ import annotations

from immunodig.features.feature_spec import FeatureSpec
from immunodig.features.spatial import (
    BUD_LINK_UM,
    BUD_MAX_CELLS,
    CONTACT_UM,
    QUADRAT_UM,
    RIPLEY_RADII_UM,
)

MALEY_2015 = (
    "Maley CC et al. An ecological measure of immune-cancer colocalization as a prognostic "
    "factor for breast cancer. Breast Cancer Res 2015;17:131"
)
NUCLEI = (
    "Lymphocytes are nuclei with cell_class lymphocyte; tumour nuclei are epithelial nuclei in "
    "TUM tiles."
)

#: The features this module declares, in catalogue order.
SPECS: list[FeatureSpec] = []
MH = (
    "Morisita-Horn index 2 sum(p_i q_i) / (sum p_i^2 + sum q_i^2) over square quadrats of "
    f"cfg.extra['quadrat_um'] (default {QUADRAT_UM:g} um; on the tile grid rounded to whole "
    "tiles): 1 = identical spatial distributions, 0 = never in the same quadrat."
)

SPECS.extend((
    FeatureSpec(
        name="morisita_lym_tumour_tiles",
        unit="1",
        description=(
            f"Lymphocyte-tumour co-localisation from the tile map: {MH} p_i, q_i = share of the "
            "LYM and of the TUM tissue area in quadrat i. NaN when the slide lacks LYM or TUM "
            "tiles."
        ),
        stage="spatial",
        inputs=("tiles",),
        weight="area_tumour_mm2",
        reference=MALEY_2015,
    ),
    FeatureSpec(
        name="morisita_lym_tumour_nuclei",
        unit="1",
        description=(
            f"Lymphocyte-tumour co-localisation from nuclei: {MH} p_i, q_i = share of the "
            f"lymphocytes and of the tumour nuclei in quadrat i. {NUCLEI} NaN when either is "
            "absent."
        ),
        stage="spatial",
        inputs=("nuclei",),
        weight="area_tumour_mm2",
        reference=MALEY_2015,
    ),
    FeatureSpec(
        name="nn_tumour_to_lym_median_um",
        unit="um",
        description=(
            "Median over tumour nuclei of the distance to the nearest lymphocyte (centroids). "
            f"{NUCLEI} NaN when there is no tumour nucleus or no lymphocyte."
        ),
        stage="spatial",
        inputs=("nuclei",),
        weight="area_tumour_mm2",
    ),
    FeatureSpec(
        name=f"tumour_nuclei_lym_within_{CONTACT_UM}um_fraction",
        unit="fraction",
        description=(
            f"Fraction of tumour nuclei with a lymphocyte within {CONTACT_UM} um (centroid "
            f"distance): tumour cells in immune contact. {NUCLEI} NaN when there is no tumour "
            "nucleus; 0 when there is no lymphocyte."
        ),
        stage="spatial",
        inputs=("nuclei",),
        weight="area_tumour_mm2",
    ),
    *(
        FeatureSpec(
            name=f"ripley_lr_lym_r{r}_um",
            unit="um",
            description=(
                f"Besag's L(r) - r of lymphocyte positions at r = {r} um: L = sqrt(K / pi), K "
                "Ripley's K with border (reduced-sample) edge correction in the window of "
                "classified tissue tiles (lymphocytes outside it are ignored). 0 under complete "
                "spatial randomness, > 0 clustered, < 0 regular. NaN with fewer than 2 "
                f"lymphocytes or none at least {r} um inside the window."
            ),
            stage="spatial",
            inputs=("tiles", "nuclei"),
            weight="area_classified_mm2",
            reference=(
                "Ripley BD. Modelling spatial patterns. J R Stat Soc B 1977;39:172-212; "
                "Besag J. Discussion of Ripley 1977"
            ),
        )
        for r in RIPLEY_RADII_UM
    ),
    FeatureSpec(
        name="tissue_class_entropy_bits",
        unit="bits",
        description=(
            "Shannon entropy -sum p log2 p of the tissue-class proportions (prop_*, BACK "
            "excluded): 0 for a single class, at most log2(8) = 3. NaN when no tile is "
            "classified as tissue."
        ),
        stage="spatial",
        inputs=("tiles",),
        weight="area_classified_mm2",
    ),
    FeatureSpec(
        name="tissue_mixing_fraction",
        unit="fraction",
        description=(
            "Fraction of side-by-side pairs of classified tissue tiles (4-neighbourhood) whose "
            "classes differ: 0 for homogeneous blocks, towards 1 for a finely intermixed map. "
            "NaN when no two tissue tiles are adjacent."
        ),
        stage="spatial",
        inputs=("tiles",),
        weight="area_classified_mm2",
    ),
    FeatureSpec(
        name="tumour_fragment_count",
        unit="count",
        description=(
            "Number of separate tumour fragments (8-connected groups of TUM tiles). 0 when no "
            "tile is TUM."
        ),
        stage="spatial",
        inputs=("tiles",),
        patient_aggregation="sum",
        weight=None,
    ),
    FeatureSpec(
        name="tumour_largest_fragment_fraction",
        unit="fraction",
        description=(
            "Tissue area of the largest tumour fragment / total TUM area: 1 for a compact "
            "tumour, low for a fragmented one. NaN when no tile is TUM."
        ),
        stage="spatial",
        inputs=("tiles",),
        weight="area_tumour_mm2",
    ),
    FeatureSpec(
        name="tumour_bud_count",
        unit="count",
        description=(
            f"Tumour-budding proxy: clusters of 1-{BUD_MAX_CELLS} epithelial nuclei (nuclei "
            f"closer than cfg.extra['bud_link_um'], default {BUD_LINK_UM:g} um, are linked) "
            "lying entirely in STR tiles of the invasive-margin band. 0 when none."
        ),
        stage="spatial",
        inputs=("tiles", "nuclei"),
        patient_aggregation="sum",
        weight=None,
        reference=(
            "Lugli A et al. Recommendations for reporting tumor budding in colorectal cancer "
            "based on the ITBCC 2016. Mod Pathol 2017;30:1299-1311"
        ),
    ),
    FeatureSpec(
        name="tumour_bud_density_margin_per_mm2",
        unit="per_mm2",
        description=(
            "tumour_bud_count per mm2 of invasive-margin tissue. NaN when the margin is empty "
            "(no tumour edge)."
        ),
        stage="spatial",
        inputs=("tiles", "nuclei"),
        patient_aggregation="max",
        weight=None,
        reference=(
            "Lugli A et al. Recommendations for reporting tumor budding in colorectal cancer "
            "based on the ITBCC 2016. Mod Pathol 2017;30:1299-1311"
        ),
    ),
))
