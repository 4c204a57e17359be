"""Report sections about the cohort: flow, characteristics by outcome, feature distributions
(slide quality control is in :mod:`immunodig.report.qc_sections`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from immunodig.errors import SectionUnavailable
from immunodig.report.cohort import cohort_flow, cohort_table
from immunodig.report.distributions import plot_feature_distribution, resistance_label
from immunodig.report.figures import new_figure, png_data_uri
from immunodig.report.sections import FigureItem, Section, TableItem

#: Features shown first in the distributions section, when the store has them.
KEY_FEATURES: tuple[str, ...] = (
    "til_density_intraepithelial_per_mm2", "til_density_stromal_per_mm2",
    "til_density_margin_per_mm2", "til_density_core_per_mm2", "prop_tumour", "prop_stroma",
    "prop_lymphocytes", "tsr_stroma_fraction", "tls_count", "tls_density_tumour_per_mm2",
    "tumour_bud_count", "morisita_lym_tumour_tiles",
)
#: Panels in the distributions figure.
MAX_DISTRIBUTIONS = 12

_FLOW_LABELS = {
    "patients": "patients in the store",
    "with_clinical": "with baseline clinical data",
    "without_clinical": "without any clinical or outcome data",
    "with_outcomes": "with an outcomes row",
    "with_resistance": "with primary resistance determined",
    "with_pfs": "with PFS time and event",
    "with_he_features": "with at least one H&E slide with features",
    "slide_patients_not_in_patients": "patients named by slides but absent from `patients`",
    "slides_without_patient": "slides not linked to a patient",
}


def flow_section(store: Path) -> Section:
    """Slides found, done and failed (by reason); patients with and without clinical data."""
    flow = cohort_flow(store)
    sec = Section("flow", "Cohort flow",
                  "Each slide counts once, by its latest status across build runs.")
    rows = [["slides found", str(flow.slides_found)],
            ["slides processed", str(flow.slides_done)],
            ["slides failed", str(flow.slides_failed)]]
    rows += [[f"  failed: {reason}", str(n)] for reason, n in flow.failed_by_reason.items()]
    rows += [[f"slides in store, stain {stain}", str(n)] for stain, n in flow.slides_by_stain.items()]
    sec.tables.append(TableItem("slides", ["step", "n"], rows))
    sec.tables.append(TableItem("patients", ["patients", "n"],
                                [[_FLOW_LABELS.get(k, k), str(v)] for k, v in flow.patients.items()]))
    if flow.slides_found == 0:
        sec.notes.append("No slide has been processed into this store yet (run build-features).")
    return sec


def _patients(store: Path) -> pd.DataFrame:
    from immunodig.store import query

    cols = ("patient_id, age_years, sex, primary_side, ras_status, braf_status, lynch, ecog, "
            "ici_regimen, treatment_line, best_response, pfs_months, pfs_event, "
            "primary_resistance, n_he_slides")
    return query(store, f"select {cols} from patient_dataset").to_pandas()


def cohort_table_section(store: Path) -> Section:
    """TRIPOD-style table of characteristics by primary-resistance group."""
    df = _patients(store)
    if df.empty:
        raise SectionUnavailable("no patients in the store; import clinical data (import-clinical)")
    table = cohort_table(df)
    sec = Section("cohort", "Patient characteristics by outcome",
                  "Primary resistance as derived at import (see docs/clinical.md); "
                  "\"undetermined\" = no outcome or not evaluable. Cells: n (column %) or "
                  "median (IQR).")
    rows = table.astype(str).to_numpy().tolist()
    shown = [row[:] for row in rows]
    for i in range(1, len(rows)):
        if rows[i][0] == rows[i - 1][0]:
            shown[i][0] = ""  # a characteristic's name only on its first level
    sec.tables.append(TableItem("characteristics", list(table.columns), shown))
    if not (df["primary_resistance"].notna()).any():
        sec.notes.append("No patient has primary resistance determined yet.")
    return sec


def distributions_section(store: Path) -> Section:
    """Box plots of key patient-level features by resistance status."""
    from immunodig.store import query

    long = query(store, """
        select f.patient_id, f.feature, f.value, o.primary_resistance
        from patient_features_long f
        left join outcomes o on o.patient_id = f.patient_id
    """).to_pandas()
    if long.empty:
        raise SectionUnavailable("no patient-level features yet (build-features on H&E slides "
                                 "linked to patients)")
    units = query(store, "select name, any_value(unit) as unit from feature_catalog "
                         "group by name").to_pandas()
    unit_of = dict(zip(units["name"], units["unit"]))
    present = list(dict.fromkeys(long["feature"]))
    chosen = [f for f in KEY_FEATURES if f in present]
    chosen += [f for f in sorted(present) if f not in chosen][: MAX_DISTRIBUTIONS - len(chosen)]
    chosen = chosen[:MAX_DISTRIBUTIONS]
    wide = long.pivot_table(index="patient_id", columns="feature", values="value",
                            aggfunc="first", dropna=False)
    outcome = long.drop_duplicates("patient_id").set_index("patient_id")["primary_resistance"]
    groups = resistance_label(outcome.reindex(wide.index).to_numpy())
    n_cols = 4
    n_rows = int(np.ceil(len(chosen) / n_cols))
    fig = new_figure((3.2 * n_cols, 3.0 * n_rows))
    for i, feature in enumerate(chosen):
        ax = fig.add_subplot(n_rows, n_cols, i + 1)
        plot_feature_distribution(wide[feature].to_numpy(dtype=float), groups, ax=ax,
                                  feature=feature, unit=unit_of.get(feature))
    sec = Section("distributions", "Feature distributions by resistance status",
                  f"{len(chosen)} of {len(present)} patient-level features (key TIL, composition "
                  "and structure features first). Descriptive only: no test, no selection by "
                  "outcome.")
    sec.figures.append(FigureItem(png_data_uri(fig), "Each point is a patient; boxes show "
                                  "median and quartiles.", "feature distributions"))
    return sec
