"""Readers for the two annotated nucleus datasets, in the layouts they are published in.

* MoNuSeg (Kumar et al. 2017/2020): ``<id>.tif`` + ``<id>.xml`` (Aperio ImageScope polygons, one
  ``<Region>`` per nucleus) -> RGB image and int32 instance map.
* CRCHistoPhenotypes (Sirinukunwattana et al. 2016): ``imgN/imgN.bmp`` + ``imgN/imgN_<class>.mat``
  centre points (key ``detection``, columns x, y, MATLAB 1-based) -> RGB image and point table.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from immunodig.errors import DatasetError

#: µm/px assumed for MoNuSeg images whose XML carries no ``MicronsPerPixel`` (40x TCGA scans).
MONUSEG_DEFAULT_MPP = 0.25
#: µm/px of CRCHistoPhenotypes images (20x, per the TMI 2016 paper; the BMPs carry none).
CRC_MPP = 0.55
#: CRCHistoPhenotypes class file suffixes, in label order (label 0 = detected but unclassified).
CRC_CLASSES: tuple[str, ...] = ("epithelial", "inflammatory", "fibroblast", "others")
#: A class point within this distance of a detection point labels it (most coincide exactly; a
#: few dozen in the dataset sit 1-3 px off their detection point).
_SAME_POINT_PX = 3.0


@dataclass(frozen=True)
class InstanceImage:
    """One image with its ground-truth instance map."""

    image_id: str
    rgb: np.ndarray  # uint8 (H, W, 3)
    instances: np.ndarray  # int32 (H, W), 0 = background
    mpp: float


@dataclass(frozen=True)
class PointImage:
    """One image with nucleus centre points; ``labels`` index ``CRC_CLASSES`` (-1 = unclassified)."""

    image_id: str
    rgb: np.ndarray  # uint8 (H, W, 3)
    points_xy: np.ndarray  # float (N, 2), 0-based pixel (x=column, y=row)
    labels: np.ndarray  # int (N,), -1 or index into CRC_CLASSES
    mpp: float


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB (alpha dropped, grey expanded)."""
    path = Path(path)
    if path.suffix.lower() in {".tif", ".tiff"}:
        import tifffile

        img = tifffile.imread(path)
    else:
        from skimage.io import imread

        img = imread(path)
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] < 3:
        raise DatasetError(f"{path}: expected an RGB image, got shape {img.shape}")
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def aperio_xml_to_instances(xml_path: str | Path, shape: tuple[int, int]) -> tuple[np.ndarray, float | None]:
    """Rasterise Aperio XML polygons into an instance map.

    Vertices are clipped to the image; where polygons overlap the last-drawn region wins.

    Returns
    -------
    instances : ndarray of int32, shape ``shape``
    mpp : float or None
        ``MicronsPerPixel`` of the root element when present.
    """
    from skimage.draw import polygon

    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"{xml_path}: unreadable Aperio XML ({exc}); re-export the annotation") from exc
    mpp_attr = root.attrib.get("MicronsPerPixel")
    mpp = float(mpp_attr) if mpp_attr not in (None, "") else None
    inst = np.zeros(shape, dtype=np.int32)
    h, w = shape
    label = 0
    for region in root.iter("Region"):
        verts = [(float(v.attrib["X"]), float(v.attrib["Y"])) for v in region.iter("Vertex")]
        if len(verts) < 3:
            continue
        xy = np.asarray(verts)
        xs = np.clip(xy[:, 0], 0, w - 1)
        ys = np.clip(xy[:, 1], 0, h - 1)
        rr, cc = polygon(ys, xs, shape=shape)
        if rr.size == 0:
            continue
        label += 1
        inst[rr, cc] = label
    return inst, mpp


def read_monuseg(folder: str | Path) -> list[InstanceImage]:
    """Read every ``<id>.tif`` with a same-named ``.xml`` in ``folder`` (sorted by id)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder; pass a MoNuSeg-style folder of .tif + .xml")
    out = []
    for tif in sorted(list(folder.glob("*.tif")) + list(folder.glob("*.tiff"))):
        xml = tif.with_suffix(".xml")
        if not xml.exists():
            continue
        rgb = read_rgb(tif)
        inst, mpp = aperio_xml_to_instances(xml, rgb.shape[:2])
        out.append(InstanceImage(tif.stem, rgb, inst, mpp or MONUSEG_DEFAULT_MPP))
    if not out:
        raise DatasetError(f"{folder}: no .tif image with a matching .xml annotation found")
    return out


def _load_points(mat_path: Path) -> np.ndarray:
    import scipy.io

    try:
        arr = scipy.io.loadmat(mat_path)["detection"]
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{mat_path}: expected a MATLAB file with key 'detection' ({exc})") from exc
    arr = np.asarray(arr, dtype=float).reshape(-1, 2)
    return arr - 1.0  # MATLAB 1-based -> 0-based pixel coordinates


def read_crc_image(folder: Path, mpp: float = CRC_MPP) -> PointImage:
    """Read one ``imgN/`` folder of CRCHistoPhenotypes."""
    name = folder.name
    bmp = folder / f"{name}.bmp"
    if not bmp.exists():
        raise DatasetError(f"{folder}: missing {bmp.name}")
    rgb = read_rgb(bmp)
    det_path = folder / f"{name}_detection.mat"
    class_pts = {
        c: _load_points(folder / f"{name}_{c}.mat") for c in CRC_CLASSES if (folder / f"{name}_{c}.mat").exists()
    }
    if det_path.exists():
        det = _load_points(det_path)
    else:
        det = np.concatenate([p for p in class_pts.values()] or [np.zeros((0, 2))])
    labels = np.full(len(det), -1, dtype=int)
    if len(det):
        from scipy.spatial import cKDTree

        tree = cKDTree(det)
        for k, c in enumerate(CRC_CLASSES):
            pts = class_pts.get(c)
            if pts is None or not len(pts):
                continue
            dist, idx = tree.query(pts)
            hit = (dist <= _SAME_POINT_PX) & (labels[idx] == -1)
            labels[idx[hit]] = k
            if (~hit).any():  # class points off every detection point (a few per dataset): add them
                det = np.concatenate([det, pts[~hit]])
                labels = np.concatenate([labels, np.full((~hit).sum(), k)])
                tree = cKDTree(det)
    return PointImage(name, rgb, det, labels, mpp)


def read_crchistophenotypes(folder: str | Path, mpp: float = CRC_MPP) -> list[PointImage]:
    """Read every ``imgN/imgN.bmp`` sub-folder of ``folder`` (sorted by N)."""
    folder = Path(folder)
    subs = [p for p in folder.iterdir() if p.is_dir() and (p / f"{p.name}.bmp").exists()] if folder.is_dir() else []
    if not subs:
        raise DatasetError(f"{folder}: no imgN/imgN.bmp sub-folders found (CRCHistoPhenotypes layout)")

    def key(p: Path) -> tuple[int, str]:
        digits = "".join(ch for ch in p.name if ch.isdigit())
        return (int(digits) if digits else 0, p.name)

    return [read_crc_image(p, mpp) for p in sorted(subs, key=key)]
