"""Report section with the slide gallery: every stain sampled, labelled by stain, patient
pseudonym and key numbers, density overlays on colour scales shared by all slides."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from immunodig.errors import ImmunodigError, SectionUnavailable
from immunodig.report.figures import new_figure, no_data, png_data_uri
from immunodig.report.overlays import plot_class_overlay, plot_til_density
from immunodig.report.sections import FigureItem, Link, Section
from immunodig.report.slide_artefacts import load_slide_artefacts, read_thumbnail
from immunodig.vocab import KATHER_CLASSES, KATHER_COLOURS, KATHER_NAMES

#: Slides shown in the gallery at most.
MAX_GALLERY = 24
#: Longest side of gallery thumbnails in pixels.
GALLERY_THUMB_PX = 500

_DONE_SLIDES_SQL = """
with latest as (
    select slide_id, status from slide_status where slide_id is not null
    qualify row_number() over (partition by slide_id
                               order by finished_at desc nulls last, updated_at desc,
                                        run_id desc) = 1
)
select s.slide_id, coalesce(s.stain, 'HE') as stain, s.patient_id
from slides s join latest l on l.slide_id = s.slide_id
where l.status = 'done'
order by case when s.stain = 'HE' then 0 else 1 end, s.stain, s.slide_id
"""
#: Features printed under each gallery slide, by stain (``{marker}`` = lower-case stain).
KEY_NUMBERS: dict[str, tuple[tuple[str, str], ...]] = {
    "HE": (("prop_tumour", "tumour {:.0%}"),
           ("til_density_intraepithelial_per_mm2", "iTIL {:.0f}/mm²"),
           ("tls_count", "TLS {:.0f}")),
    "IHC": (("{marker}_density_tumour_region_per_mm2", "{stain}+ tumour {:.0f}/mm²"),
            ("{marker}_density_margin_per_mm2", "{stain}+ margin {:.0f}/mm²")),
}


def sample_by_stain(slides, max_slides: int):
    """Up to ``max_slides`` rows, taking the stains in turn (H&E first) so every stain shows."""
    groups = [g for _, g in slides.groupby("stain", sort=False)]
    picked, i = [], 0
    while len(picked) < min(max_slides, len(slides)):
        for g in groups:
            if i < len(g) and len(picked) < max_slides:
                picked.append(g.iloc[i])
        i += 1
    return picked


def key_numbers(stain: str, values: dict[str, float]) -> str:
    """The slide's key numbers as a short label ("n/a" where a feature is undefined)."""
    import math

    parts = []
    for name, fmt in KEY_NUMBERS["HE" if stain == "HE" else "IHC"]:
        name = name.format(marker=stain.lower())
        v = values.get(name)
        label = fmt.replace("{stain}", stain)
        parts.append(label.format(v) if v is not None and math.isfinite(v)
                     else label.split(" {")[0] + " n/a")
    return ", ".join(parts)


def legend_figure() -> str:
    """A data URI of the Kather colour legend (fixed colours of immunodig.vocab)."""
    from matplotlib.patches import Patch

    fig = new_figure((9.0, 0.9))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.legend(handles=[Patch(facecolor=KATHER_COLOURS[c], edgecolor="black", linewidth=0.3,
                             label=f"{c} {KATHER_NAMES[c]}") for c in KATHER_CLASSES],
              loc="center", ncol=3, fontsize=8, frameon=False)
    return png_data_uri(fig, dpi=80)


