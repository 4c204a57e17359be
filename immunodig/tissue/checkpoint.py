"""Tissue-classifier model files: format, metadata, save/load and class-name mapping.

Format (``format = "immunodig.tissue-classifier"``, ``version = 1``)
--------------------------------------------------------------------
A model file is a ``torch.save`` dictionary readable with ``torch.load(weights_only=True)``
(only tensors, strings, numbers, lists and dicts; no pickled code)::

    {"format": "immunodig.tissue-classifier", "version": 1,
     "metadata": {...ModelMetadata fields...},
     "state_dict": {name: tensor}}

``metadata.architecture`` says how ``state_dict`` is interpreted: a torchvision model name
(``resnet18``, ``resnet50``, ``efficientnet_b0``, ... built with ``weights=None``), ``smallcnn``
(immunodig's compact CNN), ``features-logistic`` / ``features-trees`` (hand-crafted features with a
linear or tree-ensemble head stored as arrays).

TorchScript files (``torch.jit.save``) are accepted too; their metadata comes from the extra file
``immunodig.json`` inside the archive or, failing that, a side-car JSON ``<model file>.json``.
A bare ``state_dict`` file (a dict of tensors) is accepted with a side-car JSON as well.

Class names are the model's own output order; they are mapped to the Kather-9 vocabulary
(``KATHER_CLASSES``) through :data:`CLASS_SYNONYMS`, so "tumor", "Stroma" or "lymphocytes" work.
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from immunodig.errors import ModelFileError, UnknownClassError
from immunodig.vocab import KATHER_CLASSES

CHECKPOINT_FORMAT = "immunodig.tissue-classifier"
CHECKPOINT_VERSION = 1
TORCHSCRIPT_METADATA_NAME = "immunodig.json"

#: Accepted spellings (lower case, non-letters removed) of each Kather-9 class.
CLASS_SYNONYMS: dict[str, str] = {
    **{c.lower(): c for c in KATHER_CLASSES},
    "adipose": "ADI", "adiposetissue": "ADI", "fat": "ADI",
    "background": "BACK", "bg": "BACK", "glass": "BACK",
    "debris": "DEB", "necrosis": "DEB", "necrotic": "DEB", "debrisnecrosis": "DEB",
    "lymphocytes": "LYM", "lymphocyte": "LYM", "lympho": "LYM", "immune": "LYM",
    "mucus": "MUC", "mucin": "MUC", "mucous": "MUC",
    "muscle": "MUS", "smoothmuscle": "MUS",
    "normal": "NORM", "mucosa": "NORM", "normalmucosa": "NORM", "normalcolonmucosa": "NORM",
    "stroma": "STR", "cancerassociatedstroma": "STR", "stro": "STR",
    "tumor": "TUM", "tumour": "TUM", "tumorepithelium": "TUM", "tumourepithelium": "TUM",
    "adenocarcinoma": "TUM", "cancer": "TUM",
}


@dataclass
class ModelMetadata:
    """What a model file must say about itself.

    Parameters
    ----------
    architecture : str
        How the weights are interpreted (see module docstring).
    class_names : list of str
        Output classes in the model's own order and spelling.
    input_mpp : float
        Microns per pixel the model was trained at.
    tile_size_px : int
        Tile edge in pixels the model expects.
    mean, std : list of float
        Per-channel normalisation applied to RGB scaled to [0, 1] (CNNs only).
    output : str
        ``logits`` (softmax is applied) or ``probabilities``.
    provenance : dict
        Training data, script, seed, date, code version.
    metrics : dict
        Validation / cross-validated metrics (e.g. balanced accuracy with a 95 % CI).
    licence : str
        Licence of the training data (and of the weights).
    extra : dict
        Architecture-specific settings (e.g. ``feature_version``, ``width``).
    """

    architecture: str
    class_names: list[str]
    input_mpp: float = 0.5
    tile_size_px: int = 224
    mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    output: str = "logits"
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    licence: str = "unknown"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> "ModelMetadata":
        """Validate a metadata dict; ``source`` names the file in error messages."""
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("architecture", "class_names") if k not in data]
        if missing:
            raise ModelFileError(
                f"{source}: metadata lacks {missing}; a model file must state at least its "
                "architecture and class_names (see docs/tissue.md)")
        meta = cls(**{k: v for k, v in data.items() if k in known})
        if meta.output not in ("logits", "probabilities"):
            raise ModelFileError(f"{source}: metadata output={meta.output!r}; use 'logits' or 'probabilities'")
        if not (0.05 <= float(meta.input_mpp) <= 20):
            raise ModelFileError(f"{source}: metadata input_mpp={meta.input_mpp} outside 0.05-20 µm/px")
        if len(meta.mean) != 3 or len(meta.std) != 3 or min(meta.std) <= 0:
            raise ModelFileError(f"{source}: metadata mean/std must be 3 values each, std > 0")
        return meta

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON representation."""
        return asdict(self)


def kather_code(name: str) -> str | None:
    """Kather-9 code of a class name or synonym (case and punctuation ignored), else ``None``."""
    return CLASS_SYNONYMS.get(re.sub(r"[^a-z]", "", name.lower()))


