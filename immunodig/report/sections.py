"""The pieces a report section is made of, independent of any template."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FigureItem:
    """An inlined figure: ``uri`` is a ``data:image/png;base64,...`` URI."""

    uri: str
    caption: str
    alt: str = ""


@dataclass
class TableItem:
    """A plain table: header and rows of already formatted cells."""

    caption: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """One titled part of the report; ``unavailable`` (the reason) replaces its content."""

    id: str
    title: str
    intro: str = ""
    unavailable: str | None = None
    figures: list[FigureItem] = field(default_factory=list)
    tables: list[TableItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)
