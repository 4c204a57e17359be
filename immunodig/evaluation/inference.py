"""Unpenalised Cox inference fit: hazard ratios that mean what they say.

The penalised ``cox`` pipeline is a *prediction* model: its ratios are per standard deviation,
shrunk towards 1, with one column per category level and missing-value indicators, and its
intervals come from the penalised information matrix. They are not inference. This module fits a
separate, ordinary (unpenalised) Cox model for reporting:

- categorical covariates (strings, booleans, or columns named in ``categorical``) are
  **reference-coded**: one column per non-reference level, each hazard ratio is "level vs the
  reference level". The default reference is the alphabetically first level (R's default for
  character data); set it per column with ``reference={"rx": "Obs"}``;
- numeric covariates enter as given: the hazard ratio is **per unit** (per SD with
  ``per_sd=True``, the SD of the rows used);
- **complete cases**: rows with a missing covariate are left out and counted (no imputation,
  no missing indicators); columns constant in the rows used are left out and listed;
- several rows per patient: robust (sandwich) standard errors clustered on the patient
  (lifelines ``cluster_col``);
- proportional hazards: the Schoenfeld-residual test of lifelines
  (``proportional_hazard_test``, ``time_transform="rank"``), one p-value per model column.

The fit agrees with ``lifelines.CoxPHFitter`` given the same design (see the tests).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from immunodig.errors import ValidationError

REFERENCE_RULE = "alphabetically first level unless set with reference={column: level}"


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def reference_design(X: pd.DataFrame, reference: dict | None = None,
                     categorical: list[str] | None = None, per_sd: bool = False,
                     source: str = "table") -> tuple[pd.DataFrame, list[dict]]:
    """Reference-coded design matrix of complete rows and the meaning of each of its columns.

    Parameters
    ----------
    X : DataFrame
        Covariates, complete rows only.
    reference : dict, optional
        Reference level per categorical column (as a string, e.g. ``{"rx": "Obs"}``).
    categorical : list of str, optional
        Numeric columns to treat as categorical (e.g. a 1/2/3 grade).
    per_sd : bool
        Divide numeric columns by their SD (hazard ratio per SD).

    Returns
    -------
    design : DataFrame
        One column per numeric covariate and per non-reference level.
    terms : list of dict
        Per design column: ``column`` (design name), ``term``, ``level``, ``reference``,
        ``unit``.
    """
    reference = {k: str(v) for k, v in (reference or {}).items()}
    categorical = set(categorical or [])
    problems = [{"row": None, "column": c, "check": "reference / categorical column not found"}
                for c in sorted((set(reference) | categorical) - set(X.columns))]
    cols, terms = {}, []
    for name in X.columns:
        s = X[name]
        if name in categorical or name in reference or _is_categorical(s):
            values = s.map(lambda v: str(int(v)) if isinstance(v, (float, np.floating))
                           and float(v).is_integer() else str(v))
            levels = sorted(values.unique())
            ref = reference.get(name, levels[0])
            if ref not in levels:
                problems.append({"row": None, "column": name,
                                 "check": f"reference level {ref!r} does not occur"})
                continue
            for level in levels:
                if level == ref:
                    continue
                col = f"{name}[{level}]"
                cols[col] = (values == level).astype(float)
                terms.append({"column": col, "term": str(name), "level": level,
                              "reference": ref, "unit": "level vs reference"})
        else:
            v = s.astype(float)
            unit = "per unit"
            if per_sd:
                sd = float(v.std(ddof=1))
                v = v / sd if sd > 0 else v
                unit = f"per SD ({sd:.4g})"
            cols[str(name)] = v
            terms.append({"column": str(name), "term": str(name), "level": None,
                          "reference": None, "unit": unit})
    if problems:
        raise ValidationError(source, problems)
    return pd.DataFrame(cols, index=X.index), terms


def cox_inference(X: pd.DataFrame, y, ids=None, *, reference: dict | None = None,
                  categorical: list[str] | None = None, per_sd: bool = False,
                  alpha: float = 0.05, source: str = "table") -> dict:
    """Unpenalised Cox fit for reporting hazard ratios, with the proportional-hazards test.

    Parameters
    ----------
    X : DataFrame
        Raw covariates (one row per patient, or several with ``ids``).
    y : structured array
        Survival target (:func:`immunodig.models.survival_target`).
    ids : array, optional
        Patient per row; repeated ids give cluster-robust standard errors.
    reference, categorical, per_sd
        See :func:`reference_design`.
    alpha : float
        1 - confidence level.

    Returns
    -------
    dict
        ``hazard_ratios`` (rows with ``term, level, reference, unit, hr, ci_low, ci_high, p``),
        ``ph_test`` (rows with ``term, level, test_statistic, p``), ``n_used``,
        ``n_events_used``, ``n_dropped_incomplete``, ``dropped_constant``, ``robust_se`` and
        ``method``.
    """
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    X = X.reset_index(drop=True)
    y = np.asarray(y)
    complete = X.notna().all(axis=1).to_numpy()
    Xc = X.loc[complete]
    design, terms = reference_design(Xc, reference, categorical, per_sd, source)
    constant = [t["column"] for t in terms if design[t["column"]].nunique() < 2]
    terms = [t for t in terms if t["column"] not in constant]
    if not terms:
        raise ValidationError(source, [{"row": None, "column": None,
                                        "check": "no non-constant covariate in complete rows"}])
    df = design[[t["column"] for t in terms]].copy()
    df["__time"] = y["time"][complete]
    df["__event"] = y["event"][complete].astype(int)
    robust = False
    if ids is not None:
        ids_c = np.asarray(ids).astype(str)[complete]
        robust = len(np.unique(ids_c)) < len(ids_c)
        if robust:
            df["__id"] = ids_c
    cph = CoxPHFitter(penalizer=0.0, alpha=alpha)
    cph.fit(df, duration_col="__time", event_col="__event",
            cluster_col="__id" if robust else None)
    s = cph.summary
    lo = [c for c in s.columns if c.startswith("exp(coef) lower")][0]
    hi = [c for c in s.columns if c.startswith("exp(coef) upper")][0]
    hrs = [{"term": t["term"], "level": t["level"], "reference": t["reference"],
            "unit": t["unit"], "hr": float(s.loc[t["column"], "exp(coef)"]),
            "ci_low": float(s.loc[t["column"], lo]), "ci_high": float(s.loc[t["column"], hi]),
            "p": float(s.loc[t["column"], "p"])} for t in terms]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ph = proportional_hazard_test(cph, df,
                                      time_transform="rank").summary
    ph_rows = [{"term": t["term"], "level": t["level"],
                "test_statistic": float(ph.loc[t["column"], "test_statistic"]),
                "p": float(ph.loc[t["column"], "p"])} for t in terms]
    return {"hazard_ratios": hrs, "ph_test": ph_rows, "n_used": int(complete.sum()),
            "n_events_used": int(df["__event"].sum()),
            "n_dropped_incomplete": int((~complete).sum()),
            "dropped_constant": constant, "robust_se": robust,
            "method": ("unpenalised Cox PH (lifelines CoxPHFitter, Efron ties), complete cases, "
                       f"reference-coded categories (reference: {REFERENCE_RULE}), numeric "
                       f"covariates {'per SD' if per_sd else 'per unit'}; PH test: Schoenfeld "
                       "residuals vs rank(time) (lifelines proportional_hazard_test)"
                       + ("; cluster-robust SEs by patient" if robust else ""))}
