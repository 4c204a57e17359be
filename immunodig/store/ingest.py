"""Loading one per-slide folder into the store, in one transaction.

A finished folder holds ``slide.json``, ``features.parquet`` and, written last, ``manifest.json``
(see docs/architecture.md); a failed one holds ``failure.json``. Everything is read and checked
(JSON keys, the SHA-256 of every file the manifest lists, the Parquet schema) before the
transaction starts, so a truncated or half-written folder raises :class:`SlideDirError` and leaves
the store unchanged. Re-ingesting a folder whose manifest was already loaded is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from immunodig import slide_folder as sf
from immunodig.errors import SlideDirError, StoreError
from immunodig.store.catalog_sync import FEATURE_NAME
from immunodig.vocab import FAILURE_REASONS

#: Slide property keys never stored, even if a writer let them through (label/macro/barcode/text).
_FORBIDDEN_PROPERTY_WORDS = ("label", "macro", "barcode", "description", "comment")



@dataclass(frozen=True)
class IngestResult:
    """Outcome of :func:`ingest_slide_dir`.

    Attributes
    ----------
    slide_id : str or None
        The slide (None for a failure recorded before fingerprinting).
    run_id : str
        The run that produced the folder.
    status : {"ingested", "unchanged", "failed"}
        ``unchanged`` when this manifest was already loaded; ``failed`` for a ``failure.json``.
    n_features : int
        Feature rows written (0 unless ``ingested``).
    """

    slide_id: str | None
    run_id: str
    status: Literal["ingested", "unchanged", "failed"]
    n_features: int = 0


def _timestamp(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise SlideDirError(f"{where}: {value!r} is not an ISO-8601 timestamp") from exc
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts


def _read_features(path: Path):
    """Read and check ``features.parquet``; return a pyarrow table (feature, feature_version, value)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise SlideDirError(f"{path}: unreadable Parquet ({exc}); rerun this slide") from exc
    missing = {"feature", "value", "feature_version"} - set(table.column_names)
    if missing:
        raise SlideDirError(f"{path}: missing columns {sorted(missing)}")
    try:
        feature = table["feature"].cast(pa.string())
        version = table["feature_version"].cast(pa.int32())
        value = table["value"].cast(pa.float64())
    except pa.ArrowException as exc:
        raise SlideDirError(f"{path}: wrong column types ({exc}); expected str, int32, float64") from exc
    names = feature.to_pylist()
    bad = sorted({str(n) for n in names if n is None or not FEATURE_NAME.match(n)})
    if bad:
        raise SlideDirError(f"{path}: invalid feature names {bad[:5]}")
    versions = version.to_pylist()
    if any(v is None or v < 1 for v in versions):
        raise SlideDirError(f"{path}: feature_version must be an integer >= 1")
    keys = list(zip(names, versions))
    if len(set(keys)) != len(keys):
        raise SlideDirError(f"{path}: a feature appears twice with the same feature_version")
    values = value.to_pylist()
    if any(v is not None and math.isinf(v) for v in values):
        raise SlideDirError(f"{path}: infinite feature value; undefined values must be NaN")
    # NaN means "undefined": stored as SQL null so aggregates skip it.
    value = pc.if_else(pc.is_nan(value), pa.scalar(None, pa.float64()), value)
    return pa.table({"feature": feature, "feature_version": version, "value": value})


def _read_qc(folder: Path) -> dict[str, Any]:
    """Read and check ``qc.json`` (measures: name -> number or null; flags: name -> reason)."""
    where = folder / sf.QC_JSON
    qc = sf.read_json(where, ("measures", "flags"))
    measures, flags = qc["measures"], qc["flags"]
    if not isinstance(measures, dict) or not isinstance(flags, dict):
        raise SlideDirError(f"{where}: 'measures' and 'flags' must be objects")
    for name, value in measures.items():
        if not FEATURE_NAME.match(str(name)) or not (
                value is None or (isinstance(value, (int, float)) and math.isfinite(value))):
            raise SlideDirError(f"{where}: measure {name!r} must be a finite number or null")
    for name, reason in flags.items():
        if not FEATURE_NAME.match(str(name)) or not isinstance(reason, str):
            raise SlideDirError(f"{where}: flag {name!r} must have a text reason")
    return qc


