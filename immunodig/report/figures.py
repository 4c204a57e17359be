"""Figure plumbing shared by every plot: a fresh Axes when none is given, PNG data URIs."""

from __future__ import annotations

import base64
import io


def axes_or_new(ax=None, figsize: tuple[float, float] = (5.0, 4.0)):
    """Return ``ax``, or the Axes of a new figure of ``figsize`` inches when ``ax`` is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def no_data(ax, why: str = "no data"):
    """Turn ``ax`` into an empty panel that says ``why`` (no axes, no ticks); returns it."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", fontsize=9,
            color="dimgrey", wrap=True)
    return ax


def new_figure(figsize: tuple[float, float]):
    """A matplotlib Figure not registered with pyplot (freed when it goes out of scope)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def png_bytes(fig, dpi: int = 90, fmt: str = "png") -> bytes:
    """Render ``fig`` as PNG (or ``fmt="jpeg"``) bytes, tight bounding box, white background."""
    buf = io.BytesIO()
    options = {"pil_kwargs": {"quality": 85}} if fmt == "jpeg" else {}
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", facecolor="white", **options)
    return buf.getvalue()


def png_data_uri(fig, dpi: int = 90, fmt: str = "png") -> str:
    """Render ``fig`` as a ``data:image/png;base64,...`` URI for inlining in HTML.

    ``fmt="jpeg"`` gives ``data:image/jpeg`` (several times smaller for slide pictures).
    """
    return f"data:image/{fmt};base64," + base64.b64encode(png_bytes(fig, dpi, fmt)).decode("ascii")
