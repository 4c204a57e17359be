"""Synthetic demo cohort: H&E / CD3 slides (pyramidal JPEG TIFF), ground truth and clinical data.

Real slides and clinical data are confidential; this generator makes a realistic, deterministic
stand-in so that every command, test and benchmark runs offline. See docs/synthetic.md.
"""

from __future__ import annotations

from immunodig.synthetic.clinical import (
    CLINICAL_COLUMNS,
    PatientMorphology,
    clinical_table,
    make_clinical_table,
)
from immunodig.synthetic.cohort import CohortPaths, make_cohort, plan_cohort
from immunodig.synthetic.layout import LayoutParams
from immunodig.synthetic.render import render_class_tile
from immunodig.synthetic.slide import SlideParams, SlideTruth, build_slide_model, make_slide

__all__ = [
    "CLINICAL_COLUMNS", "CohortPaths", "LayoutParams", "PatientMorphology", "SlideParams",
    "SlideTruth", "build_slide_model", "clinical_table", "make_clinical_table", "make_cohort",
    "make_slide", "plan_cohort", "render_class_tile",
]
