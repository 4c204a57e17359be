"""Whole-slide reading over openslide, in physical units.

Coordinates are level-0 pixels; resolutions are microns per pixel (µm/px). A region is read from
the best pyramid level (the coarsest one that is still at least as fine as the request) and then
resampled to the exact requested resolution.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from immunodig.errors import NoMppError, SlideError
from immunodig.vocab import PLAUSIBLE_MPP, mpp_is_plausible

#: openslide property prefixes/keys that may be stored. Label/macro images, barcodes and
#: free-text descriptions (which can carry patient data) are never kept.
_PROPERTY_WHITELIST: tuple[str, ...] = (
    "openslide.vendor",
    "openslide.mpp-x",
    "openslide.mpp-y",
    "openslide.objective-power",
    "openslide.level-count",
    "openslide.bounds-x",
    "openslide.bounds-y",
    "openslide.bounds-width",
    "openslide.bounds-height",
    "openslide.quickhash-1",
    "tiff.ResolutionUnit",
    "aperio.AppMag",
    "aperio.MPP",
    "hamamatsu.SourceLens",
)

#: Relative tolerance when choosing a pyramid level (avoids reading level 0 for a request that
#: is a hair coarser than level 1 because of rounding in the downsample factors).
_LEVEL_TOLERANCE = 1e-3


class Slide:
    """A whole-slide image opened with openslide, aware of microns per pixel.

    Parameters
    ----------
    path : str or Path
        Any format openslide reads (SVS, NDPI, MRXS, SCN, generic tiled TIFF, DICOM folder).
    mpp : float, optional
        Microns per pixel to use when the slide carries none in its metadata. Ignored when the
        metadata has a value.

    Raises
    ------
    SlideError
        With ``reason`` ``not_found``, ``unsupported`` (not a whole-slide format: flat JPEG/PNG
        are refused), ``corrupt`` (openslide fails to open or decode it), ``no_mpp`` or ``mpp_implausible``
        (metadata outside :data:`PLAUSIBLE_MPP` and no ``mpp`` given).

    Examples
    --------
    >>> with Slide("slide.svs") as s:                       # doctest: +SKIP
    ...     tile = s.read(0, 0, size_px=(224, 224), mpp=0.5)
    """

    def __init__(self, path: str | Path, mpp: float | None = None) -> None:
        import openslide

        self.path = Path(path)
        if not self.path.exists():
            raise SlideError(f"{self.path}: file not found", reason="not_found")
        try:
            fmt = openslide.OpenSlide.detect_format(str(self.path))
        except openslide.OpenSlideError as exc:
            raise SlideError(f"{self.path}: unreadable ({exc})", reason="corrupt") from exc
        if fmt is None:
            if _is_damaged_slide_file(self.path):
                raise SlideError(
                    f"{self.path}: looks like a slide file but cannot be parsed; it is probably "
                    "truncated or corrupt (copy it again from the scanner)",
                    reason="corrupt",
                )
            raise SlideError(
                f"{self.path}: not a whole-slide image format openslide reads (flat JPEG/PNG or "
                "strip TIFFs are refused); convert it to a tiled pyramidal TIFF",
                reason="unsupported",
            )
        try:
            self._osr = openslide.OpenSlide(str(self.path))
        except openslide.OpenSlideError as exc:
            raise SlideError(
                f"{self.path}: openslide could not open it ({exc}); the file may be truncated "
                "or corrupt",
                reason="corrupt",
            ) from exc
        self.vendor: str = fmt
        props = self._osr.properties
        mpp_x, mpp_y = props.get("openslide.mpp-x"), props.get("openslide.mpp-y")
        meta_x = float(mpp_x) if mpp_x and float(mpp_x) > 0 else None
        meta_y = float(mpp_y) if mpp_y and float(mpp_y) > 0 else meta_x
        if meta_x is not None and mpp_is_plausible(meta_x) and mpp_is_plausible(meta_y):
            self.mpp_x, self.mpp_y = meta_x, meta_y
            self.mpp_source = "metadata"
        elif mpp is not None:
            self.mpp_x = self.mpp_y = float(mpp)
            self.mpp_source = "override"
        elif meta_x is not None:
            lo, hi = PLAUSIBLE_MPP
            raise SlideError(
                f"{self.path}: the metadata says {meta_x:g} µm/px, outside the plausible range "
                f"{lo}-{hi} µm/px for microscopy (a generic TIFF writer's 72/96-dpi default?); "
                "pass --mpp with the scanner's value (e.g. --mpp 0.25)",
                reason="mpp_implausible",
            )
        else:
            raise NoMppError(
                f"{self.path}: no microns-per-pixel in the slide metadata; pass --mpp 0.25 "
                "(or the scanner's value) if you know it"
            )

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> "Slide":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the openslide handle."""
        self._osr.close()

    # -- geometry --------------------------------------------------------------------------
    @property
    def mpp(self) -> float:
        """Level-0 microns per pixel (mean of x and y)."""
        return (self.mpp_x + self.mpp_y) / 2

    @property
    def dimensions(self) -> tuple[int, int]:
        """Level-0 size ``(width, height)`` in pixels."""
        return self._osr.dimensions

    @property
    def level_count(self) -> int:
        """Number of pyramid levels."""
        return self._osr.level_count

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        """Size of every level."""
        return self._osr.level_dimensions

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        """Downsample factor of every level relative to level 0."""
        return self._osr.level_downsamples

    def level_mpp(self, level: int) -> float:
        """Microns per pixel of ``level``."""
        return self.mpp * self._osr.level_downsamples[level]

    @property
    def size_um(self) -> tuple[float, float]:
        """Physical size ``(width, height)`` in µm."""
        w, h = self.dimensions
        return w * self.mpp_x, h * self.mpp_y

    def best_level(self, mpp: float) -> int:
        """Coarsest level whose resolution is at least as fine as ``mpp``."""
        factor = mpp / self.mpp
        best = 0
        for i, ds in enumerate(self._osr.level_downsamples):
            if ds <= factor * (1 + _LEVEL_TOLERANCE):
                best = i
        return best

    # -- pixels ----------------------------------------------------------------------------
    def read(
        self, x_px: float, y_px: float, size_px: tuple[int, int], mpp: float
    ) -> np.ndarray:
        """Read a region at a given resolution.

        Parameters
        ----------
        x_px, y_px : float
            Top-left corner in level-0 pixels.
        size_px : (int, int)
            Output ``(width, height)`` in pixels at ``mpp``.
        mpp : float
            Requested microns per pixel of the output.

        Returns
        -------
        numpy.ndarray
            ``(height, width, 3)`` uint8 RGB; areas outside the slide are white.
        """
        from PIL import Image

        out_w, out_h = int(size_px[0]), int(size_px[1])
        scale = mpp / self.mpp  # level-0 pixels per output pixel
        level = self.best_level(mpp)
        ds = self._osr.level_downsamples[level]
        read_w = max(1, math.ceil(out_w * scale / ds))
        read_h = max(1, math.ceil(out_h * scale / ds))
        try:
            region = self._osr.read_region((int(round(x_px)), int(round(y_px))), level, (read_w, read_h))
        except Exception as exc:  # openslide raises OpenSlideError on decode failures
            raise SlideError(
                f"{self.path}: failed to decode region at ({x_px:.0f}, {y_px:.0f}) level {level} "
                f"({exc}); the file may be corrupt",
                reason="corrupt",
            ) from exc
        if (read_w, read_h) != (out_w, out_h):
            resample = Image.Resampling.BOX if read_w >= out_w else Image.Resampling.BILINEAR
            region = region.resize((out_w, out_h), resample=resample)
        return _rgba_to_rgb_on_white(np.asarray(region))

    def read_um(self, x_um: float, y_um: float, size_px: tuple[int, int], mpp: float) -> np.ndarray:
        """Like :meth:`read` with the top-left corner in µm."""
        return self.read(x_um / self.mpp_x, y_um / self.mpp_y, size_px, mpp)

    def thumbnail(self, mpp: float) -> np.ndarray:
        """Whole slide at ``mpp`` µm/px as ``(h, w, 3)`` uint8 RGB."""
        w, h = self.dimensions
        out = (max(1, round(w * self.mpp / mpp)), max(1, round(h * self.mpp / mpp)))
        return self.read(0, 0, out, mpp)

    # -- metadata --------------------------------------------------------------------------
    @property
    def properties(self) -> dict[str, str]:
        """Whitelisted metadata only (no label/macro, barcode or free-text fields)."""
        props = self._osr.properties
        return {k: props[k] for k in _PROPERTY_WHITELIST if k in props}

    @property
    def fingerprint(self) -> str:
        """Content fingerprint ``s_<16 hex>``, independent of the file name.

        Uses openslide's ``quickhash-1`` (a hash of the lowest-resolution level and the
        properties) when present, otherwise a hash of the file's first and last MiB and size.
        """
        quick = self._osr.properties.get("openslide.quickhash-1")
        if quick:
            return "s_" + hashlib.sha256(quick.encode()).hexdigest()[:16]
        return "s_" + _edge_hash(self.path)[:16]

    def describe(self) -> dict[str, Any]:
        """Metadata record stored in ``slide.json`` / the ``slides`` table."""
        w, h = self.dimensions
        return {
            "slide_id": self.fingerprint,
            "path": str(self.path.resolve()),
            "mpp_x": self.mpp_x,
            "mpp_y": self.mpp_y,
            "mpp_source": self.mpp_source,
            "width_px": w,
            "height_px": h,
            "level_count": self.level_count,
            "vendor": self.vendor,
            "properties": self.properties,
        }


