"""The self-contained HTML report: every section from the store, rendered with Jinja2.

Figures are inlined as base64 PNG data URIs and styles are inline, so the single file opens on
an offline PC: no external URL, script, font or stylesheet. A section whose data is absent (or
that fails) shows "not available: <why>" and the others are still drawn.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from immunodig.errors import ImmunodigError
from immunodig.report.sections import Section

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class ReportInfo:
    """What :func:`build_report` wrote.

    Attributes
    ----------
    path : Path
    size_bytes : int
    seconds : float
        Time to build and write.
    unavailable : dict
        Section id -> reason, for every section shown as not available.
    """

    path: Path
    size_bytes: int
    seconds: float
    unavailable: dict[str, str]


def _guarded(section_id: str, title: str, build: Callable[[], Section]) -> Section:
    """Run a section builder; turn a known absence or any failure into a clear placeholder."""
    try:
        return build()
    except ImmunodigError as exc:
        why = str(exc)
    except Exception as exc:  # one broken section must not cost the whole report
        log.exception("report section %s failed", section_id)
        why = f"error while drawing this section ({type(exc).__name__}); see the log"
    return Section(section_id, title, unavailable=why)


def report_sections(store: Path, work_dir: Path | None = None,
                    max_gallery: int | None = None) -> list[Section]:
    """Build every section of the report, in display order."""
    from immunodig.report import attention as A
    from immunodig.report import cohort_sections as C
    from immunodig.report import model_sections as M
    from immunodig.report import qc_sections as Q
    from immunodig.report import slide_sections as S

    gallery_n = S.MAX_GALLERY if max_gallery is None else max_gallery
    plan: list[tuple[str, str, Callable[[], Section]]] = [
        ("flow", "Cohort flow", lambda: C.flow_section(store)),
        ("qc", "Slide quality control", lambda: Q.qc_section(store, work_dir)),
        ("cohort", "Patient characteristics by outcome", lambda: C.cohort_table_section(store)),
        ("distributions", "Feature distributions by resistance status",
         lambda: C.distributions_section(store)),
        ("performance", "Discrimination and calibration (resistance)",
         lambda: M.performance_section(store)),
        ("risk_groups", "Kaplan-Meier curves of predicted risk groups",
         lambda: M.risk_group_section(store)),
        ("explanations", "What the fitted models use (SHAP, hazard ratios)",
         lambda: M.explanation_section(store)),
        ("comparison", "Feature-set comparison", lambda: M.comparison_section(store)),
        ("provenance", "Run provenance", lambda: M.provenance_section(store)),
        ("gallery", "Slide gallery", lambda: S.gallery_section(store, work_dir, gallery_n)),
        ("qc_pages", "Per-slide quality control", lambda: Q.qc_pages_section(store)),
    ]
    if A.has_attention(store):  # only stores with a MIL evaluation (evaluate --model abmil ...)
        plan.insert(-3, ("attention", "What the MIL model looks at (attention)", lambda: A.attention_section(store)))
    return [_guarded(sid, title, build) for sid, title, build in plan]


def render_html(sections: list[Section], title: str) -> str:
    """Render sections with the packaged Jinja2 template (autoescaped)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("immunodig.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    from immunodig import __version__

    return env.get_template(TEMPLATE).render(title=title, sections=sections, generated_at=now,
                                             version=__version__)


def build_report(store_path: str | Path, out_path: str | Path, work_dir: str | Path | None = None,
                 max_gallery: int | None = None, title: str | None = None) -> ReportInfo:
    """Write the HTML report of a store.

    Parameters
    ----------
    store_path : path
        The ``.duckdb`` store (opened read-only).
    out_path : path
        Destination ``.html`` (written atomically).
    work_dir : path, optional
        Per-slide folders (default: ``<store stem>_slides`` beside the store).
    max_gallery : int, optional
        Slides in the gallery (default :data:`immunodig.report.slide_sections.MAX_GALLERY`).
    title : str, optional

    Returns
    -------
    ReportInfo
    """
    from immunodig.errors import StoreError
    from immunodig.io import atomic_path

    store = Path(store_path)
    if not store.is_file():
        raise StoreError(f"store {store} not found; build it with build-features or demo")
    t0 = time.monotonic()
    sections = report_sections(store, Path(work_dir) if work_dir else None, max_gallery)
    html = render_html(sections, title or f"immunodig report: {store.name}")
    out = Path(out_path)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return ReportInfo(out, out.stat().st_size, time.monotonic() - t0,
                      {s.id: s.unavailable for s in sections if s.unavailable})
