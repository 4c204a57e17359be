"""The command lines the user documentation shows, as a user would copy them.

:func:`documented_commands` reads every ``docs/*.md`` page (shell code blocks, with their ``\\``
continuations, and inline ``python ...`` spans) and every ``docs/queries/*.sql`` comment that
shows a command. ``test_documented_commands.py`` runs them.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
#: First word of a documented shell command (after ``NAME=value`` environment assignments).
PROGRAMS = ("python", "python3", ".venv/bin/pip", ".venv/bin/python")
#: Info strings of fenced code blocks read as shell (an untyped block is read too: only lines
#: starting with one of :data:`PROGRAMS` count).
SHELL_LANGUAGES = ("bash", "sh", "shell", "console", "")
_INLINE = re.compile(r"`((?:[A-Z_]+=\S+ )*python3? (?:cli\.py|scripts/|benchmarks/|-m |-c )[^`]*)`")


@dataclass(frozen=True)
class DocCommand:
    """One documented command line: where it is written and its text (continuations joined)."""

    source: str
    line: int
    text: str

    @property
    def words(self) -> list[str]:
        """The shell words, brackets of optional parts kept (``shlex``, comments dropped)."""
        return shlex.split(self.text, comments=True)

    @property
    def cli_command(self) -> str | None:
        """The ``cli.py`` sub-command (``query``, ``build-features`` ...), else ``None``."""
        w = self.words
        return w[2] if len(w) > 2 and w[:2] == ["python", "cli.py"] else None


def _is_command(line: str) -> bool:
    words = line.split()
    while words and re.fullmatch(r"[A-Z_]+=\S+", words[0]):
        words = words[1:]
    return bool(words) and words[0] in PROGRAMS


def _block_commands(source: str, text: str, first_line: int) -> list[DocCommand]:
    """Commands of one code block: ``\\`` continues a line, and so does an indented line of
    options right under a command (a synopsis: ``    [--seed S] [--patch 256]``)."""
    out: list[DocCommand] = []
    pending, start, after_command = "", 0, False
    for k, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if pending:
            pending += " " + line.rstrip("\\").strip()
        elif _is_command(line):
            pending, start = line.rstrip("\\").strip(), first_line + k
        elif after_command and raw[:1].isspace() and line.startswith(("[", "--")):
            last = out.pop()
            pending, start = last.text + " " + line.rstrip("\\").strip(), last.line
        else:
            after_command = False
            continue
        if not line.endswith("\\"):
            out.append(DocCommand(source, start, re.sub(r"\s+", " ", pending)))
            pending, after_command = "", True
    return out


def _fenced_blocks(text: str) -> list[tuple[str, int, str]]:
    """``(info string, first line number, body)`` of every fenced code block of a page."""
    blocks, lines = [], text.splitlines()
    k = 0
    while k < len(lines):
        m = re.match(r"^\s*```\s*(\S*)\s*$", lines[k])
        if not m:
            k += 1
            continue
        end = next((j for j in range(k + 1, len(lines)) if lines[j].strip() == "```"), len(lines))
        blocks.append((m.group(1), k + 2, "\n".join(lines[k + 1:end])))
        k = end + 1
    return blocks


def documented_commands(docs: Path = DOCS) -> list[DocCommand]:
    """Every command line of ``docs/*.md`` and ``docs/queries/*.sql``, in page order."""
    out: list[DocCommand] = []
    for page in sorted(docs.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        name = page.relative_to(docs.parent).as_posix()
        for lang, first, body in _fenced_blocks(text):
            if lang in SHELL_LANGUAGES:
                out += _block_commands(name, body, first)
        for m in _INLINE.finditer(text):
            out.append(DocCommand(name, text[:m.start()].count("\n") + 1,
                                  re.sub(r"\s+", " ", m.group(1)).strip()))
    for sql in sorted((docs / "queries").glob("*.sql")):
        name = sql.relative_to(docs.parent).as_posix()
        for k, line in enumerate(sql.read_text(encoding="utf-8").splitlines(), start=1):
            if line.startswith("--") and "python cli.py" in line:
                out.append(DocCommand(name, k, line[line.index("python cli.py"):].strip()))
    return sorted(out, key=lambda c: (c.source, c.line))
