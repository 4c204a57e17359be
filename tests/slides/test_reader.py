"""Slide reading in physical units and the error for every failure class."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.errors import NoMppError, SlideError
from immunodig.slides import Slide


def test_real_aperio_slide(cmu_slide):
    with Slide(cmu_slide) as s:
        assert s.vendor == "aperio"
        assert s.mpp == pytest.approx(0.499)
        assert s.dimensions == (2220, 2967)
        assert s.fingerprint.startswith("s_") and len(s.fingerprint) == 18
        assert "cmu" not in s.fingerprint
        tile = s.read(0, 0, (224, 224), 0.5)
        assert tile.shape == (224, 224, 3) and tile.dtype == np.uint8


def test_metadata_is_whitelisted(cmu_slide):
    with Slide(cmu_slide) as s:
        props = s.properties
    assert "openslide.mpp-x" in props
    # the Aperio ImageDescription names the source slide, scan date and user: never kept
    assert not any("comment" in k or "ImageDescription" in k or "Date" in k for k in props)


@pytest.mark.parametrize("mpp", [0.25, 0.5, 1.0, 2.0, 0.7])
def test_drawn_disc_keeps_its_size_in_um(disc_slide, mpp):
    path, truth = disc_slide
    with Slide(path) as s:
        assert s.level_count == 3
        assert s.mpp == pytest.approx(truth["mpp"], rel=1e-6)
        size = int(round(200 / mpp))
        img = s.read_um(truth["cx_um"] - 100, truth["cy_um"] - 100, (size, size), mpp)
    dark = img.mean(axis=-1) < 150
    area_um2 = dark.sum() * mpp**2
    assert area_um2 == pytest.approx(np.pi * truth["r_um"] ** 2, rel=0.08)
    ys, xs = np.nonzero(dark)
    # centroid lands in the middle of the window, within one output pixel
    assert xs.mean() * mpp == pytest.approx(100, abs=mpp * 1.5)
    assert ys.mean() * mpp == pytest.approx(100, abs=mpp * 1.5)


def test_best_level_is_coarsest_fine_enough(disc_slide):
    with Slide(disc_slide[0]) as s:
        assert s.best_level(0.25) == 0
        assert s.best_level(0.5) == 1
        assert s.best_level(0.9) == 1
        assert s.best_level(5.0) == 2


def test_outside_slide_is_white(disc_slide):
    with Slide(disc_slide[0]) as s:
        w, h = s.dimensions
        img = s.read(w - 10, h - 10, (40, 40), s.mpp)
    assert (img[20:, 20:] == 255).all()


@pytest.mark.parametrize(
    "kind,reason",
    [("jpeg", "unsupported"), ("png", "unsupported"), ("empty", "unsupported"),
     ("truncated", "corrupt"), ("missing", "not_found")],
)
def test_bad_files_raise_with_reason(bad_files, kind, reason):
    with pytest.raises(SlideError) as info:
        s = Slide(bad_files[kind])
        s.read(0, 0, (512, 512), s.mpp)  # a truncated file may open and fail on decode
    assert info.value.reason == reason
    assert str(bad_files[kind].name) in str(info.value)


def test_missing_mpp_needs_override(bad_files):
    with pytest.raises(NoMppError, match="--mpp"):
        Slide(bad_files["no_mpp"])
    with Slide(bad_files["no_mpp"], mpp=0.3) as s:
        assert s.mpp == 0.3 and s.mpp_source == "override"


def test_unicode_file_name(disc_slide, tmp_path):
    p = tmp_path / "coupe_é_ü.tiff"
    p.write_bytes(disc_slide[0].read_bytes())
    with Slide(p) as s:
        assert s.fingerprint == Slide(disc_slide[0]).fingerprint


@pytest.mark.parametrize("dpi", [72, 96])
def test_generic_tiff_dpi_default_is_refused_as_implausible(tmp_path, dpi):
    """A 72/96-dpi default resolution (352.8 / 264.6 µm/px, like openslide's boxes.tiff) is not a
    microscopy scan: refused with reason mpp_implausible and the --mpp hint, usable with --mpp."""
    from .conftest import write_pyramid

    path = tmp_path / "boxes.tiff"
    write_pyramid(path, np.full((512, 512, 3), 200, np.uint8), mpp=25400.0 / dpi, levels=1)
    with pytest.raises(SlideError, match="--mpp") as info:
        Slide(path)
    assert info.value.reason == "mpp_implausible" and "boxes.tiff" in str(info.value)
    with Slide(path, mpp=0.5) as s:
        assert s.mpp == 0.5 and s.mpp_source == "override"


def test_mpp_override_must_be_plausible():
    from immunodig.config import BuildConfig
    from immunodig.errors import ConfigError

    with pytest.raises(ConfigError, match="--mpp 5"):
        BuildConfig(mpp_override=5.0)
    assert BuildConfig(mpp_override=0.25).mpp_override == 0.25
