"""MIL attention from the store: per-slide maps, and the report's view of what a MIL run looks at.

Attention rows (``mil_attention``) are the out-of-fold weights of a MIL evaluation (first CV
repeat): each patient's weights come from a model that never saw the patient. A weight is shown
relative to uniform (weight x tiles in the patient's bag), so 1 is an average tile of that bag.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from immunodig import slide_folder as sf
from immunodig.errors import SectionUnavailable, SlideArtefactError
from immunodig.report.figures import new_figure, png_data_uri
from immunodig.report.sections import FigureItem, Section, TableItem
from immunodig.store import query

#: Tiles shown per predicted group in the report.
TOP_TILES = 8

_WITH_BAG_SIZE = """
select a.*, count(*) over (partition by a.model_run_id, a.patient_id) as bag_tiles
from mil_attention a where a.model_run_id = $run
"""


def has_attention(store: str | Path) -> bool:
    """Whether the store holds a MIL evaluation with attention (the report then shows it)."""
    return query(store, "select count(*) from mil_attention").item() > 0


def latest_attention_run(store: str | Path) -> str:
    """The most recent MIL evaluation that wrote attention (raises when there is none)."""
    runs = query(store, "select r.model_run_id from model_runs r where r.kind = 'evaluate' and exists "
                        "(select 1 from mil_attention a where a.model_run_id = r.model_run_id) "
                        "order by r.created_at desc, r.model_run_id limit 1")
    if runs.height == 0:
        raise SectionUnavailable("no MIL evaluation with attention in the store "
                                 "(evaluate --model abmil|transmil|meanpool|maxpool --store ...)")
    return runs.item()


def slide_attention(store: str | Path, slide_id: str, run_id: str | None = None) -> pl.DataFrame:
    """``mil_attention`` rows of one slide with ``bag_tiles`` (tiles in the patient's bag)."""
    run_id = run_id or latest_attention_run(store)
    rows = query(store, f"select * from ({_WITH_BAG_SIZE}) where slide_id = $slide",
                 {"run": run_id, "slide": slide_id})
    if rows.height == 0:
        raise SlideArtefactError(f"slide {slide_id}: no attention in MIL run {run_id}")
    return rows


def attention_measurements(rows: pl.DataFrame) -> pl.DataFrame:
    """Per-tile GeoJSON measurements of :func:`slide_attention` rows: ``col, row`` and
    ``MIL attention`` (the weight) and ``MIL attention (relative)`` (x tiles in the bag)."""
    return rows.select("col", "row", pl.col("attention").alias("MIL attention"),
                       (pl.col("attention") * pl.col("bag_tiles")).alias("MIL attention (relative)"))


def _predicted_groups(store: str | Path, run_id: str) -> pl.DataFrame:
    """Per patient: out-of-fold prediction of the first repeat and whether it lies above the
    cut of its training fold (``high``: predicted resistant / high risk)."""
    return query(store, "select patient_id, prediction, prediction > train_cut as high "
                        "from oof_predictions where model_run_id = $run and \"repeat\" = 0", {"run": run_id})


def attention_by_class(store: str | Path, run_id: str) -> pl.DataFrame:
    """Mean relative attention and share of tiles per tissue class, by predicted group."""
    rows = query(store, _WITH_BAG_SIZE, {"run": run_id}).join(_predicted_groups(store, run_id),
                                                              on="patient_id")
    rows = rows.with_columns((pl.col("attention") * pl.col("bag_tiles")).alias("relative"))
    return (rows.group_by("high", "tissue_class")
            .agg(pl.len().alias("tiles"), pl.col("relative").mean().alias("mean_relative_attention"),
                 pl.col("attention").sum().alias("attention_mass"))
            .with_columns((pl.col("attention_mass") / pl.col("attention_mass").sum().over("high"))
                          .alias("share_of_attention"))
            .sort("high", "mean_relative_attention", descending=[True, True]))


def top_tiles(store: str | Path, run_id: str, k: int = TOP_TILES) -> pl.DataFrame:
    """The ``k`` most attended tiles (relative to their bag) in each predicted group, with
    the slide file they come from."""
    rows = query(store, _WITH_BAG_SIZE, {"run": run_id}).join(_predicted_groups(store, run_id),
                                                              on="patient_id")
    rows = rows.with_columns((pl.col("attention") * pl.col("bag_tiles")).alias("relative"))
    base = Path(store).resolve().parent  # a relative path (--store-paths relative) is from here
    paths = query(store, "select slide_id, path from slides").with_columns(
        pl.col("path").map_elements(lambda p: str(sf.resolve_slide_path(p, base)), return_dtype=pl.Utf8))
    return (rows.sort("relative", descending=True).group_by("high", maintain_order=True).head(k)
            .join(paths, on="slide_id", how="left"))


def _tile_image(path: str | None, x_um: float, y_um: float, tile_um: float) -> np.ndarray | None:
    from immunodig.errors import SlideError
    from immunodig.slides import Slide

    if path is None or not Path(path).is_file():
        return None
    try:
        with Slide(path) as slide:
            return slide.read_um(x_um, y_um, (128, 128), tile_um / 128)
    except SlideError:
        return None


def _tile_figure(tiles: pl.DataFrame, title: str):
    n = max(tiles.height, 1)
    fig = new_figure((1.6 * n, 2.1))
    for i, row in enumerate(tiles.iter_rows(named=True)):
        ax = fig.add_subplot(1, n, i + 1)
        img = _tile_image(row["path"], row["x_um"], row["y_um"], row["tile_um"])
        if img is None:
            ax.text(0.5, 0.5, "slide file\nnot available", ha="center", va="center", fontsize=7)
        else:
            ax.imshow(img)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{row['tissue_class'] or '?'} x{row['relative']:.1f}\n{row['patient_id']}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def attention_section(store: str | Path) -> Section:
    """What the latest MIL run attends to: attention by tissue class and the top tiles of the
    patients predicted resistant / high-risk and of the others."""
    run_id = latest_attention_run(store)
    model = query(store, "select model from model_runs where model_run_id = $r", {"r": run_id}).item()
    sec = Section("attention", "What the MIL model looks at (attention)",
                  f"{model} run {run_id}: out-of-fold attention of the first CV repeat (each patient "
                  "scored by a model that never saw it). Relative attention 1 = an average tile of "
                  "the patient's bag. Attention shows where the model looks, not why; it is "
                  "descriptive, not evidence of performance.")
    by_class = attention_by_class(store, run_id).with_columns(
        pl.when(pl.col("high")).then(pl.lit("predicted high")).otherwise(pl.lit("predicted low"))
        .alias("group")).select("group", "tissue_class", "tiles", "mean_relative_attention",
                                "share_of_attention")
    sec.tables.append(TableItem(
        "Attention by tissue class and predicted group (share: of the group's attention)",
        ["group", "tissue class", "tiles", "mean relative attention", "share of attention"],
        [[g, c or "unclassified", str(n), f"{m:.2f}", f"{sh:.1%}"] for g, c, n, m, sh in by_class.iter_rows()]))
    tops = top_tiles(store, run_id)
    for high, label in ((True, "predicted resistant / high risk"), (False, "predicted responder / low risk")):
        group = tops.filter(pl.col("high") == high)
        if group.height:
            sec.figures.append(FigureItem(png_data_uri(_tile_figure(group, f"Most attended tiles: {label}")),
                                          f"Top {group.height} tiles: {label}", "attention_tiles"))
    return sec
