"""Report section with the slide gallery: thumbnail, tissue classes and TIL density per slide."""

from __future__ import annotations

from pathlib import Path

from immunodig.errors import ImmunodigError, SectionUnavailable
from immunodig.report.figures import new_figure, png_data_uri
from immunodig.report.overlays import plot_class_overlay, plot_til_density
from immunodig.report.sections import FigureItem, Section
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
select s.slide_id, s.stain
from slides s join latest l on l.slide_id = s.slide_id
where l.status = 'done'
order by case when s.stain = 'HE' then 0 else 1 end, s.slide_id
"""


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


def gallery_section(store: Path, work_dir: Path | None = None,
                    max_slides: int = MAX_GALLERY) -> Section:
    """Thumbnails with class and TIL-density overlays of processed slides (H&E first)."""
    from immunodig.slide_folder import default_work_dir
    from immunodig.store import query

    slides = query(store, _DONE_SLIDES_SQL).to_pandas()
    if slides.empty:
        raise SectionUnavailable("no processed slide in the store")
    work = Path(work_dir) if work_dir else default_work_dir(store)
    if not work.is_dir():
        raise SectionUnavailable(f"per-slide folder {work} not found; pass --work-dir where "
                                 "build-features wrote the slides")
    sec = Section("gallery", "Slide gallery",
                  f"{min(len(slides), max_slides)} of {len(slides)} processed slides. Left: "
                  "thumbnail; middle: predicted tissue class per tile; right: lymphocytes per "
                  "mm² of tissue per tile. `python cli.py show SLIDE_ID` writes full-size "
                  "overlays (also tissue mask and QC exclusions).")
    sec.figures.append(FigureItem(legend_figure(), "tissue-class colours", "legend"))
    for slide in slides.head(max_slides).itertuples():
        folder = work / slide.slide_id
        try:
            art = load_slide_artefacts(folder, nuclei_columns=["x_px", "y_px", "cell_class"])
        except ImmunodigError as exc:
            sec.notes.append(f"{slide.slide_id}: not available: {exc}")
            continue
        thumb = read_thumbnail(art, GALLERY_THUMB_PX)
        fig = new_figure((11.0, 3.6))
        ax = fig.add_subplot(1, 3, 1)
        ax.imshow(thumb if thumb is not None else [[[235, 235, 235]]],
                  extent=(0, art.size_px[0], art.size_px[1], 0))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{slide.slide_id} ({slide.stain})", fontsize=9)
        notes = []
        for i, plotter in ((2, plot_class_overlay), (3, plot_til_density)):
            panel = fig.add_subplot(1, 3, i)
            try:
                if plotter is plot_class_overlay:
                    plotter(art, thumb, ax=panel, legend=False)
                else:
                    plotter(art, thumb, ax=panel)
            except ImmunodigError as exc:
                panel.axis("off")
                panel.text(0.5, 0.5, "not available", ha="center", va="center", fontsize=9)
                notes.append(str(exc))
        caption = slide.slide_id + (f" (not available: {'; '.join(notes)})" if notes else "")
        sec.figures.append(FigureItem(png_data_uri(fig, dpi=80, fmt="jpeg"), caption, slide.slide_id))
    return sec
