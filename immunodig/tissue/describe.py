"""``describe-model``: check a foreign model file against its metadata and write its side file.

The weights are loaded and the network rebuilt exactly as :func:`load_tissue_classifier` would
(so a file that describes cleanly also loads), one forward pass on two random tiles checks the
input size and the number of outputs, and the metadata is written to ``<model file>.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from immunodig.errors import ModelMetadataError
from immunodig.io import atomic_path
from immunodig.tissue.checkpoint import CHECKPOINT_FORMAT, ModelMetadata, kather_code, load_model_file, sidecar_path
from immunodig.tissue.layouts import is_tiatoolbox

#: TIAToolbox feeds unnormalised pixel values (0-255) to its patch classifiers.
TIATOOLBOX_MEAN = [0.0, 0.0, 0.0]
TIATOOLBOX_STD = [1.0 / 255.0] * 3


@dataclass
class ModelDescription:
    """What :func:`describe_model` found in a model file."""

    path: Path
    container: str
    metadata: ModelMetadata
    n_outputs: int
    input_shape: tuple[Any, ...]
    n_parameters: int | None
    dropped_keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    side_file: Path | None = None

    def lines(self) -> list[str]:
        """Human-readable summary."""
        m = self.metadata
        mapping = ", ".join(f"{c}->{kather_code(c)}" for c in m.class_names)
        out = [f"{self.path.name}: layout {m.layout}, container {self.container}, architecture {m.architecture}",
               f"  outputs: {self.n_outputs} ({m.output}); classes {mapping}",
               f"  input: float {self.input_shape} NCHW = {m.tile_size_px} px tiles at {m.input_mpp} µm/px, "
               f"normalised (x/255 - {m.mean}) / {m.std}"]
        if self.n_parameters is not None:
            out.append(f"  parameters: {self.n_parameters:,}")
        if self.dropped_keys:
            out.append(f"  ignored keys outside the network: {', '.join(self.dropped_keys)}")
        out += [f"  note: {n}" for n in self.notes]
        out.append(f"  wrote {self.side_file}" if self.side_file else "  side file not written")
        return out


def describe_model(path: str | Path, *, architecture: str | None = None,
                   class_names: list[str] | None = None, input_mpp: float | None = None,
                   tile_size_px: int | None = None, mean: list[float] | None = None,
                   std: list[float] | None = None, layout: str | None = None,
                   output: str | None = None, licence: str | None = None,
                   write: bool = True) -> ModelDescription:
    """Load ``path`` with the given metadata, check it and (by default) write its side file.

    Arguments left ``None`` come from the existing side file or the file itself (Lightning
    hyper-parameters, embedded TorchScript/ONNX metadata). For TIAToolbox state dicts without
    ``mean``/``std``, TIAToolbox's own input convention (pixel values 0-255) is used; for
    TorchScript/ONNX without ``output``, it is inferred from the forward pass (rows that are
    non-negative and sum to 1 are probabilities).

    Raises
    ------
    WeightsMismatchError
        The weights do not fit the architecture (lists missing/unexpected keys and shapes).
    ModelMetadataError
        Metadata missing or invalid, or the model's outputs do not match the class names.
    """
    from immunodig.tissue.classifier import classifier_from_loaded

    path = Path(path)
    overrides = {"architecture": architecture, "class_names": class_names, "input_mpp": input_mpp,
                 "tile_size_px": tile_size_px, "mean": mean, "std": std, "layout": layout,
                 "output": output, "licence": licence}
    loaded = load_model_file(path, overrides)
    notes: list[str] = []
    side = sidecar_path(path)
    side_raw = json.loads(side.read_text()) if side is not None else {}
    tia = loaded.metadata.layout == "tiatoolbox" or (
        loaded.metadata.layout is None and is_tiatoolbox(loaded.state_dict or {}))
    if tia and mean is None and std is None and not {"mean", "std"} & set(side_raw):
        loaded.metadata.mean, loaded.metadata.std = list(TIATOOLBOX_MEAN), list(TIATOOLBOX_STD)
        notes.append("TIAToolbox feeds pixel values 0-255 unnormalised: mean 0, std 1/255 used; "
                     "pass --mean/--std if the model was trained otherwise")
    clf = classifier_from_loaded(loaded)
    meta = clf.metadata
    t = clf.tile_size_px
    tiles = np.random.default_rng(0).integers(0, 256, (2, t, t, 3), dtype=np.uint8)
    raw = clf.raw_outputs(tiles)
    if raw.ndim != 2 or raw.shape[1] != len(meta.class_names):
        raise ModelMetadataError(
            f"{path}: the model gives outputs of shape {tuple(raw.shape)} for 2 tiles but "
            f"{len(meta.class_names)} class names are given; give one class name per output")
    if meta.layout == "tiatoolbox":
        notes.append("TIAToolbox CNNModel ends with a softmax: output is probabilities")
    elif meta.layout in ("torchscript", "onnx") and output is None and "output" not in side_raw:
        looks = bool(np.all(raw >= 0) and np.allclose(raw.sum(axis=1), 1.0, atol=1e-4))
        meta.output = "probabilities" if looks else "logits"
        notes.append(f"outputs {'are' if looks else 'are not'} non-negative rows summing to 1: "
                     f"output taken as {meta.output} (pass --output to override)")
    n_params = (sum(int(p.numel()) for p in clf.model.parameters()) if hasattr(clf, "model") else None)
    input_shape = getattr(clf, "input_shape", None) or ("N", 3, t, t)
    desc = ModelDescription(path, loaded.container, meta, int(raw.shape[1]), tuple(input_shape),
                            n_params, loaded.dropped_keys, notes)
    if loaded.container == "immunodig checkpoint":
        notes.append(f"an {CHECKPOINT_FORMAT} file carries its metadata inside; no side file needed")
    elif write:
        desc.side_file = write_side_file(path, meta)
    return desc


def write_side_file(path: str | Path, metadata: ModelMetadata) -> Path:
    """Write ``<model file>.json`` atomically; returns its path."""
    path = Path(path)
    target = path.with_name(path.name + ".json")
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(metadata.to_dict(), indent=2) + "\n")
    return target


def parse_values(text: str | None, kind: type, option: str) -> list | None:
    """Comma-separated option value as a list of ``kind`` (``None`` stays ``None``).

    Raises
    ------
    ModelMetadataError
        A value that is not a ``kind``.
    """
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        return [kind(t) for t in items]
    except ValueError as exc:
        raise ModelMetadataError(f"{option} {text!r}: expected comma-separated {kind.__name__} values") from exc
