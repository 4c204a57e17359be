"""IHC (CD3 / CD8): DAB colour deconvolution, positive-cell detection, registration to H&E.

* DAB optical density: :func:`immunodig.slides.stain.dab_od` (Ruifrok-Johnston deconvolution).
* :class:`PositiveCellDetector` — DAB OD > ``dab_threshold`` (after Gaussian smoothing), split by
  distance-transform watershed, size filter in µm²; one detection per positive cell.
* :func:`detect_positive_slide` — over a slide's QC-passed tiles with the same blocks, overlap and
  de-duplication as the H&E nuclei stage; returns ``x_um, y_um, area_um2, dab_od_mean``.
* :func:`rigid_register` — rigid alignment (rotation + translation) of the IHC tissue mask onto
  the patient's H&E tissue mask, both thumbnails at the same µm/px: exhaustive rotation search
  (``angle_step_deg``), FFT cross-correlation for the shift at each angle, best overlap wins.
  The returned :class:`RigidTransform` maps IHC µm coordinates into the H&E frame, so positive
  cells are counted in the compartments of the H&E tile map
  (:func:`immunodig.features.til.ihc_features`). Serial sections of one block differ mostly by a
  rigid motion; non-rigid deformation is not modelled, so compartment counts near edges carry an
  error of the order of the residual misalignment (reported as ``overlap_dice``).
* :func:`validate_ihc` — per patient H&E lymphocyte density vs IHC CD3 density, Spearman rho.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from immunodig.slides.stain import dab_od


@dataclass(frozen=True)
class PositiveCellDetector:
    """DAB-positive cell detection.

    Parameters
    ----------
    dab_threshold : float
        DAB OD (``rgb2hed`` units) above which a pixel is positive. 0.03 separates brown
        membranes from haematoxylin-only nuclei on typical CD3 stains; check on your scanner.
    smooth_um : float
        Gaussian sigma before thresholding.
    marker_h_um : float
        h-maxima depth splitting touching positive cells.
    min_area_um2, max_area_um2 : float
        Size of one positive cell (a T cell is ~7-10 µm across; Ross & Pawlina, *Histology*).
    """

    dab_threshold: float = 0.03
    smooth_um: float = 1.0
    marker_h_um: float = 1.0
    min_area_um2: float = 12.0
    max_area_um2: float = 250.0

    def label(self, rgb: np.ndarray, mpp: float) -> np.ndarray:
        """Instance labels of positive cells (int32)."""
        from scipy import ndimage as ndi

        from immunodig.nuclei.classical import split_instances

        od = ndi.gaussian_filter(dab_od(rgb), self.smooth_um / mpp)
        fg = ndi.binary_fill_holes(od > self.dab_threshold)
        return split_instances(fg, mpp, self.marker_h_um, self.min_area_um2, self.max_area_um2)

    def detect(self, rgb: np.ndarray, mpp: float) -> dict[str, np.ndarray]:
        """Positive cells: ``x_px, y_px, area_um2, dab_od_mean, touches_edge``."""
        from skimage.measure import regionprops_table

        labels = self.label(rgb, mpp)
        if labels.max() == 0:
            return {
                k: np.zeros(0, dtype=bool if k == "touches_edge" else float)
                for k in ("x_px", "y_px", "area_um2", "dab_od_mean", "touches_edge")
            }
        p = regionprops_table(labels, intensity_image=dab_od(rgb), properties=("centroid", "area", "intensity_mean"))
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        touches = np.isin(np.arange(1, labels.max() + 1), edge)
        return {
            "x_px": p["centroid-1"],
            "y_px": p["centroid-0"],
            "area_um2": p["area"] * mpp**2,
            "dab_od_mean": p["intensity_mean"],
            "touches_edge": touches,
        }


def detect_positive_slide(
    slide: Any,
    tiles: Any,
    tile_um: float,
    mpp: float = 0.5,
    detector: PositiveCellDetector | None = None,
    overlap_um: float = 16.0,
    block_tiles: int = 4,
):
    """Positive cells of a whole IHC slide (polars DataFrame ``x_um, y_um, area_um2, dab_od_mean``)."""
    import polars as pl

    from immunodig.nuclei.slide_nuclei import iter_blocks

    detector = detector or PositiveCellDetector()
    parts = []
    for block in iter_blocks(slide, tiles, tile_um, mpp, overlap_um, block_tiles):
        res = detector.detect(block.rgb, mpp)
        x_um, y_um = block.to_um(res["x_px"], res["y_px"])
        keep, _ = block.owned(x_um, y_um, res["touches_edge"])
        parts.append(
            pl.DataFrame(
                {
                    "x_um": x_um[keep],
                    "y_um": y_um[keep],
                    "area_um2": res["area_um2"][keep],
                    "dab_od_mean": res["dab_od_mean"][keep],
                },
                schema={c: pl.Float64 for c in ("x_um", "y_um", "area_um2", "dab_od_mean")},
            )
        )
    if not parts:
        return pl.DataFrame(schema={c: pl.Float64 for c in ("x_um", "y_um", "area_um2", "dab_od_mean")})
    return pl.concat(parts)


@dataclass(frozen=True)
class RigidTransform:
    """``p_fixed = R(angle) (p_moving - c_moving) + c_moving + t`` in µm (rotation about the
    moving mask's centre ``centre_um``, then translation ``shift_um``)."""

    angle_deg: float
    shift_um: tuple[float, float]
    centre_um: tuple[float, float]
    overlap_dice: float

    def apply(self, xy_um: np.ndarray) -> np.ndarray:
        """Map (N, 2) µm points from the moving (IHC) frame into the fixed (H&E) frame."""
        a = np.deg2rad(self.angle_deg)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        c = np.asarray(self.centre_um)
        return (np.asarray(xy_um, dtype=float) - c) @ rot.T + c + np.asarray(self.shift_um)


def _rotate_points_mask(
    mask: np.ndarray, angle_deg: float, centre_px: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Render ``mask`` rotated by ``angle_deg`` about ``centre_px`` (x, y) onto a canvas ``shape``."""
    from scipy import ndimage as ndi

    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    inv = rot.T  # output (x, y) -> input (x, y)
    # ndi.affine_transform works in (row, col): swap axes of the matrix
    m = inv[::-1, ::-1]
    c = centre_px[::-1]
    offset = c - m @ c
    return ndi.affine_transform(mask.astype(np.float32), m, offset=offset, output_shape=shape, order=1) > 0.5


def rigid_register(
    fixed_mask: np.ndarray, moving_mask: np.ndarray, mpp: float, angle_step_deg: float = 4.0
) -> RigidTransform:
    """Align ``moving_mask`` (IHC tissue) onto ``fixed_mask`` (H&E tissue); both at ``mpp`` µm/px.

    Coarse search over all rotations in steps of ``angle_step_deg`` then a refinement at a quarter
    step; for each angle the best translation is the peak of the FFT cross-correlation.
    """
    h = max(fixed_mask.shape[0], moving_mask.shape[0])
    w = max(fixed_mask.shape[1], moving_mask.shape[1])
    size = (2 * h, 2 * w)
    fixed = np.zeros(size, dtype=np.float32)
    fixed[: fixed_mask.shape[0], : fixed_mask.shape[1]] = fixed_mask
    ff = np.fft.rfft2(fixed)
    ys, xs = np.nonzero(moving_mask)
    centre = np.array([xs.mean(), ys.mean()]) if len(xs) else np.zeros(2)

    def score(angle: float) -> tuple[float, tuple[int, int]]:
        mov = _rotate_points_mask(moving_mask, angle, centre, size)
        corr = np.fft.irfft2(ff * np.conj(np.fft.rfft2(mov.astype(np.float32))), s=size)
        iy, ix = np.unravel_index(int(corr.argmax()), size)
        dy = iy if iy < size[0] // 2 else iy - size[0]
        dx = ix if ix < size[1] // 2 else ix - size[1]
        return float(corr.max()), (dx, dy)

    coarse = np.arange(-180.0, 180.0, angle_step_deg)
    results = [score(a) for a in coarse]
    best = coarse[int(np.argmax([r[0] for r in results]))]
    fine = best + np.arange(-angle_step_deg, angle_step_deg + 1e-9, angle_step_deg / 4)
    fine_results = [score(a) for a in fine]
    k = int(np.argmax([r[0] for r in fine_results]))
    angle, (dx, dy) = float(fine[k]), fine_results[k][1]
    overlap = fine_results[k][0]
    dice = 2 * overlap / max(1.0, float(fixed_mask.sum() + moving_mask.sum()))
    return RigidTransform(
        angle, (float(dx * mpp), float(dy * mpp)), (float(centre[0] * mpp), float(centre[1] * mpp)), dice
    )


#: Per patient, the mean over its slides of the two features (``$he``, ``$ihc``), read-only.
PATIENT_DENSITIES_SQL = (
    "select s.patient_id, f.feature, avg(f.value) as value "
    "from slide_features_current f join slides s on s.slide_id = f.slide_id "
    "where f.feature in ($he, $ihc) and f.value is not null and not isnan(f.value) "
    "and s.patient_id is not null group by 1, 2"
)


def validate_ihc(
    patient_long: Any,
    he_feature: str = "til_density_tumour_region_per_mm2",
    ihc_feature: str = "cd3_density_tumour_region_per_mm2",
) -> dict[str, Any]:
    """Spearman rho between H&E lymphocyte density and IHC CD3 density across patients.

    Parameters
    ----------
    patient_long : polars.DataFrame
        ``patient_id, feature, value`` (the store's ``patient_features_long`` view).

    Returns
    -------
    dict with ``n_patients``, ``spearman_rho``, ``p_value``, ``pairs`` (pseudonymised patient id,
    both densities) and the feature names.
    """
    import polars as pl
    from scipy.stats import spearmanr

    wide = patient_long.filter(pl.col("feature").is_in([he_feature, ihc_feature])).pivot(
        on="feature", index="patient_id", values="value", aggregate_function="mean"
    )
    for f in (he_feature, ihc_feature):
        if f not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(f))
    both = (
        wide.drop_nulls([he_feature, ihc_feature])
        .filter(pl.col(he_feature).is_not_nan() & pl.col(ihc_feature).is_not_nan())
        .sort("patient_id")
    )
    n = both.height
    rho, p = (float("nan"), float("nan"))
    if n >= 3:
        r = spearmanr(both[he_feature].to_numpy(), both[ihc_feature].to_numpy())
        rho, p = float(r.statistic), float(r.pvalue)
    return {
        "he_feature": he_feature,
        "ihc_feature": ihc_feature,
        "n_patients": n,
        "spearman_rho": rho,
        "p_value": p,
        "pairs": both.select("patient_id", he_feature, ihc_feature).to_dicts(),
    }
