"""The pieces a report section is made of, independent of any template."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Link:
    """A table cell or caption that links inside the report (``href`` = ``#<element id>``)."""

    text: str
    href: str

    def __str__(self) -> str:
        return self.text


@dataclass
class FigureItem:
    """An inlined figure: ``uri`` is a ``data:image/png;base64,...`` URI; ``link`` is shown after
    the caption (e.g. the slide's QC page)."""

    uri: str
    caption: str
    alt: str = ""
    link: Link | None = None


@dataclass
class TableItem:
    """A plain table: header and rows of already formatted cells (``str`` or :class:`Link`)."""

    caption: str
    columns: list[str]
    rows: list[list[str | Link]]


@dataclass
class Section:
    """One titled part of the report; ``unavailable`` (the reason) replaces its content.

    ``pages`` are sub-sections with their own anchor (e.g. one QC page per slide), drawn after
    the section's own content and not listed in the table of contents.
    """

    id: str
    title: str
    intro: str = ""
    unavailable: str | None = None
    figures: list[FigureItem] = field(default_factory=list)
    tables: list[TableItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)
    pages: list[Section] = field(default_factory=list)
