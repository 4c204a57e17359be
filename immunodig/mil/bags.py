"""Patient bags from the store: every tile embedding of a patient's H&E slides, one encoder.

A bag is read from the ``slide_embeddings_current`` view (the slides' current runs) for a single
``encoder_sha256``: embeddings of different encoders never share a bag. Each file is checked
against the SHA-256 the store recorded, so a bag is never built from a file changed since ingest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from immunodig.errors import ConfigError, SlideArtefactError, ValidationError
from immunodig.provenance import file_sha256


@dataclass
class PatientBags:
    """Bags of tile embeddings, one per patient, in ``patient_ids`` order.

    Attributes
    ----------
    patient_ids : array of str
    bags : list of float32 arrays (n_tiles, dim)
    tiles : list of polars.DataFrame
        Per bag, one row per embedding: ``slide_id, col, row, x_um, y_um, tile_um,
        tissue_class``.
    encoder, encoder_sha256 : str
    files_sha256 : list of str
        SHA-256 of every embedding file used (sorted), the bags' fingerprint.
    """

    patient_ids: np.ndarray
    bags: list[np.ndarray]
    tiles: list[pl.DataFrame]
    encoder: str
    encoder_sha256: str
    files_sha256: list[str]

    def subset(self, patient_ids) -> "PatientBags":
        """The bags of ``patient_ids``, in that order (each must have a bag)."""
        where = {p: i for i, p in enumerate(self.patient_ids)}
        missing = [p for p in patient_ids if p not in where]
        if missing:
            raise ValidationError("patient bags", [{
                "row": None, "column": "patient_id",
                "check": f"{len(missing)} patient(s) without tile embeddings, e.g. {missing[0]!r}"}])
        idx = [where[p] for p in patient_ids]
        return PatientBags(np.asarray(patient_ids, dtype=str), [self.bags[i] for i in idx],
                           [self.tiles[i] for i in idx], self.encoder, self.encoder_sha256,
                           self.files_sha256)


def _embedding_rows(store, encoder_sha256: str | None) -> pl.DataFrame:
    rows = store.query(
        "select patient_id, slide_id, encoder, encoder_sha256, dim, file, sha256 "
        "from slide_embeddings_current where stain = 'HE' and patient_id is not null "
        "order by patient_id, slide_id")
    if rows.height == 0:
        raise ConfigError("the store holds no tile embeddings of H&E slides with a patient: "
                          "run build-features with --embeddings (and a --manifest naming patients)")
    encoders = rows.select("encoder", "encoder_sha256").unique().sort("encoder")
    if encoder_sha256 is None:
        if encoders.height > 1:
            listed = ", ".join(f"{e} ({h[:12]})" for e, h in encoders.iter_rows())
            raise ConfigError(f"the store holds embeddings of {encoders.height} encoders ({listed}); "
                              "choose one with --encoder-sha256")
        encoder_sha256 = encoders["encoder_sha256"][0]
    chosen = rows.filter(pl.col("encoder_sha256").str.starts_with(encoder_sha256))
    if chosen.select("encoder_sha256").n_unique() != 1:
        raise ConfigError(f"--encoder-sha256 {encoder_sha256!r} matches "
                          f"{chosen.select('encoder_sha256').n_unique()} encoders of the store")
    return chosen


def store_bags(store_path: str | Path, encoder_sha256: str | None = None) -> PatientBags:
    """Read one bag per patient from the store.

    Parameters
    ----------
    store_path : str or Path
        The DuckDB store.
    encoder_sha256 : str, optional
        The encoder (its full hash or a unique prefix); needed when the store holds several.

    Raises
    ------
    ConfigError
        No embeddings, or an ambiguous / unknown encoder.
    SlideArtefactError
        An embedding file is missing or differs from the one ingested.
    """
    from immunodig.embeddings import read_slide_embeddings
    from immunodig.store import Store

    with Store.open(store_path, read_only=True) as store:
        rows = _embedding_rows(store, encoder_sha256)
    patients, bags, tiles = [], [], []
    for (patient,), group in rows.group_by("patient_id", maintain_order=True):
        vectors, frames = [], []
        for slide_id, path, sha in group.select("slide_id", "file", "sha256").iter_rows():
            if not Path(path).is_file():
                raise SlideArtefactError(f"slide {slide_id}: embedding file {path} is missing; rerun "
                                         "build-features --embeddings")
            if file_sha256(path) != sha:
                raise SlideArtefactError(f"slide {slide_id}: {path} changed since it was ingested "
                                         "(SHA-256 differs); rerun build-features --embeddings")
            frame, emb = read_slide_embeddings(Path(path).parent)
            vectors.append(emb)
            frames.append(frame.with_columns(pl.lit(slide_id).alias("slide_id")))
        patients.append(str(patient))
        bags.append(np.concatenate(vectors).astype(np.float32))
        tiles.append(pl.concat(frames).select("slide_id", "col", "row", "x_um", "y_um", "tile_um",
                                              "tissue_class"))
    return PatientBags(np.asarray(patients, dtype=str), bags, tiles, rows["encoder"][0],
                       rows["encoder_sha256"][0], sorted(rows["sha256"].to_list()))
