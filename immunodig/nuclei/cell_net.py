"""Small fully convolutional network for nucleus detection and cell-type maps.

The network reads an H&E image at ``input_mpp`` (0.55 µm/px, the resolution of
CRCHistoPhenotypes) and returns, per pixel, the probability of lying at a nucleus centre and the
probability of each cell class given a nucleus. It is a dense form of a patch CNN on
nucleus-centred patches (receptive field ~45 px ≈ 25 µm) and is trained from centre points only:

* nucleus head: binary target = disc of ``target_radius_px`` around every marked nucleus;
* class head: cross-entropy at discs of class-labelled nuclei only (unlabelled nuclei and
  background are ignored), so the quarter of nuclei without a class label teach detection but not
  classification.

Input normalisation: RGB uint8 -> float ``x / 255``, then per-channel ``(x - 0.5) / 0.25``.
"""

from __future__ import annotations

import numpy as np

#: Class order of the class head (the CRCHistoPhenotypes classes, mapped to ``CELL_CLASSES``).
NET_CLASSES: tuple[str, ...] = ("epithelial", "lymphocyte", "fibroblast", "other")


def build_net(width: int = 16):
    """Return the tiny U-Net (``width`` channels at full resolution; ~0.1 M parameters at 16)."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class CellNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            self.e1, self.e2, self.e3 = block(3, w), block(w, 2 * w), block(2 * w, 4 * w)
            self.d2, self.d1 = block(6 * w, 2 * w), block(3 * w, w)
            self.head = nn.Conv2d(w, 1 + len(NET_CLASSES), 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = nn.functional
            e1 = self.e1(x)
            e2 = self.e2(f.max_pool2d(e1, 2))
            e3 = self.e3(f.max_pool2d(e2, 2))
            d2 = self.d2(torch.cat([f.interpolate(e3, size=e2.shape[-2:], mode="bilinear"), e2], 1))
            d1 = self.d1(torch.cat([f.interpolate(d2, size=e1.shape[-2:], mode="bilinear"), e1], 1))
            return self.head(d1)  # (N, 1 + C, H, W): nucleus logit, class logits

    return CellNet()


def normalise(rgb: np.ndarray):
    """uint8 (H, W, 3) or (N, H, W, 3) -> float tensor (N, 3, H, W), the documented normalisation."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(rgb)).float().div_(255.0)
    if x.ndim == 3:
        x = x[None]
    return x.permute(0, 3, 1, 2).sub_(0.5).div_(0.25)


def make_targets(
    shape: tuple[int, int], points_xy: np.ndarray, labels: np.ndarray, radius_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Nucleus target (uint8 0/1) and class target (int64, -1 = ignore) from centre points."""
    h, w = shape
    nuc = np.zeros(shape, dtype=np.uint8)
    cls = np.full(shape, -1, dtype=np.int64)
    r = int(np.ceil(radius_px))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = dy**2 + dx**2 <= radius_px**2
    dy, dx = dy[disc], dx[disc]
    for (x, y), lab in zip(np.round(points_xy).astype(int), labels):
        yy, xx = y + dy, x + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        nuc[yy[ok], xx[ok]] = 1
        if lab >= 0:
            cls[yy[ok], xx[ok]] = lab
    return nuc, cls


def predict_maps(net, rgb: np.ndarray, tile_px: int = 512, overlap_px: int = 32) -> np.ndarray:
    """Run ``net`` over an image of any size; return float32 (1 + C, H, W) probabilities.

    Channel 0 = P(nucleus centre), channels 1.. = P(class | nucleus). Large images are processed
    in overlapping tiles whose borders are discarded.
    """
    import torch

    h, w = rgb.shape[:2]
    out = np.zeros((1 + len(NET_CLASSES), h, w), dtype=np.float32)
    step = tile_px - 2 * overlap_px
    net.eval()
    with torch.inference_mode():
        for y0 in range(0, h, step):
            for x0 in range(0, w, step):
                ya, xa = max(0, y0 - overlap_px), max(0, x0 - overlap_px)
                yb, xb = min(h, y0 + step + overlap_px), min(w, x0 + step + overlap_px)
                tile = rgb[ya:yb, xa:xb]
                ph, pw = (-tile.shape[0]) % 4, (-tile.shape[1]) % 4
                if ph or pw:
                    tile = np.pad(tile, ((0, ph), (0, pw), (0, 0)), mode="reflect")
                logits = net(normalise(tile))[0]
                prob = torch.cat([torch.sigmoid(logits[:1]), torch.softmax(logits[1:], 0)]).numpy()
                yc, xc = min(h, y0 + step), min(w, x0 + step)
                out[:, y0:yc, x0:xc] = prob[:, y0 - ya : yc - ya, x0 - xa : xc - xa]
    return out


def detect_points(
    maps: np.ndarray, min_distance_px: int = 4, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nucleus centres as local maxima of the nucleus map.

    Returns
    -------
    xy : float (N, 2) pixel coordinates (x, y)
    cls : int (N,) index into ``NET_CLASSES`` (argmax of class probability, 3x3 mean)
    prob : float (N, C) class probabilities at the centres
    """
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max

    nuc = ndi.gaussian_filter(maps[0], 1.0)
    peaks = peak_local_max(nuc, min_distance=min_distance_px, threshold_abs=threshold, exclude_border=False)
    cls_maps = ndi.uniform_filter(maps[1:], size=(1, 3, 3))
    prob = cls_maps[:, peaks[:, 0], peaks[:, 1]].T if len(peaks) else np.zeros((0, len(NET_CLASSES)))
    return peaks[:, ::-1].astype(float), prob.argmax(axis=1), prob
