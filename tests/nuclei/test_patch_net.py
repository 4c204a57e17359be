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


def test_inference_form_gives_the_trained_networks_probabilities():
    import torch

    from immunodig.nuclei.patch_net import build_patch_net, inference_net, predict_patch_net

    torch.manual_seed(0)
    net = build_patch_net(5)
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding them matters
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    net.eval()
    patches = np.random.default_rng(0).integers(0, 256, (300, PATCH_PX + 4, PATCH_PX + 4, 3), dtype=np.uint8)
    fast = inference_net(net)
    for mirror in (False, True):
        ref = predict_patch_net(net, patches, mirror=mirror, batch_size=1024)
        got = predict_patch_net(fast, patches, mirror=mirror)
        assert got.shape == (300, 5)
        np.testing.assert_allclose(got, ref, atol=1e-5)
    assert not np.allclose(predict_patch_net(fast, patches, mirror=True), predict_patch_net(fast, patches))
    assert predict_patch_net(fast, patches[:0]).shape == (0, 5)