def _rgba_to_rgb_on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite premultiplied-free RGBA (openslide output) onto white."""
    rgb = rgba[..., :3]
    alpha = rgba[..., 3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    a = alpha[..., None].astype(np.float32) / 255.0
    out = rgb.astype(np.float32) * a + 255.0 * (1.0 - a)
    return out.round().astype(np.uint8)


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_SLIDE_ONLY_EXTENSIONS = (".svs", ".ndpi", ".mrxs", ".scn", ".bif", ".vms", ".vmu", ".svslide")


def _is_damaged_slide_file(path: Path) -> bool:
    """True for a file that claims to be a slide (extension or TIFF magic) but does not parse.

    A TIFF that parses but that openslide does not read (e.g. a flat strip TIFF) is not damaged,
    it is unsupported.
    """
    if path.is_dir():
        return False
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head in _TIFF_MAGIC:
        import tifffile

        size = path.stat().st_size
        try:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages.first
                ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts)]
                return bool(ends) and max(ends) > size
        except Exception:
            return True
    return path.suffix.lower() in _SLIDE_ONLY_EXTENSIONS and len(head) > 0


def _edge_hash(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(chunk))
        if size > chunk:
            fh.seek(max(chunk, size - chunk))
            h.update(fh.read(chunk))
    return h.hexdigest()
