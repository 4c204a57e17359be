"""Hand-crafted tile features: colour deconvolution (HED) statistics and multi-scale texture.

The feature vector is designed to be robust to moderate stain variation: besides absolute colour
statistics it carries stain *ratios*, per-tile rank statistics and texture measures (GLCM, LBP,
gradients, difference-of-Gaussians energy, nucleus-blob statistics) computed on a grey image that
is contrast-normalised per tile.

Example
-------
>>> import numpy as np
>>> from immunodig.tissue.handcrafted import tile_features, feature_names
>>> tile = np.full((224, 224, 3), 230, np.uint8)
>>> tile_features(tile).shape == (len(feature_names()),)
True
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from immunodig.slides.stain import HED_FROM_RGB, od_from_rgb

#: Version of the feature definition; stored in model files so a changed definition is detected.
FEATURE_VERSION: int = 3

_GLCM_LEVELS = 32
_GLCM_DISTANCES_PX = (1, 3, 6)
_GLCM_PROPS = ("contrast", "homogeneity", "energy", "correlation")
_LBP_SCALES = (1, 2)  # LBP (P=8, R=1) on the tile and on its 2x block-mean downsample
_PYRAMID_LEVELS = 4  # band-pass energies of a Laplacian pyramid (~1, 2, 4, 8 px)
_GRAD_SCALES = (1, 2, 4)
_TENSOR_SCALES = (1, 4)  # structure tensor on the tile and on a 4x downsample (sigma 2 px each)
_HE_BINS = 4
_GABOR_FREQS = (1 / 4, 1 / 8, 1 / 16, 1 / 32)  # cycles per pixel (periods 2-16 µm at 0.5 µm/px)
_GABOR_ORIENTATIONS = 6
_TISSUE_OD = 0.25  # summed optical density above which a pixel counts as tissue

#: Colour-deconvolution matrix in the float32 the features are computed in.
_HED_FROM_RGB = HED_FROM_RGB.astype(np.float32)


def _block_mean(img: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return img
    h, w = (img.shape[0] // k) * k, (img.shape[1] // k) * k
    return img[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def _stats(x: np.ndarray) -> list[float]:
    if x.size == 0:
        return [0.0] * 5
    p10, p50, p90 = np.percentile(x, (10, 50, 90))
    return [float(x.mean()), float(x.std()), float(p10), float(p50), float(p90)]


@lru_cache(maxsize=1)
def feature_names() -> tuple[str, ...]:
    """Names of the entries of :func:`tile_features`, in order."""
    names: list[str] = ["tissue_fraction", "od_mean", "od_std"]
    for ch in ("h", "e", "d"):
        names += [f"{ch}_{s}" for s in ("mean", "std", "p10", "p50", "p90")]
    names += ["h_tissue_mean", "e_tissue_mean", "h_share_mean", "h_share_std", "he_corr"]
    names += [f"{c}_mean" for c in ("r", "g", "b")] + [f"{c}_std" for c in ("r", "g", "b")]
    names += ["sat_mean", "sat_std", "val_mean", "val_std", "hue_cos", "hue_sin"]
    for d in _GLCM_DISTANCES_PX:
        names += [f"glcm_{p}_d{d}" for p in _GLCM_PROPS]
    for d in _GLCM_DISTANCES_PX:
        names += [f"hglcm_{p}_d{d}" for p in _GLCM_PROPS]
    for k in _LBP_SCALES:
        names += [f"lbp_s{k}_{i}" for i in range(10)]
    for k in _GRAD_SCALES:
        names += [f"grad_s{k}_{s}" for s in ("mean", "std", "p90")]
    for lev in range(_PYRAMID_LEVELS):
        names += [f"band_h_l{lev}_energy", f"band_grey_l{lev}_energy"]
    for k in _TENSOR_SCALES:
        names += [f"coherence_s{k}_mean", f"coherence_s{k}_weighted"]
    names += ["blob_fraction", "blob_count_per_kpx", "blob_area_mean_px", "blob_area_p90_px",
              "blob_large_fraction", "blob_gap_mean_px", "blob_elongation_mean", "blob_elongation_p90"]
    names += [f"hehist_{i}_{j}" for i in range(_HE_BINS) for j in range(_HE_BINS)]
    for fr in _GABOR_FREQS:
        p = round(1 / fr)
        names += [f"gabor_p{p}_log_energy", f"gabor_p{p}_energy_share", f"gabor_p{p}_anisotropy"]
    return tuple(names)


def tile_features(tile: np.ndarray) -> np.ndarray:
    """Compute the hand-crafted feature vector of one RGB tile.

    Parameters
    ----------
    tile : ndarray, uint8, shape (H, W, 3)
        RGB tile, typically 224 x 224 px at 0.5 µm/px.

    Returns
    -------
    ndarray, float32, shape (len(feature_names()),)
    """
    from scipy import ndimage as ndi
    from skimage.feature import graycomatrix, graycoprops, local_binary_pattern

    rgb = np.ascontiguousarray(tile[..., :3])
    od = od_from_rgb(rgb)
    od_sum = od.sum(axis=2)
    tissue = od_sum > _TISSUE_OD
    hed = np.maximum(od.reshape(-1, 3) @ _HED_FROM_RGB, 0).reshape(od.shape)
    h, e, d = hed[..., 0], hed[..., 1], hed[..., 2]

    f: list[float] = [float(tissue.mean()), float(od_sum.mean()), float(od_sum.std())]
    for ch in (h, e, d):
        f += _stats(ch.ravel())
    ht, et = h[tissue], e[tissue]
    share = ht / (ht + et + 1e-6) if ht.size else np.zeros(1, np.float32)
    he_corr = float(np.corrcoef(ht, et)[0, 1]) if ht.size > 10 and ht.std() > 0 and et.std() > 0 else 0.0
    f += [float(ht.mean()) if ht.size else 0.0, float(et.mean()) if et.size else 0.0,
          float(share.mean()), float(share.std()), he_corr]

    rgbf = rgb.astype(np.float32) / 255.0
    f += [float(v) for v in rgbf.reshape(-1, 3).mean(axis=0)]
    f += [float(v) for v in rgbf.reshape(-1, 3).std(axis=0)]
    mx, mn = rgbf.max(axis=2), rgbf.min(axis=2)
    sat = (mx - mn) / (mx + 1e-6)
    hue = _hue(rgbf, mx, mn)
    w = sat[tissue] if tissue.any() else sat.ravel()
    hh = hue[tissue] if tissue.any() else hue.ravel()
    f += [float(sat.mean()), float(sat.std()), float(mx.mean()), float(mx.std()),
          float(np.average(np.cos(hh), weights=w + 1e-6)), float(np.average(np.sin(hh), weights=w + 1e-6))]

    # grey image, contrast-normalised per tile (robust to brightness / stain intensity)
    grey = od_sum
    lo, hi = np.percentile(grey, (1, 99))
    gq = np.clip((grey - lo) / max(hi - lo, 1e-3), 0, 1)
    angles = (0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
    for img in ((gq * (_GLCM_LEVELS - 1)).astype(np.uint8),
                (np.clip(h / 1.5, 0, 1) * (_GLCM_LEVELS - 1)).astype(np.uint8)):
        glcm = graycomatrix(img, _GLCM_DISTANCES_PX, angles, levels=_GLCM_LEVELS, symmetric=True, normed=True)
        props = np.stack([graycoprops(glcm, p).mean(axis=1) for p in _GLCM_PROPS], axis=1)  # (d, p)
        f += [float(v) for v in np.nan_to_num(props).ravel()]
    for k in _LBP_SCALES:
        g8 = (_block_mean(gq, k) * 255).astype(np.uint8)
        lbp = local_binary_pattern(g8, 8, 1, method="uniform")
        hist = np.bincount(lbp.astype(np.int64).ravel(), minlength=10)[:10]
        f += [float(v) for v in hist / hist.sum()]
    for k in _GRAD_SCALES:
        img = _block_mean(gq, k)
        gm = np.hypot(ndi.sobel(img, 0), ndi.sobel(img, 1))
        f += [float(gm.mean()), float(gm.std()), float(np.percentile(gm, 90))]
    ph, pg = h, gq
    for _ in range(_PYRAMID_LEVELS):  # band-pass energy per octave
        bh, bg = ndi.gaussian_filter(ph, 1.0), ndi.gaussian_filter(pg, 1.0)
        f += [float(np.mean((ph - bh) ** 2)), float(np.mean((pg - bg) ** 2))]
        ph, pg = _block_mean(bh, 2), _block_mean(bg, 2)
    gy, gx = ndi.sobel(gq, 0), ndi.sobel(gq, 1)
    for k in _TENSOR_SCALES:
        jxx, jyy, jxy = (ndi.gaussian_filter(_block_mean(a, k), 2.0) for a in (gx * gx, gy * gy, gx * gy))
        energy = jxx + jyy
        coh = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (energy + 1e-6)
        f += [float(coh.mean()), float((coh * energy).sum() / (energy.sum() + 1e-9))]
    f += _blob_stats(ndi.gaussian_filter(h, 1.0), ndi)
    hist, _, _ = np.histogram2d(np.clip(ht, 0, 0.999), np.clip(et, 0, 0.499), bins=_HE_BINS,
                                range=[[0, 1], [0, 0.5]])
    f += [float(v) for v in hist.ravel() / max(ht.size, 1)]
    f += _gabor_stats(gq)
    return np.asarray(f, dtype=np.float32)


@lru_cache(maxsize=4)
def _gabor_bank(shape: tuple[int, int]) -> np.ndarray:
    """Squared frequency responses (freq, orientation, fy, fx) of even Gabor filters (rfft layout)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    bank = np.zeros((len(_GABOR_FREQS), _GABOR_ORIENTATIONS, fy.size, fx.size), np.float32)
    for i, f in enumerate(_GABOR_FREQS):
        s_radial, s_angular = 0.45 * f, 1.2 * f * np.tan(np.pi / _GABOR_ORIENTATIONS / 2)
        for k in range(_GABOR_ORIENTATIONS):
            th = np.pi * k / _GABOR_ORIENTATIONS
            u = fx * np.cos(th) + fy * np.sin(th)
            v = -fx * np.sin(th) + fy * np.cos(th)
            g = sum(np.exp(-((u - sgn * f) ** 2) / (2 * s_radial**2) - v**2 / (2 * s_angular**2)) for sgn in (1, -1))
            bank[i, k] = g**2
    return bank


