"""Small GeoJSON and image builders shared by the structure tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def feature(coords: list, cls: str | None = "gland", kind: str = "Polygon",
            object_type: str = "annotation") -> dict[str, Any]:
    """A QuPath-style GeoJSON feature."""
    props: dict[str, Any] = {"objectType": object_type}
    if cls is not None:
        props["classification"] = {"name": cls, "color": [255, 0, 0]}
    return {"type": "Feature", "geometry": {"type": kind, "coordinates": coords}, "properties": props}


def square(x0: float, y0: float, x1: float, y1: float) -> list:
    """Closed ring of an axis-aligned rectangle."""
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def write_collection(path: Path, features: list[dict[str, Any]]) -> Path:
    """Write a FeatureCollection."""
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def disc_image(size: int, centres: list[tuple[int, int]], radius: int, seed: int = 0) -> np.ndarray:
    """Pink background with dark purple discs (a clear synthetic structure), uint8 RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    img = np.empty((size, size, 3), np.float32)
    img[:] = (235, 170, 200)
    for cx, cy in centres:
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2] = (90, 40, 140)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def disc_polygon(cx: float, cy: float, radius: float, n: int = 32) -> list:
    """Closed ring approximating a disc (pixel-edge coordinates: centre of pixel c is c + 0.5)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = [[float(cx + 0.5 + radius * np.cos(a)), float(cy + 0.5 + radius * np.sin(a))] for a in t]
    return ring + [ring[0]]


def write_disc_folder(folder: Path, n_images: int, size: int = 96, radius: int = 7, seed: int = 0) -> Path:
    """``n_images`` PNG images of random discs with their GeoJSON ("nucleus")."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n_images):
        centres = [(int(x), int(y)) for x, y in rng.integers(radius + 2, size - radius - 2, (6, 2))]
        Image.fromarray(disc_image(size, centres, radius, seed + i)).save(folder / f"img{i}.png")
        feats = [feature([disc_polygon(cx, cy, radius)], "nucleus") for cx, cy in centres]
        write_collection(folder / f"img{i}.geojson", feats)
    return folder


def write_darkness_model(path: Path, mpp: float, tile_px: int = 64) -> Path:
    """A TorchScript 'gland' segmenter: dark pixels (mean RGB below 0.5) are glands."""
    import warnings

    import torch

    from immunodig.tissue.checkpoint import ModelMetadata, save_torchscript

    class Darkness(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            dark = (0.5 - x.mean(dim=1, keepdim=True)) * 40.0
            return torch.cat([-dark, dark], dim=1)

    meta = ModelMetadata(architecture="torchscript", class_names=["background", "gland"], input_mpp=mpp,
                         tile_size_px=tile_px)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(Darkness())
    return save_torchscript(path, scripted, meta)
