"""Cohort flow and the TRIPOD-style table of patient characteristics by outcome, from the store.

Counts only: no patient identifier or individual value leaves these functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from immunodig.report.distributions import RESISTANCE_GROUPS, resistance_label
from immunodig.vocab import CLINICAL_CATEGORIES

_LATEST_STATUS_SQL = """
select slide_key, slide_id, status, coalesce(reason, 'unknown') as reason
from slide_status
qualify row_number() over (partition by slide_key
                           order by finished_at desc nulls last, updated_at desc, run_id desc) = 1
"""

_PATIENT_FLOW_SQL = """
select
    (select count(*) from patients) as patients,
    (select count(*) from clinical) as with_clinical,
    (select count(*) from outcomes) as with_outcomes,
    (select count(*) from outcomes where primary_resistance is not null) as with_resistance,
    (select count(*) from outcomes where pfs_months is not null and pfs_event is not null)
        as with_pfs,
    (select count(*) from patient_dataset where n_he_slides > 0) as with_he_features,
    (select count(*) from patients p
        where not exists (select 1 from clinical c where c.patient_id = p.patient_id)
          and not exists (select 1 from outcomes o where o.patient_id = p.patient_id))
        as without_clinical,
    (select count(distinct s.patient_id) from slides s
        where s.patient_id is not null
          and not exists (select 1 from patients p where p.patient_id = s.patient_id))
        as slide_patients_not_in_patients,
    (select count(*) from slides where patient_id is null) as slides_without_patient
"""


@dataclass
class CohortFlow:
    """Counts from slides found to patients analysable.

    Attributes
    ----------
    slides_found, slides_done, slides_failed : int
        Distinct slides (or unreadable paths) by their latest status.
    failed_by_reason : dict
        Reason -> number of failed slides.
    slides_by_stain : dict
        Stain -> slides in the ``slides`` table.
    patients : dict
        Named patient counts (see ``_PATIENT_FLOW_SQL``).
    """

    slides_found: int
    slides_done: int
    slides_failed: int
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    slides_by_stain: dict[str, int] = field(default_factory=dict)
    patients: dict[str, int] = field(default_factory=dict)


def cohort_flow(store_path: str | Path) -> CohortFlow:
    """Read the cohort flow counts from the store (read-only)."""
    from immunodig.store import query

    status = query(store_path, _LATEST_STATUS_SQL).to_pandas()
    failed = status[status["status"] == "failed"]
    stains = query(store_path, "select coalesce(stain, 'unknown') as stain, count(*) as n "
                               "from slides group by 1 order by 1").to_pandas()
    patients = query(store_path, _PATIENT_FLOW_SQL).to_pandas().iloc[0]
    return CohortFlow(
        slides_found=int(len(status)),
        slides_done=int((status["status"] == "done").sum()),
        slides_failed=int(len(failed)),
        failed_by_reason={str(k): int(v) for k, v in
                          failed["reason"].value_counts().sort_index().items()},
        slides_by_stain=dict(zip(stains["stain"].astype(str), stains["n"].astype(int))),
        patients={k: int(v) for k, v in patients.items()},
    )


def _median_iqr(v: pd.Series) -> str:
    d = pd.to_numeric(v, errors="coerce").dropna()
    if d.empty:
        return "-"
    return f"{d.median():.1f} ({d.quantile(0.25):.1f}-{d.quantile(0.75):.1f})"


def _n_pct(mask: pd.Series, denom: int) -> str:
    k = int(mask.sum())
    return f"{k} ({100 * k / denom:.0f}%)" if denom else "-"


#: Categorical characteristics of the cohort table: column -> (label, levels).
CATEGORICAL: dict[str, tuple[str, tuple]] = {
    "sex": ("sex", CLINICAL_CATEGORIES["sex"]),
    "primary_side": ("primary tumour side", CLINICAL_CATEGORIES["primary_side"]),
    "ras_status": ("RAS", CLINICAL_CATEGORIES["ras_status"]),
    "braf_status": ("BRAF", CLINICAL_CATEGORIES["braf_status"]),
    "lynch": ("Lynch syndrome", (1, 0)),
    "ecog": ("ECOG", (0, 1, 2, 3, 4)),
    "ici_regimen": ("ICI regimen", CLINICAL_CATEGORIES["ici_regimen"]),
    "best_response": ("best response (RECIST)", CLINICAL_CATEGORIES["best_response"]),
}
#: Continuous characteristics: column -> label.
CONTINUOUS: dict[str, str] = {
    "age_years": "age, years: median (IQR)",
    "treatment_line": "treatment line: median (IQR)",
    "pfs_months": "PFS, months: median (IQR) of observed times",
    "n_he_slides": "H&E slides per patient: median (IQR)",
}


def cohort_table(patients: pd.DataFrame) -> pd.DataFrame:
    """Patient characteristics by primary-resistance group (TRIPOD item 13b style).

    Parameters
    ----------
    patients : pandas.DataFrame
        One row per patient with the clinical/outcome columns of ``patient_dataset``
        (missing columns are left out of the table).

    Returns
    -------
    pandas.DataFrame
        Columns ``characteristic, level`` then one per group present (resistant,
        not resistant, undetermined) and ``all``; cells are counts (column %) or median (IQR);
        a ``missing`` row follows every characteristic with missing values.
    """
    df = patients.copy()
    df["_group"] = resistance_label(df["primary_resistance"] if "primary_resistance" in df
                                    else np.full(len(df), np.nan))
    groups = [g for g in RESISTANCE_GROUPS if (df["_group"] == g).any()]
    parts = {g: df[df["_group"] == g] for g in groups}
    parts["all"] = df
    rows = [{"characteristic": "patients", "level": "n",
             **{g: str(len(p)) for g, p in parts.items()}}]
    for col, label in CONTINUOUS.items():
        if col in df:
            rows.append({"characteristic": label, "level": "",
                         **{g: _median_iqr(p[col]) for g, p in parts.items()}})
    if {"pfs_event"} <= set(df.columns):
        rows.append({"characteristic": "PFS events", "level": "n (%)",
                     **{g: _n_pct(p["pfs_event"] == 1, len(p)) for g, p in parts.items()}})
    for col, (label, levels) in CATEGORICAL.items():
        if col not in df:
            continue
        for level in levels:
            rows.append({"characteristic": label, "level": str(level),
                         **{g: _n_pct(p[col].astype(object) == level, len(p))
                            for g, p in parts.items()}})
        if df[col].isna().any():
            rows.append({"characteristic": label, "level": "missing",
                         **{g: _n_pct(p[col].isna(), len(p)) for g, p in parts.items()}})
    return pd.DataFrame(rows, columns=["characteristic", "level", *parts])
