"""``evaluate --store F --model abmil|transmil|meanpool|maxpool``: MIL on the store's bags.

The patients, outcome columns and (with ``clinical=True``) late-fusion covariates come from the
same model matrix as the tabular models (:func:`immunodig.models.matrix.model_matrix`), the
bags from :func:`immunodig.mil.bags.store_bags`; patients with an outcome but no embeddings are
left out and counted. The run is recorded in ``model_runs`` / ``model_metrics`` /
``oof_predictions`` like a tabular run, and each tile's out-of-fold attention in
``mil_attention``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from immunodig.errors import ConfigError
from immunodig.evaluation.nested_cv import CVResult
from immunodig.mil.bags import PatientBags, store_bags
from immunodig.mil.cross_validation import cross_validate_bags_result
from immunodig.vocab import MIL_MODELS


@dataclass
class MILData:
    """What one MIL evaluation on the store runs on (rows in ``ids`` order)."""

    ids: np.ndarray
    y: np.ndarray
    bags: PatientBags
    clinical: np.ndarray | None
    clinical_columns: list[str]
    notes: dict
    data_sha256: str

    def reordered(self, ids) -> "MILData":
        """The same data with rows in the order of ``ids`` (the same patients)."""
        ids = np.asarray(ids, dtype=str)
        where = {p: i for i, p in enumerate(self.ids)}
        if sorted(where) != sorted(ids.tolist()):
            raise ConfigError("MIL data and the tabular rows hold different patients")
        idx = np.array([where[p] for p in ids])
        clinical = None if self.clinical is None else self.clinical[idx]
        return MILData(ids, self.y[idx], self.bags.subset(ids), clinical, self.clinical_columns,
                       self.notes, self.data_sha256)

    @property
    def feature_set(self) -> str:
        """Name of the input in ``model_runs.feature_set``: ``embeddings[<encoder>:<hash12>]``
        (``+clinical`` with late fusion)."""
        name = f"embeddings[{self.bags.encoder}:{self.bags.encoder_sha256[:12]}]"
        return name + ("+clinical" if self.clinical is not None else "")


def _numeric_clinical(X: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Clinical covariates as numbers: categoricals one-hot (a missing value: all zeros)."""
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    encoded = pd.get_dummies(X, columns=categorical, dtype=float)
    return encoded.to_numpy(dtype=float), [str(c) for c in encoded.columns]


def mil_data(store_path: str | Path, outcome: str, *, clinical: bool = False,
             encoder_sha256: str | None = None, patients=None) -> MILData:
    """Outcome, bags and optional clinical covariates of the store's patients.

    ``patients`` restricts (and orders) the rows, e.g. to pair with a tabular run.
    """
    from immunodig.evaluation.results import frame_sha256
    from immunodig.evaluation.tabular import prepare_table
    from immunodig.evaluation.workflow import store_outcome
    from immunodig.models.matrix import feature_columns, model_matrix

    matrix = model_matrix(store_path, "clinical", outcome)
    X, y, ids, notes = prepare_table(matrix.to_pandas(), "patient_id", store_outcome(outcome),
                                     feature_columns(matrix), "model matrix")
    bags = store_bags(store_path, encoder_sha256)
    has_bag = np.isin(ids, bags.patient_ids)
    keep = has_bag if patients is None else has_bag & np.isin(ids, np.asarray(patients, dtype=str))
    notes["n_without_embeddings"] = int((~has_bag).sum())
    X, y, ids = X.loc[keep].reset_index(drop=True), y[keep], ids[keep]
    bags = bags.subset(ids)
    covariates, columns = (None, [])
    if clinical:
        covariates, columns = _numeric_clinical(X)
    payload = json.dumps({"matrix": frame_sha256(matrix), "patients": ids.tolist(),
                          "embeddings": bags.files_sha256, "clinical": columns}, sort_keys=True)
    return MILData(ids, y, bags, covariates, columns, notes,
                   hashlib.sha256(payload.encode()).hexdigest())


