"""Tiny slide files, one per failure class, and a drawn pyramid with known geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_pyramid(path: Path, image: np.ndarray, mpp: float | None, levels: int = 3) -> None:
    """Write a tiled JPEG pyramidal TIFF, one page per level (openslide's generic-tiff)."""
    import tifffile

    res = {} if mpp is None else {"resolution": (1e4 / mpp, 1e4 / mpp), "resolutionunit": "CENTIMETER"}
    with tifffile.TiffWriter(path) as tif:
        opts = dict(tile=(256, 256), compression="jpeg", photometric="rgb")
        tif.write(image, **opts, **res)
        for i in range(1, levels):
            f = 2**i
            sub = image[: image.shape[0] // f * f, : image.shape[1] // f * f]
            sub = sub.reshape(sub.shape[0] // f, f, sub.shape[1] // f, f, 3).mean((1, 3))
            tif.write(sub.astype(np.uint8), subfiletype=1, **opts, **res)


@pytest.fixture(scope="session")
def disc_slide(tmp_path_factory) -> tuple[Path, dict]:
    """A 2048 px square slide at 0.25 µm/px with a dark disc of radius 40 µm at (200, 300) µm."""
    mpp = 0.25
    img = np.full((2048, 2048, 3), 240, dtype=np.uint8)
    yy, xx = np.mgrid[0:2048, 0:2048]
    cx, cy, r = 200 / mpp, 300 / mpp, 40 / mpp
    img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r**2] = (60, 30, 120)
    path = tmp_path_factory.mktemp("disc") / "disc.tiff"
    write_pyramid(path, img, mpp)
    return path, {"mpp": mpp, "cx_um": 200.0, "cy_um": 300.0, "r_um": 40.0}


@pytest.fixture()
def bad_files(tmp_path: Path, disc_slide) -> dict[str, Path]:
    """One file per failure mode."""
    from PIL import Image

    out = {}
    flat = np.full((64, 64, 3), 200, np.uint8)
    Image.fromarray(flat).save(tmp_path / "flat.jpg")
    out["jpeg"] = tmp_path / "flat.jpg"
    Image.fromarray(flat).save(tmp_path / "flat.png")
    out["png"] = tmp_path / "flat.png"
    (tmp_path / "empty.svs").write_bytes(b"")
    out["empty"] = tmp_path / "empty.svs"
    data = disc_slide[0].read_bytes()
    (tmp_path / "truncated.tiff").write_bytes(data[: len(data) // 3])
    out["truncated"] = tmp_path / "truncated.tiff"
    out["missing"] = tmp_path / "nope.svs"
    no_mpp = tmp_path / "no_mpp.tiff"
    write_pyramid(no_mpp, np.full((512, 512, 3), 200, np.uint8), None, levels=2)
    out["no_mpp"] = no_mpp
    return out
