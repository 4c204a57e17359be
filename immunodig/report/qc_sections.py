"""Report sections about slide quality control: the flagged slides (a table and a gallery that
samples every stain) and one QC page per slide with every measure and flag of its current run.

The measures and flags are those of :mod:`immunodig.pipeline.slide_qc`, read from the store
(``slide_qc_measures``, ``slide_flags``, view ``slide_qc``). Patient pseudonyms appear here
because these are the slides someone has to look at.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from immunodig.errors import SectionUnavailable
from immunodig.report.sections import FigureItem, Link, Section, TableItem

#: Measures of ``slide_qc`` shown beside each flagged slide.
QC_MEASURES: tuple[str, ...] = ("tissue_area_mm2", "fraction_tiles_excluded", "nuclei_per_mm2",
                                "lymphocyte_fraction", "positive_cells_per_mm2",
                                "registration_overlap_dice")
#: Flagged slides drawn in the QC section's gallery at most.
MAX_FLAGGED_GALLERY = 12

_REASONS_SQL = """
select f.slide_id, f.flag, f.reason from slide_flags f
join slide_qc q on q.slide_id = f.slide_id and q.run_id = f.run_id
order by f.slide_id, f.flag
"""


def qc_page_id(slide_id: str) -> str:
    """Element id of a slide's QC page in the report."""
    return f"qc-{slide_id}"


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3g}"


def _slide_qc(store: Path) -> pd.DataFrame:
    from immunodig.store import query

    qc = query(store, "select * from slide_qc order by n_flags desc, slide_id").to_pandas()
    if qc.empty:
        raise SectionUnavailable("no slide QC stored yet (build-features writes qc.json)")
    qc["stain"] = qc["stain"].fillna("HE")
    return qc


def qc_section(store: Path, work_dir: Path | None = None,
               max_slides: int = MAX_FLAGGED_GALLERY) -> Section:
    """Slides with plausibility flags (view ``slide_qc``), the reason of each flag (``slide_flags``
    of the slide's current run) and a gallery of flagged slides, every stain sampled.

    Every slide id links to its QC page (:func:`qc_pages_section`).
    """
    from immunodig.report.slide_sections import legend_figure, sample_by_stain, slide_figures
    from immunodig.slide_folder import default_work_dir
    from immunodig.store import query

    qc = _slide_qc(store)
    reasons = query(store, _REASONS_SQL).to_pandas()
    flagged = qc[qc["n_flags"] > 0]
    sec = Section("qc", "Slide quality control",
                  f"{len(flagged)} of {len(qc)} slides raise a plausibility flag (rules in "
                  "docs/architecture.md). Check them with `python cli.py show SLIDE` before "
                  "trusting their features; every slide's measures and flags are on its QC page "
                  "(section Per-slide quality control).")
    measures = [m for m in QC_MEASURES if m in qc.columns]
    rows = [[Link(r.slide_id, f"#{qc_page_id(r.slide_id)}"), str(r.stain), str(r.patient_id or "-"),
             str(r.flags), str(r.n_flags), *[_fmt(getattr(r, m)) for m in measures]]
            for r in flagged.itertuples()]
    sec.tables.append(TableItem("flagged slides",
                                ["slide_id", "stain", "patient_id", "flags", "n_flags", *measures],
                                rows))
    if not reasons.empty:
        sec.tables.append(TableItem("flag reasons", ["slide_id", "flag", "reason"],
                                    [[Link(s, f"#{qc_page_id(s)}"), str(f), str(why)]
                                     for s, f, why in reasons.itertuples(index=False)]))
    if flagged.empty:
        sec.notes.append("No slide raises a flag.")
        return sec
    work = Path(work_dir) if work_dir else default_work_dir(store)
    if not work.is_dir():
        sec.notes.append(f"Flagged-slides gallery not available: per-slide folder {work} not "
                         "found; pass --work-dir where build-features wrote the slides.")
        return sec
    picked = sample_by_stain(flagged, max_slides)
    stains = sorted(set(flagged["stain"]))
    sec.notes.append(f"Flagged-slides gallery: {len(picked)} of {len(flagged)} flagged slides, every "
                     f"stain sampled ({', '.join(stains)}); label: slide, stain, patient, key "
                     "numbers and flags; panels as in the slide gallery plus the tiles excluded by "
                     "QC; density colour scales shared by the slides of this gallery.")
    figures, notes = slide_figures(store, work, picked, qc_panel=True,
                                   pages=frozenset(qc["slide_id"]))
    sec.figures.append(FigureItem(legend_figure(), "tissue-class colours", "legend"))
    sec.figures.extend(figures)
    sec.notes.extend(notes)
    return sec


def qc_pages_section(store: Path) -> Section:
    """One page per slide of ``slide_qc`` (flagged slides first): its run, microns per pixel
    and their source, every QC measure of the current run and every flag with its reason."""
    from immunodig.store import query

    qc = _slide_qc(store)
    measures = query(store, """
        select m.slide_id, m.measure, m.value from slide_qc_measures m
        join slide_qc q on q.slide_id = m.slide_id and q.run_id = m.run_id
        order by m.slide_id, m.measure""").to_pandas()
    reasons = query(store, _REASONS_SQL).to_pandas()
    by_slide = dict(tuple(measures.groupby("slide_id")))
    flags_of = dict(tuple(reasons.groupby("slide_id")))
    sec = Section("qc_pages", "Per-slide quality control",
                  f"{len(qc)} slides: every QC measure of the slide's current run and every "
                  "plausibility flag with its reason (docs/architecture.md lists the measures and "
                  "rules). Flagged slides first.")
    back = Link("back to slide quality control", "#qc")
    for r in qc.itertuples():
        page = Section(qc_page_id(r.slide_id),
                       f"{r.slide_id} · {r.stain} · patient {r.patient_id or '-'}"
                       + (f" · flags: {r.flags}" if r.n_flags else " · no flag"))
        page.tables.append(TableItem("slide", ["item", "value"], [
            ["run", str(r.run_id)], ["microns per pixel", f"{_fmt(r.mpp)} ({r.mpp_source or '-'})"],
            ["flags", str(r.n_flags)]]))
        m = by_slide.get(r.slide_id)
        if m is not None:
            page.tables.append(TableItem("QC measures", ["measure", "value"],
                                         [[str(k), _fmt(v)] for k, v in zip(m["measure"], m["value"])]))
        f = flags_of.get(r.slide_id)
        if f is not None:
            page.tables.append(TableItem("flags", ["flag", "reason"],
                                         f[["flag", "reason"]].astype(str).to_numpy().tolist()))
        page.notes.append(f"Overlays: python cli.py show {r.slide_id} --store {Path(store).name}")
        page.notes.append(back)
        sec.pages.append(page)
    return sec