def kather_index_map(class_names: list[str] | tuple[str, ...], source: str) -> np.ndarray:
    """Index into ``KATHER_CLASSES`` of every model output.

    Raises
    ------
    UnknownClassError
        Naming ``source`` (the file) and the first unknown class name.
    """
    out = []
    for i, name in enumerate(class_names):
        code = kather_code(str(name))
        if code is None:
            raise UnknownClassError(
                f"{source}: class name {name!r} (output {i}) is neither a Kather-9 class nor a "
                f"known synonym; rename it in the model's class_names to one of "
                f"{', '.join(KATHER_CLASSES)}")
        out.append(KATHER_CLASSES.index(code))
    return np.asarray(out, dtype=np.int64)


@dataclass
class LoadedModelFile:
    """Raw content of a model file: metadata plus a state dict or a TorchScript module."""

    metadata: ModelMetadata
    state_dict: dict[str, Any] | None
    scripted: Any | None
    path: Path


def save_checkpoint(path: str | Path, metadata: ModelMetadata, state_dict: dict[str, Any]) -> Path:
    """Write a model file atomically (temporary name, then ``os.replace``).

    Parameters
    ----------
    path : str or Path
        Destination (``.pt`` by convention).
    metadata : ModelMetadata
        Validated metadata.
    state_dict : dict
        Tensors (``model.state_dict()`` or arrays of a feature head).
    """
    import os

    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ModelMetadata.from_dict(metadata.to_dict(), str(path))
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "metadata": json.loads(json.dumps(metadata.to_dict())),
        "state_dict": {k: v.detach().cpu().contiguous() if hasattr(v, "detach") else torch.as_tensor(v)
                       for k, v in state_dict.items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def save_torchscript(path: str | Path, module: Any, metadata: ModelMetadata) -> Path:
    """Save a ``torch.jit.ScriptModule`` with the metadata embedded as ``immunodig.json``."""
    import os

    import torch

    path = Path(path)
    ModelMetadata.from_dict(metadata.to_dict(), str(path))
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(module, str(tmp), _extra_files={TORCHSCRIPT_METADATA_NAME: json.dumps(metadata.to_dict())})
    os.replace(tmp, path)
    return path


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in n or n.startswith("code/") for n in zf.namelist())


def _sidecar_metadata(path: Path) -> dict[str, Any] | None:
    for cand in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if cand.exists() and cand != path:
            try:
                return json.loads(cand.read_text())
            except json.JSONDecodeError as exc:
                raise ModelFileError(f"{cand}: side-car metadata is not valid JSON ({exc})") from exc
    return None


def load_model_file(path: str | Path) -> LoadedModelFile:
    """Read a model file of any accepted kind (see module docstring).

    Raises
    ------
    ModelFileError
        File missing, unreadable, or without usable metadata.
    UnknownClassError
        A class name outside the Kather-9 vocabulary.
    """
    import torch

    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise ModelFileError(f"{src}: model file not found; pass an existing file or omit --model "
                             "to use the shipped default")
    if _is_torchscript(path):
        extra = {TORCHSCRIPT_METADATA_NAME: ""}
        try:
            with warnings.catch_warnings():  # torch >= 2.9 flags TorchScript as deprecated
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(src, map_location="cpu", _extra_files=extra)
        except Exception as exc:  # torch raises RuntimeError subclasses of many kinds
            raise ModelFileError(f"{src}: TorchScript file could not be loaded ({exc})") from exc
        raw = json.loads(extra[TORCHSCRIPT_METADATA_NAME]) if extra[TORCHSCRIPT_METADATA_NAME] else None
        raw = raw or _sidecar_metadata(path)
        if raw is None:
            raise ModelFileError(
                f"{src}: TorchScript model without metadata; add {path.name}.json beside it with "
                "architecture, class_names, input_mpp, tile_size_px, mean, std (docs/tissue.md)")
        meta = ModelMetadata.from_dict({**raw, "architecture": "torchscript"}, src)
        kather_index_map(meta.class_names, src)
        return LoadedModelFile(meta, None, module.eval(), path)
    try:
        payload = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(
            f"{src}: not a readable model file ({type(exc).__name__}: {exc}); expected an immunodig "
            "checkpoint, a TorchScript file or a state dict with side-car JSON") from exc
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        if int(payload.get("version", 0)) > CHECKPOINT_VERSION:
            raise ModelFileError(f"{src}: checkpoint version {payload['version']} is newer than this "
                                 f"immunodig understands ({CHECKPOINT_VERSION}); upgrade immunodig")
        meta = ModelMetadata.from_dict(payload["metadata"], src)
        state = payload["state_dict"]
    elif isinstance(payload, dict) and all(isinstance(v, torch.Tensor) for v in payload.values()):
        raw = _sidecar_metadata(path)
        if raw is None:
            raise ModelFileError(
                f"{src}: a bare state dict without metadata; add {path.name}.json beside it with "
                "architecture, class_names, input_mpp, tile_size_px, mean, std (docs/tissue.md)")
        meta = ModelMetadata.from_dict(raw, src)
        state = payload
    else:
        raise ModelFileError(f"{src}: unrecognised content (no 'format': '{CHECKPOINT_FORMAT}' key)")
    kather_index_map(meta.class_names, src)
    state = {re.sub(r"^(module\.|model\.)", "", k): v for k, v in state.items()}
    return LoadedModelFile(meta, state, None, path)
