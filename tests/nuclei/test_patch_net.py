"""Nucleus patches and the stain jitter used to train the patch CNNs."""

import numpy as np

from immunodig.nuclei.patch_net import PATCH_PX, _centre_crop, nucleus_patches


def test_patches_are_centred_and_sized():
    rgb = np.full((100, 120, 3), 240, np.uint8)
    rgb[40, 70] = (10, 20, 30)
    p = nucleus_patches(rgb, 0.5, np.array([[70.0, 40.0]]), size=PATCH_PX + 4)
    assert p.shape == (1, PATCH_PX + 4, PATCH_PX + 4, 3)
    c = _centre_crop(p)
    assert c.shape == (1, PATCH_PX, PATCH_PX, 3)
    assert tuple(np.argwhere(c[0, ..., 0] == 10)[0]) == (PATCH_PX // 2, PATCH_PX // 2)
    # resampled to 0.5 µm/px: a 0.25 µm/px image gives the same field of view
    big = np.repeat(np.repeat(rgb, 2, 0), 2, 1)
    assert nucleus_patches(big, 0.25, np.array([[140.0, 80.0]])).shape == (1, PATCH_PX, PATCH_PX, 3)
