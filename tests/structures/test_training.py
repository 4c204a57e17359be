"""A tiny train-segmenter run on generated images beats chance; the CLI lists and runs the commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from immunodig.cli.app import app
from immunodig.errors import MppMismatchError
from immunodig.structures.evaluation import evaluate_folder, grouped_folds
from immunodig.structures.model_file import load_segmenter
from immunodig.structures.training import SegmenterTrainingParams, class_weights, split_for_validation
from tests.structures.helpers import write_disc_folder

#: A small timm encoder through smp (random weights) keeps the run to seconds.
TINY = SegmenterTrainingParams(encoder="tu-mobilenetv3_small_050", decoder_channels=(32, 16, 16, 8, 8), patch_px=64,
                               batch_size=4, patches_per_epoch=16, epochs=4, patience=4, num_threads=1, lr=3e-3)


def test_help_lists_the_commands():
    out = CliRunner().invoke(app, ["--help"]).output
    assert "train-segmenter" in out and "eval-segmenter" in out


def test_validation_is_grouped_by_image_or_a_strip(tmp_path):
    from immunodig.structures.dataset import load_annotated_folder

    regions, _ = load_annotated_folder(write_disc_folder(tmp_path / "d", 4), mpp=0.5)
    train, val, scheme = split_for_validation(regions, seed=0)
    assert len(val) == 1 and not {r.group for r in train} & {r.group for r in val}
    train, val, scheme = split_for_validation(regions[:2], seed=0)
    assert scheme.startswith("bottom 20%") and val[0].labels.shape[0] + train[0].labels.shape[0] == 96
    folds = grouped_folds(["a", "b", "c", "a", "d"], 2, 0)
    assert sorted(sum(folds, [])) == ["a", "b", "c", "d"] and [len(f) for f in folds] == [2, 2]


def test_class_weights_favour_the_rare_class(tmp_path):
    from immunodig.structures.dataset import load_annotated_folder

    regions, _ = load_annotated_folder(write_disc_folder(tmp_path / "d", 2), mpp=0.5)
    w = class_weights(regions, 2)
    assert w[1] > 2 * w[0] and w.mean() == pytest.approx(1.0)


def test_train_segmenter_beats_chance_on_discs(tmp_path):
    from immunodig.structures.training import train_segmenter_folder

    train_dir = write_disc_folder(tmp_path / "train", 4, seed=0)
    test_dir = write_disc_folder(tmp_path / "test", 2, seed=100)
    out = tmp_path / "discs.pt"
    summary = train_segmenter_folder(train_dir, out, mpp=0.5, params=TINY, licence="CC0", log=None)
    assert summary["classes"] == ["nucleus"] and out.exists()
    meta = load_segmenter(out).metadata
    assert meta.class_names == ["background", "nucleus"] and meta.licence == "CC0"
    assert meta.provenance["images"] == [f"img{i}.png" for i in range(4)] and meta.input_mpp == 0.5
    metrics = evaluate_folder(test_dir, out, mpp=0.5)
    # discs cover ~10 % of the pixels: a prevalence-matched random guess scores Dice ~0.1
    assert metrics["per_class"]["nucleus"]["dice"] > 0.7
    with pytest.raises(MppMismatchError, match="works at 0.5 µm/px but --mpp 0.25"):
        evaluate_folder(test_dir, out, mpp=0.25)
    res = CliRunner().invoke(app, ["eval-segmenter", str(test_dir), "--model", str(out), "--mpp", "0.5",
                                   "--json", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "m.json").read_text())
    assert set(saved["per_class"]["nucleus"]) >= {"dice", "iou", "object_f1"}
    assert np.isclose(saved["dice"], metrics["dice"])


def test_cross_validation_scores_every_image_once_by_a_blind_model(tmp_path):
    from dataclasses import replace

    from immunodig.structures.dataset import load_annotated_folder
    from immunodig.structures.evaluation import cross_validate

    regions, classes = load_annotated_folder(write_disc_folder(tmp_path / "d", 3), mpp=0.5)
    out = cross_validate(regions, classes, 0.5, 3, replace(TINY, epochs=2), log=None)
    folds = out["cv"]["folds"]
    assert sorted(sum((f["test_images"] for f in folds), [])) == ["img0", "img1", "img2"]
    assert sorted(r["image_id"] for r in out["per_image"]) == ["img0", "img1", "img2"]
    assert out["per_class"]["nucleus"]["pixels_tp"] + out["per_class"]["nucleus"]["pixels_fn"] == \
        sum(int((r.labels == 1).sum()) for r in regions)


def test_eval_segmenter_needs_a_model_or_cv(tmp_path):
    res = CliRunner().invoke(app, ["eval-segmenter", str(tmp_path), "--mpp", "0.5"])
    assert res.exit_code != 0 and "either --model" in str(res.exception)