def slide_figures(store: Path, work: Path, picked, qc_panel: bool = False,
                  pages: frozenset[str] = frozenset()) -> tuple[list[FigureItem], list[str]]:
    """One figure per slide of ``picked`` (rows with ``slide_id, stain, patient_id``), density
    panels on colour scales shared by all of them.

    Each figure: the thumbnail labelled by slide id, stain, patient pseudonym and key numbers
    (and the QC flags of rows that have ``flags``); H&E: tissue classes and TIL density; IHC:
    positive cells per mm² and the registration onto the H&E slide; with ``qc_panel`` also the
    tiles excluded by QC. Slides in ``pages`` get a link to their QC page.

    Returns
    -------
    figures : list of FigureItem
    notes : list of str
        Slides whose folder could not be read.
    """
    from immunodig.report.overlays import (
        density_vmax,
        plot_positive_density,
        plot_qc_excluded,
        plot_registration,
        positive_grid,
        til_grid,
    )
    from immunodig.report.qc_sections import qc_page_id
    from immunodig.store import query

    feats = query(store, "select slide_id, feature, value from slide_features_current "
                         "where slide_id in (select unnest($ids))",
                  {"ids": [r.slide_id for r in picked]}).to_pandas()
    values = {sid: dict(zip(g["feature"], g["value"])) for sid, g in feats.groupby("slide_id")}
    notes: list[str] = []
    arts, grids = [], {"HE": [], "IHC": []}
    for slide in picked:
        try:
            art = load_slide_artefacts(work / slide.slide_id,
                                       nuclei_columns=["x_px", "y_px", "cell_class"],
                                       store_dir=Path(store).resolve().parent)
        except ImmunodigError as exc:
            notes.append(f"{slide.slide_id}: not available: {exc}")
            continue
        arts.append((slide, art))
        try:
            kind = "HE" if art.stain == "HE" else "IHC"
            grids[kind].append((til_grid if kind == "HE" else positive_grid)(art)[1])
        except ImmunodigError:
            pass
    vmax = {k: density_vmax(np.concatenate([g.ravel() for g in v])) if v else None
            for k, v in grids.items()}
    figures = []
    n_panels = 4 if qc_panel else 3
    for slide, art in arts:
        he = art.stain == "HE"
        thumb = read_thumbnail(art, GALLERY_THUMB_PX)
        fig = new_figure((3.7 * n_panels, 3.6))
        ax = fig.add_subplot(1, n_panels, 1)
        ax.imshow(thumb if thumb is not None else [[[235, 235, 235]]],
                  extent=(0, art.size_px[0], art.size_px[1], 0))
        ax.set_xticks([])
        ax.set_yticks([])
        flags = str(slide.get("flags") or "")  # rows are pandas Series: not ``slide.flags``
        label = (f"{slide.slide_id} · {art.stain} · patient {slide.patient_id or '-'}\n"
                 f"{key_numbers(art.stain, values.get(slide.slide_id, {}))}"
                 + (f"\nflags: {flags}" if flags else ""))
        ax.set_title(label, fontsize=8)
        panels = [(plot_class_overlay, {"legend": False}),
                  (plot_til_density, {"vmax": vmax["HE"]})] if he else \
                 [(plot_positive_density, {"vmax": vmax["IHC"]}), (plot_registration, {})]
        if qc_panel:
            panels.append((plot_qc_excluded, {}))
        missing = []
        for i, (plotter, options) in enumerate(panels, start=2):
            panel = fig.add_subplot(1, n_panels, i)
            try:
                plotter(art, thumb, ax=panel, **options)
            except ImmunodigError as exc:
                no_data(panel, "no data")
                missing.append(str(exc))
        caption = f"{slide.slide_id} ({art.stain}, patient {slide.patient_id or '-'})" + (
            f" (not available: {'; '.join(missing)})" if missing else "") + (
            "" if thumb is not None else " (no thumbnail: slide file not available)")
        link = Link("QC page", f"#{qc_page_id(slide.slide_id)}") if slide.slide_id in pages else None
        figures.append(FigureItem(png_data_uri(fig, dpi=80, fmt="jpeg"), caption, slide.slide_id, link))
    return figures, notes


def slides_with_qc(store: Path) -> frozenset[str]:
    """Slides that have a QC page in the report (a row of ``slide_qc``)."""
    from immunodig.store import query

    return frozenset(query(store, "select slide_id from slide_qc")["slide_id"].to_list())


def gallery_section(store: Path, work_dir: Path | None = None,
                    max_slides: int = MAX_GALLERY) -> Section:
    """Thumbnails with overlays of processed slides of every stain, on shared colour scales.

    H&E: tissue classes and TIL density; IHC: positive-cell density and the registration onto the
    H&E slide. Each density scale is shared by all slides of the gallery (99th percentile of the
    pooled tile densities), so colours compare across slides.
    """
    from immunodig.slide_folder import default_work_dir
    from immunodig.store import query

    slides = query(store, _DONE_SLIDES_SQL).to_pandas()
    if slides.empty:
        raise SectionUnavailable("no processed slide in the store")
    work = Path(work_dir) if work_dir else default_work_dir(store)
    if not work.is_dir():
        raise SectionUnavailable(f"per-slide folder {work} not found; pass --work-dir where "
                                 "build-features wrote the slides")
    picked = sample_by_stain(slides, max_slides)
    stains = sorted(set(slides["stain"]))
    sec = Section("gallery", "Slide gallery",
                  f"{len(picked)} of {len(slides)} processed slides, every stain sampled "
                  f"({', '.join(stains)}). H&E: thumbnail, predicted tissue class per tile, "
                  "lymphocytes per mm² of tissue per tile; IHC: thumbnail, positive cells per mm² "
                  "per tile, tissue outline registered onto the H&E slide. Density colour scales "
                  "are the same for every slide of the gallery. `python cli.py show SLIDE` writes "
                  "full-size overlays (also compartments, tissue mask and QC exclusions).")
    sec.figures.append(FigureItem(legend_figure(), "tissue-class colours", "legend"))
    figures, sec.notes = slide_figures(store, work, picked, pages=slides_with_qc(store))
    sec.figures.extend(figures)
    return sec