def run_mil_cv(data: MILData, model: str, *, n_splits: int = 5, n_repeats: int = 5, seed: int = 0,
               **params) -> CVResult:
    """Nested CV of a MIL model on :class:`MILData`, attention of the first repeat kept."""
    if model not in MIL_MODELS:
        raise ConfigError(f"unknown MIL model {model!r}; choose one of {', '.join(MIL_MODELS)}")
    y = data.y
    outcome = ({"time": y["time"], "event": y["event"]} if y.dtype.names else {"labels": y})
    return cross_validate_bags_result(data.bags.bags, model=model, seed=seed, groups=data.ids,
                                      n_splits=n_splits, n_repeats=n_repeats, clinical=data.clinical,
                                      keep_attention=True, **outcome, **params)


def attention_frame(run_id: str, data: MILData, attention: list[np.ndarray | None]) -> pl.DataFrame:
    """``mil_attention`` rows of one run: every tile of every bag with its weight."""
    frames = []
    for patient, tiles, weights in zip(data.ids, data.bags.tiles, attention):
        if weights is None:
            continue
        frames.append(tiles.with_columns(pl.lit(run_id).alias("model_run_id"),
                                         pl.lit(str(patient)).alias("patient_id"),
                                         pl.Series("attention", weights.astype(np.float64))))
    return pl.concat(frames).with_columns(pl.col("tissue_class").cast(pl.Utf8)).select(
        "model_run_id", "patient_id", "slide_id", "col", "row", "x_um",
                                    "y_um", "tile_um", "tissue_class", "attention")


def evaluate_store_mil(store_path: str | Path, outcome: str, model: str, *, clinical: bool = False,
                       encoder_sha256: str | None = None, n_splits: int = 5, n_repeats: int = 5,
                       seed: int = 0, n_boot: int = 1000, record: bool = True, **params) -> dict:
    """Nested CV of a MIL model on the store's patient bags; recorded like a tabular run.

    Parameters
    ----------
    store_path : str or Path
        The store (built with ``build-features --embeddings``).
    outcome : {"resistance", "pfs"}
        Binary resistance (BCE loss) or PFS (Cox partial-likelihood loss).
    model : str
        ``abmil``, ``transmil``, ``meanpool`` or ``maxpool``.
    clinical : bool
        Late fusion of the clinical covariates.
    encoder_sha256 : str, optional
        The encoder whose embeddings form the bags (needed when the store holds several).
    n_splits, n_repeats, seed, n_boot
        As for the tabular models; the same seed gives the same outer splits.
    record : bool
        Write ``model_runs``, ``model_metrics``, ``oof_predictions`` and ``mil_attention``.
    **params
        ``inner_splits``, ``param_grid`` and :class:`~immunodig.mil.training.MILParams` fields.

    Returns
    -------
    dict
        The CV summary (``auc``/``auc_ci`` or ``c_index``/``c_index_ci``, ...).
    """
    from immunodig.evaluation.results import record_run

    data = mil_data(store_path, outcome, clinical=clinical, encoder_sha256=encoder_sha256)
    result = run_mil_cv(data, model, n_splits=n_splits, n_repeats=n_repeats, seed=seed, **params)
    attention = result.notes.pop("attention")
    summary = result.summary(n_boot=n_boot, seed=seed)
    summary.update(outcome=outcome, feature_set=data.feature_set, encoder=data.bags.encoder,
                   encoder_sha256=data.bags.encoder_sha256, clinical_covariates=data.clinical_columns,
                   **data.notes)
    if record:
        from immunodig.store import Store

        run_id = record_run(store_path, kind="evaluate", model=model, task=result.task, outcome=outcome,
                            feature_set=data.feature_set, features=result.feature_names + data.clinical_columns,
                            settings={**result.settings, "n_boot": n_boot}, summary=summary,
                            data_sha256=data.data_sha256, result=result)
        rows = attention_frame(run_id, data, attention)
        with Store.open(store_path) as store, store.transaction() as con:
            con.execute("delete from mil_attention where model_run_id = $id", {"id": run_id})
            con.register("attention_rows", rows.to_arrow())
            con.execute("insert into mil_attention select * from attention_rows")
            con.unregister("attention_rows")
        summary["model_run_id"] = run_id
    return summary