def _gabor_stats(grey: np.ndarray) -> list[float]:
    """Per frequency: log mean energy, share of the total, orientation anisotropy."""
    power = np.abs(np.fft.rfft2(grey - grey.mean())) ** 2
    energy = np.einsum("ftyx,yx->ft", _gabor_bank(grey.shape), power) / grey.size**2 + 1e-9
    total = energy.sum()
    out: list[float] = []
    for e in energy:
        out += [float(np.log(e.mean())), float(e.mean() / total), float((e.max() - e.min()) / (e.max() + e.min()))]
    return out


def _hue(rgbf: np.ndarray, mx: np.ndarray, mn: np.ndarray) -> np.ndarray:
    r, g, b = rgbf[..., 0], rgbf[..., 1], rgbf[..., 2]
    c = mx - mn + 1e-6
    hue = np.where(mx == r, ((g - b) / c) % 6, np.where(mx == g, (b - r) / c + 2, (r - g) / c + 4))
    return hue * (np.pi / 3)


def _blob_stats(h_smooth: np.ndarray, ndi) -> list[float]:
    """Nucleus-like blobs: haematoxylin above a tile-adaptive threshold (floored)."""
    thr = max(float(np.percentile(h_smooth, 75)), 0.35 * float(h_smooth.max()), 0.08)
    blobs = h_smooth > thr
    labels, n = ndi.label(blobs)
    area_px = float(blobs.size)
    if n == 0:
        return [0.0, 0.0, 0.0, 0.0, 0.0, float(max(h_smooth.shape)), 1.0, 1.0]
    flat = labels.ravel()
    areas = np.bincount(flat)[1:].astype(np.float64)
    gap = ndi.distance_transform_edt(~blobs)
    # second moments per blob -> elongation (ratio of principal axes)
    yy, xx = np.indices(labels.shape)
    ys, xs = yy.ravel().astype(np.float64), xx.ravel().astype(np.float64)
    cnt = np.maximum(areas, 1)
    my = np.bincount(flat, ys)[1:] / cnt
    mx = np.bincount(flat, xs)[1:] / cnt
    cyy = np.bincount(flat, ys * ys)[1:] / cnt - my**2
    cxx = np.bincount(flat, xs * xs)[1:] / cnt - mx**2
    cxy = np.bincount(flat, xs * ys)[1:] / cnt - mx * my
    root = np.sqrt(((cxx - cyy) / 2) ** 2 + cxy**2)
    l1, l2 = (cxx + cyy) / 2 + root, np.maximum((cxx + cyy) / 2 - root, 0.0)
    sel = areas >= 8
    elong = np.sqrt((l1[sel] + 0.1) / (l2[sel] + 0.1)) if sel.any() else np.ones(1)
    return [float(blobs.mean()), n / area_px * 1000.0, float(areas.mean()),
            float(np.percentile(areas, 90)), float(areas[areas > 150].sum() / max(areas.sum(), 1.0)),
            float(gap.mean()), float(elong.mean()), float(np.percentile(elong, 90))]


def features_batch(tiles: np.ndarray) -> np.ndarray:
    """Stack :func:`tile_features` over ``tiles`` (N, H, W, 3) -> float32 (N, F)."""
    return np.stack([tile_features(t) for t in tiles]) if len(tiles) else np.zeros(
        (0, len(feature_names())), np.float32)
