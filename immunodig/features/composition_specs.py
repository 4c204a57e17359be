"""Declarations of the tissue-composition features (:mod:`immunodig.features.composition`)."""

from __future__ import annotations

from immunodig.features.composition import CLASS_STEM, LYM_RICH_MIN_PROB, TISSUE_CLASSES
from immunodig.features.feature_spec import FeatureSpec
from immunodig.vocab import KATHER_CLASSES, KATHER_NAMES

KATHER_2019 = (
    "Kather JN et al. Predicting survival from colorectal cancer histology slides using deep "
    "learning. PLoS Med 2019;16:e1002730"
)

#: The features this module declares, in catalogue order.
SPECS: list[FeatureSpec] = []
TILE_AREA = "a tile contributes tissue_fraction x tile area (QC-passed tiles only)"

SPECS.extend((
    FeatureSpec(
        name="area_tissue_mm2",
        unit="mm2",
        description="Tissue area of the slide from the tissue mask. 0 when the mask is empty.",
        stage="tissue",
        inputs=("mask",),
        patient_aggregation="sum",
        weight=None,
    ),
    FeatureSpec(
        name="area_classified_mm2",
        unit="mm2",
        description=(
            "Tissue area of QC-passed tiles classified as any tissue class (every Kather class "
            f"but BACK); {TILE_AREA}. Denominator of the prop_* features. 0 when no tile passes."
        ),
        stage="tissue",
        inputs=("tiles",),
        patient_aggregation="sum",
        weight=None,
    ),
    FeatureSpec(
        name="area_unclassified_mm2",
        unit="mm2",
        description=(
            "Tissue area of tiles that were not classified (failed QC: too little tissue, blur, "
            "pen, ...), tissue_fraction x tile area. 0 when every tile was classified."
        ),
        stage="tissue",
        inputs=("tiles",),
        patient_aggregation="sum",
        weight=None,
    ),
))

SPECS.extend((
    *(
        FeatureSpec(
            name=f"area_{CLASS_STEM[c]}_mm2",
            unit="mm2",
            description=(
                f"Tissue area of tiles classified {c} ({KATHER_NAMES[c]}); {TILE_AREA}. "
                "0 when no tile has this class."
            ),
            stage="tissue",
            inputs=("tiles",),
            patient_aggregation="sum",
            weight=None,
            reference=KATHER_2019,
        )
        for c in KATHER_CLASSES
    ),
    *(
        FeatureSpec(
            name=f"prop_{CLASS_STEM[c]}",
            unit="fraction",
            description=(
                f"Share of class {c} ({KATHER_NAMES[c]}) in the classified tissue area "
                f"(area_{CLASS_STEM[c]}_mm2 / area_classified_mm2; BACK excluded). "
                "NaN when no tile is classified as tissue."
            ),
            stage="tissue",
            inputs=("tiles",),
            weight="area_classified_mm2",
            reference=KATHER_2019,
        )
        for c in TISSUE_CLASSES
    ),
))

SPECS.extend((
    FeatureSpec(
        name="tsr_stroma_fraction",
        unit="fraction",
        description=(
            "Tumour-stroma ratio expressed as the stroma share: STR area / (STR + TUM area) over "
            "the whole slide (stroma-high when > 0.5). NaN when the slide has neither tumour nor "
            "stroma tiles."
        ),
        stage="tissue",
        inputs=("tiles",),
        weight="area_tumour_mm2",
        reference=(
            "Mesker WE et al. The carcinoma-stromal ratio of colon carcinoma is an independent "
            "factor for survival compared to lymph node status and tumor stage. Cell Oncol "
            "2007;29:387-398"
        ),
    ),
    FeatureSpec(
        name="tumour_necrosis_fraction",
        unit="fraction",
        description=(
            "Necrosis/debris relative to tumour: DEB area / (DEB + TUM area). NaN when the slide "
            "has neither debris nor tumour tiles."
        ),
        stage="tissue",
        inputs=("tiles",),
        weight="area_tumour_mm2",
    ),
    FeatureSpec(
        name="tumour_mucin_fraction",
        unit="fraction",
        description=(
            "Extracellular mucin relative to tumour: MUC area / (MUC + TUM area); > 0.5 "
            "corresponds to the WHO mucinous-adenocarcinoma threshold. NaN when the slide has "
            "neither mucus nor tumour tiles."
        ),
        stage="tissue",
        inputs=("tiles",),
        weight="area_tumour_mm2",
        reference="WHO Classification of Tumours: Digestive System Tumours, 5th ed., 2019",
    ),
    FeatureSpec(
        name="lym_rich_tile_fraction",
        unit="fraction",
        description=(
            "Fraction of classified tissue tiles (count, BACK excluded) whose LYM probability is "
            f">= {LYM_RICH_MIN_PROB} (cfg.extra['lym_rich_min_prob']): lymphocyte-rich tiles "
            "whatever their winning class, in the spirit of TIL maps. NaN when no tile is "
            "classified as tissue."
        ),
        stage="tissue",
        inputs=("tiles",),
        weight="area_classified_mm2",
        reference=(
            "Saltz J et al. Spatial organization and molecular correlation of tumor-infiltrating "
            "lymphocytes using deep learning on pathology images. Cell Rep 2018;23:181-193"
        ),
    ),
    FeatureSpec(
        name="adipose_involvement_fraction",
        unit="fraction",
        description=(
            "Fraction of TUM tiles with at least one ADI tile among their 8 grid neighbours "
            "(tumour in contact with fat, a proxy of extension into pericolic fat). NaN when no "
            "tile is TUM; 0 when tumour touches no adipose tile."
        ),
        stage="tissue",
        inputs=("tiles",),
        weight="area_tumour_mm2",
    ),
    FeatureSpec(
        name="muscle_involvement_fraction",
        unit="fraction",
        description=(
            "Fraction of TUM tiles with at least one MUS tile among their 8 grid neighbours "
            "(tumour in contact with smooth muscle, a proxy of muscularis propria invasion). NaN "
            "when no tile is TUM; 0 when tumour touches no muscle tile."
        ),
        stage="tissue",
        inputs=("tiles",),
        weight="area_tumour_mm2",
    ),
))
