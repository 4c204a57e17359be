"""Where a build stands: done, failed (with reason) and pending slides."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from immunodig import slide_folder as sf


def scan_work_dir(work_dir: str | Path) -> pl.DataFrame:
    """One row per per-slide folder: ``slide_id, state (complete|failed|in_progress), run_id``.

    ``complete`` means a manifest is present (its hashes are checked at ingest); a folder with
    neither manifest nor failure record is a slide whose worker was interrupted.
    """
    rows = []
    for folder in sorted(p for p in Path(work_dir).glob("s_*") if p.is_dir()):
        manifest = sf.read_manifest(folder)
        if manifest is not None:
            rows.append((folder.name, "complete", manifest.get("run_id")))
        elif (folder / sf.FAILURE_JSON).exists():
            rows.append((folder.name, "failed", None))
        else:
            rows.append((folder.name, "in_progress", None))
    return pl.DataFrame(rows, schema={"slide_id": pl.Utf8, "state": pl.Utf8, "run_id": pl.Utf8},
                        orient="row")


def ingest_work_dir(store_path: str | Path, work_dir: str | Path) -> dict[str, int]:
    """Load every finished or failed per-slide folder of ``work_dir`` into the store.

    Used after a Slurm array whose submitting process did not wait, or after an interrupted
    run. A folder whose files no longer match its manifest is recorded as a ``corrupt``
    failure (rebuild it with ``build-features``). Returns counts of folders per state.
    """
    from immunodig.features.catalog import catalog
    from immunodig.store import SlideDirError, Store

    scan = scan_work_dir(work_dir)
    counts = {"complete": 0, "failed": 0, "in_progress": 0, "damaged": 0}
    with Store.open(store_path) as store:
        store.sync_feature_catalog(catalog().values())
        for slide_id, state, run_id in scan.iter_rows():
            if state == "in_progress":
                counts[state] += 1
                continue
            try:
                store.ingest_slide_dir(Path(work_dir) / slide_id)
                counts[state] += 1
            except SlideDirError as exc:  # truncated after its manifest was written
                counts["damaged"] += 1
                store.record_failure(slide_id=slide_id, run_id=run_id or "unknown",
                                     reason="corrupt", message=str(exc))
    return counts


def slide_status(store_path: str | Path, work_dir: str | Path | None = None) -> pl.DataFrame:
    """Latest status of every slide known to the store, plus interrupted folders as pending.

    Columns: ``slide_id, path, status (done|failed|pending), reason, message, run_id,
    updated_at, flags`` (the plausibility flags of the slide's current successful result,
    comma-separated). ``path`` is the slide's file as stored (``slides.path``); a slide that
    failed before it could be fingerprinted has no ``slide_id``, only its ``path``.
    """
    from immunodig.store import query

    stored = query(store_path, """
        with latest as (
            select slide_id, path, status, reason, message, run_id, updated_at
            from slide_status
            qualify row_number() over (partition by slide_key
                                       order by updated_at desc) = 1
        )
        select l.slide_id, coalesce(l.path, s.path) as path, l.status, l.reason, l.message,
               l.run_id, l.updated_at, coalesce(q.flags, '') as flags
        from latest l
        left join slides s on s.slide_id = l.slide_id
        left join slide_qc q on q.slide_id = l.slide_id
        order by l.status, l.slide_id""")
    if work_dir is None or not Path(work_dir).is_dir():
        return stored
    pending = scan_work_dir(work_dir).filter(pl.col("state") == "in_progress")
    if pending.height == 0:
        return stored
    extra = pending.select(
        "slide_id", pl.lit(None, pl.Utf8).alias("path"), pl.lit("pending").alias("status"),
        pl.lit(None, pl.Utf8).alias("reason"), pl.lit(None, pl.Utf8).alias("message"),
        pl.lit(None, pl.Utf8).alias("run_id"),
        pl.lit(None).cast(stored.schema["updated_at"]).alias("updated_at"),
        pl.lit("").alias("flags"),
    )
    return pl.concat([stored, extra.cast(stored.schema)], how="vertical")