def _write_qc(con, slide_id: str, run_id: str, qc: dict[str, Any] | None) -> None:
    """Replace the slide's QC measures and flags of this run (inside the ingest transaction)."""
    for table in ("slide_qc_measures", "slide_flags"):
        con.execute(f"delete from {table} where slide_id = $s and run_id = $r",
                    {"s": slide_id, "r": run_id})
    if qc is None:
        return
    if qc["measures"]:
        con.executemany(
            "insert into slide_qc_measures (slide_id, run_id, measure, value) values (?, ?, ?, ?)",
            [(slide_id, run_id, k, v) for k, v in qc["measures"].items()])
    if qc["flags"]:
        con.executemany(
            "insert into slide_flags (slide_id, run_id, flag, reason) values (?, ?, ?, ?)",
            [(slide_id, run_id, k, v) for k, v in qc["flags"].items()])


def _read_embeddings(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The ``slide_embeddings`` row of a folder whose manifest lists ``embeddings.npy``."""
    import numpy as np

    from immunodig.embeddings import read_embedding_record

    if sf.EMBEDDING_TILES_PARQUET not in manifest["files"]:
        raise SlideDirError(f"{folder / sf.MANIFEST_JSON}: lists {sf.EMBEDDINGS_NPY} without "
                            f"{sf.EMBEDDING_TILES_PARQUET}; rerun this slide")
    record = read_embedding_record(folder)
    npy = folder / sf.EMBEDDINGS_NPY
    try:
        shape = np.load(npy, mmap_mode="r").shape
    except ValueError as exc:
        raise SlideDirError(f"{npy}: not a readable .npy file ({exc}); rerun this slide") from exc
    if shape != (record["n_tiles"], record["dim"]):
        raise SlideDirError(f"{npy}: shape {shape} differs from the recorded {record['n_tiles']} tiles x "
                            f"{record['dim']}; rerun this slide")
    if record["encoder_sha256"] != manifest["model_hashes"].get("encoder"):
        raise SlideDirError(f"{folder}: the embeddings' encoder hash differs from the run's; rerun this slide")
    return {"encoder": record["encoder"], "encoder_sha256": record["encoder_sha256"], "dim": record["dim"],
            "n_tiles": record["n_tiles"], "file": str(npy.resolve()), "sha256": manifest["files"][sf.EMBEDDINGS_NPY]}


def _write_embeddings(con, slide_id: str, run_id: str, row: dict[str, Any] | None) -> None:
    """Replace the slide's embeddings row of this run (inside the ingest transaction)."""
    con.execute("delete from slide_embeddings where slide_id = $s and run_id = $r", {"s": slide_id, "r": run_id})
    if row is not None:
        con.execute(
            """
            insert into slide_embeddings (slide_id, run_id, encoder, encoder_sha256, dim, n_tiles, file, sha256)
            values ($s, $r, $encoder, $encoder_sha256, $dim, $n_tiles, $file, $sha256)
            """,
            {"s": slide_id, "r": run_id, **row})


def _clean_properties(properties: Any, where: Path) -> str:
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise SlideDirError(f"{where}: 'properties' must be an object")
    kept = {
        k: v for k, v in properties.items()
        if not any(word in str(k).lower() for word in _FORBIDDEN_PROPERTY_WORDS)
    }
    return json.dumps(kept, sort_keys=True)


def upsert_run(con, manifest: dict[str, Any], status: str = "done") -> None:
    """Insert a run from a manifest (or widen its time span if known); refuse a conflicting config."""
    row = con.execute(
        "select config_hash from runs where run_id = $run_id", {"run_id": manifest["run_id"]}
    ).fetchall()
    row = row[0] if row else None
    if row is not None and row[0] is not None and row[0] != manifest["config_hash"]:
        raise SlideDirError(
            f"run {manifest['run_id']} is already recorded with a different config_hash; "
            "a run id must identify one configuration"
        )
    where = f"run {manifest['run_id']}"
    con.execute(
        """
        insert into runs (run_id, code_version, config_json, config_hash, model_hashes_json,
                          started_at, finished_at, status)
        values ($run_id, $code_version, $config_json, $config_hash, $model_hashes_json,
                $started_at, $finished_at, $status)
        on conflict (run_id) do update set
            code_version = coalesce(runs.code_version, excluded.code_version),
            config_json = coalesce(runs.config_json, excluded.config_json),
            config_hash = coalesce(runs.config_hash, excluded.config_hash),
            model_hashes_json = coalesce(runs.model_hashes_json, excluded.model_hashes_json),
            started_at = least(runs.started_at, excluded.started_at),
            finished_at = greatest(runs.finished_at, excluded.finished_at)
        """,
        {
            "run_id": manifest["run_id"],
            "code_version": manifest["code_version"],
            "config_json": json.dumps(manifest["config"], sort_keys=True),
            "config_hash": manifest["config_hash"],
            "model_hashes_json": json.dumps(manifest["model_hashes"], sort_keys=True),
            "started_at": _timestamp(manifest["started_at"], where),
            "finished_at": _timestamp(manifest["finished_at"], where),
            "status": status,
        },
    )


def record_failure(
    con,
    *,
    run_id: str,
    reason: str,
    message: str,
    slide_id: str | None = None,
    path: str | Path | None = None,
    slide_key: str | None = None,
) -> None:
    """Upsert a ``failed`` row of ``slide_status`` (caller holds the transaction).

    Parameters
    ----------
    run_id : str
        Run in which the slide failed.
    reason : str
        One of :data:`immunodig.vocab.FAILURE_REASONS`.
    message : str
        What went wrong and what to do (no patient data).
    slide_id, path : str, optional
        At least one; the path is kept only when the slide has no id (failed before fingerprinting).
    slide_key : str, optional
        The row's key when neither is known (a slide without id whose path is not stored).
    """
    if reason not in FAILURE_REASONS:
        raise StoreError(f"failure reason {reason!r} is not one of {FAILURE_REASONS}")
    if slide_id is None and path is None and slide_key is None:
        raise StoreError("record_failure needs a slide_id, a path or a slide_key")
    key = slide_id if slide_id is not None else (str(path) if path is not None else slide_key)
    con.execute(
        """
        insert into slide_status (slide_key, slide_id, path, run_id, status, reason, message)
        values ($key, $slide_id, $path, $run_id, 'failed', $reason, $message)
        on conflict (slide_key, run_id) do update set
            status = 'failed', reason = excluded.reason, message = excluded.message,
            manifest_sha256 = null, updated_at = now()
        """,
        {"key": key, "slide_id": slide_id, "path": None if slide_id or path is None else str(path),
         "run_id": run_id, "reason": reason, "message": message},
    )


def _ingest_failure(con, folder: Path) -> IngestResult:
    failure = sf.read_json(folder / sf.FAILURE_JSON, sf.FAILURE_KEYS)
    if not failure["run_id"]:
        raise SlideDirError(f"{folder / sf.FAILURE_JSON}: run_id is empty")
    con.execute("begin transaction")
    try:
        record_failure(con, run_id=failure["run_id"], reason=failure["reason"],
                       message=str(failure["message"]), slide_id=failure["slide_id"],
                       path=failure["path"])
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return IngestResult(failure["slide_id"], failure["run_id"], "failed")


def ingest_slide_dir(con, path: str | Path) -> IngestResult:
    """Load one per-slide folder into the store in a single transaction.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Read-write connection, not inside a transaction.
    path : str or Path
        ``<work_dir>/<slide_id>/`` with ``manifest.json`` (finished) or ``failure.json`` (failed).

    Returns
    -------
    IngestResult

    Raises
    ------
    SlideDirError
        The folder is unfinished (no manifest and no failure), truncated, or inconsistent; the
        store is unchanged.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise SlideDirError(f"{folder}: not a folder")
    manifest_path = folder / sf.MANIFEST_JSON
    if not manifest_path.is_file():
        if (folder / sf.FAILURE_JSON).is_file():
            return _ingest_failure(con, folder)
        raise SlideDirError(
            f"{folder}: no manifest.json (slide unfinished or interrupted); rerun build-features to complete it"
        )
    manifest = sf.read_json(manifest_path, sf.MANIFEST_KEYS)
    manifest_sha = hashlib.sha256(manifest_path.read_bytes()).hexdigest()
    sf.check_files(folder, manifest)
    slide = sf.read_json(folder / sf.SLIDE_JSON, sf.SLIDE_KEYS)
    if slide["slide_id"] != manifest["slide_id"]:
        raise SlideDirError(f"{folder}: slide.json and manifest.json name different slides")
    features = _read_features(folder / sf.FEATURES_PARQUET)
    qc = _read_qc(folder) if sf.QC_JSON in manifest["files"] else None
    embeddings = _read_embeddings(folder, manifest) if sf.EMBEDDINGS_NPY in manifest["files"] else None
    slide_id, run_id = manifest["slide_id"], manifest["run_id"]

    known = con.execute(
        "select manifest_sha256 from slide_status where slide_key = $s and run_id = $r and status = 'done'",
        {"s": slide_id, "r": run_id},
    ).fetchall()
    if known and known[0][0] == manifest_sha:
        return IngestResult(slide_id, run_id, "unchanged")

    where = f"{manifest_path}"
    con.execute("begin transaction")
    try:
        con.execute(
            """
            insert into slides (slide_id, patient_id, stain, path, mpp_x, mpp_y, mpp_source,
                                width_px, height_px, level_count, vendor, checksum_sha256,
                                properties_json)
            values ($slide_id, $patient_id, $stain, $path, $mpp_x, $mpp_y, $mpp_source, $width_px,
                    $height_px, $level_count, $vendor, $checksum_sha256, $properties_json)
            on conflict (slide_id) do update set
                patient_id = excluded.patient_id, stain = excluded.stain, path = excluded.path,
                mpp_x = excluded.mpp_x, mpp_y = excluded.mpp_y, mpp_source = excluded.mpp_source,
                width_px = excluded.width_px, height_px = excluded.height_px,
                level_count = excluded.level_count, vendor = excluded.vendor,
                checksum_sha256 = excluded.checksum_sha256,
                properties_json = excluded.properties_json, ingested_at = now()
            """,
            {**{k: slide[k] for k in sf.SLIDE_KEYS},
             "path": None if slide["path"] is None else str(slide["path"]),  # --store-paths none
             "properties_json": _clean_properties(slide.get("properties"), folder / sf.SLIDE_JSON)},
        )
        if slide["patient_id"] is not None:
            con.execute(
                "insert into patients (patient_id) values ($p) on conflict do nothing",
                {"p": slide["patient_id"]},
            )
        upsert_run(con, manifest)
        con.execute(
            "delete from slide_features where slide_id = $s and run_id = $r", {"s": slide_id, "r": run_id}
        )
        con.register("_incoming_features", features)
        try:
            con.execute(
                """
                insert into slide_features (slide_id, run_id, feature, feature_version, value)
                select $s, $r, feature, feature_version, value from _incoming_features
                """,
                {"s": slide_id, "r": run_id},
            )
        finally:
            con.unregister("_incoming_features")
        _write_qc(con, slide_id, run_id, qc)
        _write_embeddings(con, slide_id, run_id, embeddings)
        # a failure of this slide's file in the same run, recorded before it had an id, is superseded
        con.execute(
            "delete from slide_status where slide_id is null and path = $p and run_id = $r",
            {"p": None if slide["path"] is None else str(slide["path"]), "r": run_id},
        )
        con.execute(
            """
            insert into slide_status (slide_key, slide_id, run_id, status, started_at, finished_at,
                                      manifest_sha256)
            values ($s, $s, $r, 'done', $started, $finished, $sha)
            on conflict (slide_key, run_id) do update set
                status = 'done', reason = null, message = null, started_at = excluded.started_at,
                finished_at = excluded.finished_at, manifest_sha256 = excluded.manifest_sha256,
                updated_at = now()
            """,
            {"s": slide_id, "r": run_id, "sha": manifest_sha,
             "started": _timestamp(manifest["started_at"], where),
             "finished": _timestamp(manifest["finished_at"], where)},
        )
        con.execute("commit")
    except Exception as exc:
        con.execute("rollback")
        if isinstance(exc, StoreError):
            raise
        raise SlideDirError(f"{folder}: could not be stored ({exc}); the store is unchanged") from exc
    return IngestResult(slide_id, run_id, "ingested", features.num_rows)
