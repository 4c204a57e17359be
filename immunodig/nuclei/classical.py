"""Classical nucleus segmentation: haematoxylin OD, threshold, distance-transform watershed.

Needs no weights and runs everywhere. Every length is in µm and converted with the image's mpp,
so one parameter set transfers between 0.25 and 0.5 µm/px. The defaults were chosen by
leave-one-image-out search on the three shared MoNuSeg images (``scripts/tune_classical.py``,
numbers in ``docs/nuclei.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from immunodig.slides.stain import haematoxylin_od


@dataclass(frozen=True)
class ClassicalParams:
    """Parameters of :class:`ClassicalSegmenter` (lengths in µm, areas in µm²).

    Parameters
    ----------
    smooth_um : float
        Gaussian sigma applied to the haematoxylin OD.
    threshold_scale : float
        Foreground = OD > ``threshold_scale`` x Otsu threshold of the OD (of the pixels
        :func:`threshold_sample` keeps).
    min_od : float
        Absolute floor of the haematoxylin OD of a nucleus pixel (``rgb2hed`` units; MoNuSeg
        nuclei: 5th percentile 0.026-0.074, pale pink background ~0.005), so that regions without
        nuclei (glass, slide edges, mucus) yield none although Otsu always splits.
    local_window_um : float
        Window of the local (adaptive) mean; a pixel must also exceed that mean by
        ``local_offset``. 0 disables the local test.
    local_offset : float
        Offset of the local test, in OD units.
    marker_h_um : float
        h of the h-maxima transform of the marker surface that seeds the watershed; lower splits
        more.
    marker_smooth_um : float
        Gaussian sigma (µm) applied to the distance map before seeding.
    marker_od_weight : float
        Marker surface = distance (µm) + ``marker_od_weight`` x haematoxylin OD (smoothed 1 µm,
        scaled by its 95th percentile inside the foreground): dark chromatin pulls seeds and
        watershed lines apart where two touching nuclei form one round blob. 0 = distance only.
    min_area_um2, max_area_um2 : float
        Size filter applied to the final instances.
    fill_holes_um2 : float
        Holes smaller than this inside the foreground are filled.
    refine_um : float
        Per-nucleus boundary refinement: each instance may grow by up to this distance (not into
        another) and every pixel of the grown instance is kept only where the haematoxylin OD
        (smoothed 0.25 µm) exceeds a threshold of its own nucleus, so pale nuclei get a low and
        dark ones a high boundary level. 0 disables.
    refine_level : float
        That threshold as a fraction of the way from the mean OD of the ring around the
        nucleus (its local background) to the nucleus' mean OD.
    saturation_level : int
        Pixels with a channel at or below this value (JPEG / sensor saturation, black dust, pen)
        are left out of the threshold statistics: ``rgb2hed`` maps a zero channel to an OD far
        above any nucleus, and 0.2 % of such pixels on a real Aperio slide raised Otsu's
        threshold above every nucleus. -1 keeps every pixel.
    stats_quantile : float
        The OD values of the threshold statistics are clipped at this quantile, so that a few
        very dark pixels that are not saturated (dust, pen, folds) do not pull the threshold up
        either. 1 disables.
    expand_um : float
        Final instances grow by this distance into the background (not into each other): the
        thresholded dark core is slightly smaller than a pathologist's outline.
    """

    smooth_um: float = 0.0
    threshold_scale: float = 1.1
    min_od: float = 0.02
    local_window_um: float = 10.0
    local_offset: float = 0.0
    marker_h_um: float = 0.7
    marker_smooth_um: float = 0.25
    marker_od_weight: float = 2.0
    min_area_um2: float = 8.0
    max_area_um2: float = 250.0
    fill_holes_um2: float = 5.0
    refine_um: float = 1.0
    refine_level: float = 0.3
    expand_um: float = 0.0
    saturation_level: int = 2
    stats_quantile: float = 0.995

    def to_dict(self) -> dict[str, float]:
        """Plain dict of the parameters."""
        return asdict(self)


class ClassicalSegmenter:
    """Colour deconvolution + threshold + distance-transform watershed.

    Parameters
    ----------
    **params
        Fields of :class:`ClassicalParams`.

    Examples
    --------
    >>> seg = ClassicalSegmenter(marker_h_um=0.6)
    >>> labels = seg.segment(rgb, mpp=0.25)  # doctest: +SKIP
    """

    name = "classical"

    def __init__(self, **params: float) -> None:
        self.params = ClassicalParams(**params)

    def foreground(self, rgb: np.ndarray, mpp: float) -> np.ndarray:
        """Boolean nucleus foreground."""
        return self._foreground(haematoxylin_od(rgb), mpp, rgb)

    def _foreground(self, od: np.ndarray, mpp: float, rgb: np.ndarray) -> np.ndarray:
        from scipy import ndimage as ndi
        from skimage.filters import threshold_otsu
        from skimage.morphology import remove_small_holes

        p = self.params
        if p.smooth_um > 0:
            od = ndi.gaussian_filter(od, p.smooth_um / mpp)
        if np.ptp(od) < 1e-6:
            return np.zeros(od.shape, dtype=bool)
        fg = od > max(
            p.min_od,
            p.threshold_scale * threshold_otsu(threshold_sample(od, rgb, p.saturation_level, p.stats_quantile)),
        )
        if p.local_window_um > 0:
            size = max(3, int(round(p.local_window_um / mpp)) | 1)
            fg &= od > ndi.uniform_filter(od, size) + p.local_offset
        fg = ndi.binary_opening(fg, iterations=1)
        hole_px = int(p.fill_holes_um2 / mpp**2)
        if hole_px > 0:
            fg = remove_small_holes(fg, max_size=hole_px)
        return fg

    def segment(self, rgb: np.ndarray, mpp: float) -> np.ndarray:
        """Segment nuclei.

        Parameters
        ----------
        rgb : ndarray of uint8, shape (H, W, 3)
        mpp : float
            µm per pixel of ``rgb``.

        Returns
        -------
        ndarray of int32, shape (H, W)
            Instance labels, 0 = background, 1..N nuclei.
        """
        from scipy import ndimage as ndi

        p = self.params
        od = haematoxylin_od(rgb)
        fg = self._foreground(od, mpp, rgb)
        intensity = None
        if p.marker_od_weight > 0 and fg.any():
            smooth = ndi.gaussian_filter(od, 1.0 / mpp)
            intensity = p.marker_od_weight * smooth / max(float(np.percentile(smooth[fg], 95)), 1e-6)
        labels = split_instances(
            fg,
            mpp,
            p.marker_h_um,
            p.min_area_um2,
            p.max_area_um2,
            marker_smooth_um=p.marker_smooth_um,
            intensity=intensity,
        )
        if p.refine_um > 0 and labels.any():
            labels = refine_boundaries(labels, od, mpp, p.refine_um, p.refine_level)
            labels = filter_sizes(labels, mpp, p.min_area_um2, p.max_area_um2)
        if p.expand_um > 0:
            from skimage.segmentation import expand_labels

            labels = expand_labels(labels, p.expand_um / mpp).astype(np.int32)
        return labels


def threshold_sample(od: np.ndarray, rgb: np.ndarray, saturation_level: int, quantile: float) -> np.ndarray:
    """The OD values Otsu's threshold is computed from: unsaturated pixels, clipped at ``quantile``.

    Falls back to every pixel when fewer than 100 are unsaturated.
    """
    sample = od.ravel()
    if saturation_level >= 0:
        valid = rgb.min(axis=-1).ravel() > saturation_level
        if valid.sum() >= 100:
            sample = sample[valid]
    if quantile < 1:
        sample = np.minimum(sample, np.quantile(sample, quantile))
    return sample


def split_instances(
    fg: np.ndarray,
    mpp: float,
    marker_h_um: float,
    min_area_um2: float,
    max_area_um2: float,
    marker_smooth_um: float | None = None,
    intensity: np.ndarray | None = None,
) -> np.ndarray:
    """Split a boolean foreground into nuclei by marker-controlled watershed.

    The surface is the distance transform (µm) smoothed by a Gaussian of ``marker_smooth_um``
    (``None``: 0.5 px, the setting the IHC and TorchScript backends were checked with) plus
    ``intensity`` when given; seeds are its h-maxima.
    """
    from scipy import ndimage as ndi
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    if not fg.any():
        return np.zeros(fg.shape, dtype=np.int32)
    surface = ndi.distance_transform_edt(fg).astype(np.float32) * mpp  # µm
    sigma_px = 0.5 if marker_smooth_um is None else marker_smooth_um / mpp
    if sigma_px > 0:
        surface = ndi.gaussian_filter(surface, sigma_px)
    if intensity is not None:
        surface = surface + intensity.astype(np.float32)
    markers, _ = ndi.label(h_maxima(surface, marker_h_um))
    labels = watershed(-surface, markers, mask=fg)
    return filter_sizes(labels, mpp, min_area_um2, max_area_um2)


def refine_boundaries(labels: np.ndarray, od: np.ndarray, mpp: float, grow_um: float, level: float) -> np.ndarray:
    """Re-draw each nucleus' outline at its own OD level (see ``ClassicalParams.refine_um``)."""
    from scipy import ndimage as ndi
    from skimage.segmentation import expand_labels

    smooth = ndi.gaussian_filter(od, 0.25 / mpp)
    grown = expand_labels(labels, grow_um / mpp)
    n = int(labels.max()) + 1
    core_mean = np.bincount(labels.ravel(), smooth.ravel(), n) / np.maximum(np.bincount(labels.ravel(), minlength=n), 1)
    ring = (grown > 0) & (labels == 0)
    ring_mean = np.bincount(grown[ring], smooth[ring], n) / np.maximum(np.bincount(grown[ring], minlength=n), 1)
    threshold = ring_mean + level * (core_mean - ring_mean)
    return np.where((grown > 0) & (smooth > threshold[grown]), grown, 0).astype(np.int32)


def filter_sizes(labels: np.ndarray, mpp: float, min_area_um2: float, max_area_um2: float) -> np.ndarray:
    """Drop instances outside the area range and renumber 1..N (int32)."""
    from skimage.segmentation import relabel_sequential

    area = np.bincount(labels.ravel()) * mpp**2
    keep = (area >= min_area_um2) & (area <= max_area_um2)
    keep[0] = False
    out = np.where(keep[labels], labels, 0)
    return relabel_sequential(out)[0].astype(np.int32)
