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

Files from other libraries are accepted with their metadata in a side-car JSON
``<model file>.json`` (or ``<stem>.json``), which ``python cli.py describe-model`` writes:

- state dicts of TIAToolbox ``CNNModel``, torchvision and timm classifiers, bare or inside a
  PyTorch Lightning checkpoint or a training-loop dict, with ``module.`` / ``model.`` / ``net.``
  prefixes (see :mod:`immunodig.tissue.layouts`); ``metadata.layout`` names the layout when the
  keys are ambiguous, Lightning ``hyper_parameters`` fill in what the side file does not say;
- TorchScript files (``torch.jit.save``), metadata also read from the extra file
  ``immunodig.json`` inside the archive;
- ONNX files (``.onnx``, run with onnxruntime on the CPU), metadata also read from the model's
  ``immunodig.json`` metadata property.

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

from immunodig.errors import ModelFileError, ModelMetadataError, UnknownClassError
from immunodig.io import atomic_path
from immunodig.vocab import KATHER_CLASSES

CHECKPOINT_FORMAT = "immunodig.tissue-classifier"
CHECKPOINT_VERSION = 1
TORCHSCRIPT_METADATA_NAME = "immunodig.json"
#: Name of the metadata entry embedded in TorchScript (extra file) and ONNX (metadata property).
EMBEDDED_METADATA_NAME = TORCHSCRIPT_METADATA_NAME
#: Lightning hyper-parameter names read as metadata fields (besides the field names themselves).
HYPER_PARAMETER_ALIASES: dict[str, str] = {
    "arch": "architecture", "backbone": "architecture", "model_name": "architecture",
    "classes": "class_names", "labels": "class_names", "mpp": "input_mpp",
    "tile_size": "tile_size_px", "patch_size": "tile_size_px", "img_size": "tile_size_px",
    "image_size": "tile_size_px",
}

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
    layout : str or None
        How a state dict is laid out (``torchvision``, ``timm``, ``tiatoolbox``, ``immunodig``;
        see :mod:`immunodig.tissue.layouts`) or the file format (``torchscript``, ``onnx``);
        ``None`` detects it from the keys.
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
    layout: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> "ModelMetadata":
        """Validate a metadata dict; ``source`` names the file in error messages."""
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("architecture", "class_names") if k not in data]
        if missing:
            raise ModelMetadataError(
                f"{source}: metadata lacks {missing}; a model file must state at least its "
                "architecture and class_names (python cli.py describe-model writes them; "
                "docs/tissue.md)")
        meta = cls(**{k: v for k, v in data.items() if k in known})
        meta.class_names = [str(c) for c in meta.class_names]
        meta.mean, meta.std = [float(v) for v in meta.mean], [float(v) for v in meta.std]
        if meta.output not in ("logits", "probabilities"):
            raise ModelMetadataError(f"{source}: metadata output={meta.output!r}; use 'logits' or 'probabilities'")
        if not (0.05 <= float(meta.input_mpp) <= 20):
            raise ModelMetadataError(f"{source}: metadata input_mpp={meta.input_mpp} outside 0.05-20 µm/px")
        if len(meta.mean) != 3 or len(meta.std) != 3 or min(meta.std) <= 0:
            raise ModelMetadataError(f"{source}: metadata mean/std must be 3 values each, std > 0")
        from immunodig.tissue.layouts import LAYOUTS

        if meta.layout is not None and meta.layout not in LAYOUTS:
            raise ModelMetadataError(f"{source}: metadata layout={meta.layout!r}; use one of "
                                     f"{', '.join(LAYOUTS)} or leave it out to detect it")
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
    """Raw content of a model file: metadata plus a state dict, a TorchScript module or an
    onnxruntime session.

    Attributes
    ----------
    container : str
        What held the weights (``immunodig checkpoint``, ``lightning``, ``state dict``, ...).
    dropped_keys : list of str
        State-dict keys outside the network (e.g. a Lightning module's loss weights).
    """

    metadata: ModelMetadata
    state_dict: dict[str, Any] | None
    scripted: Any | None
    path: Path
    onnx_session: Any | None = None
    container: str = "immunodig checkpoint"
    dropped_keys: list[str] = field(default_factory=list)


def save_checkpoint(path: str | Path, metadata: ModelMetadata, state_dict: dict[str, Any],
                    fmt: str = CHECKPOINT_FORMAT) -> Path:
    """Write a model file atomically (:func:`immunodig.io.atomic_path`).

    Parameters
    ----------
    path : str or Path
        Destination (``.pt`` by convention).
    metadata : ModelMetadata
        Validated metadata.
    state_dict : dict
        Tensors (``model.state_dict()`` or arrays of a feature head).
    fmt : str
        The ``format`` key (another kind of model, e.g. a structure segmenter, names its own).
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ModelMetadata.from_dict(metadata.to_dict(), str(path))
    payload = {
        "format": fmt,
        "version": CHECKPOINT_VERSION,
        "metadata": json.loads(json.dumps(metadata.to_dict())),
        "state_dict": {k: v.detach().cpu().contiguous() if hasattr(v, "detach") else torch.as_tensor(v)
                       for k, v in state_dict.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def save_torchscript(path: str | Path, module: Any, metadata: ModelMetadata) -> Path:
    """Save a ``torch.jit.ScriptModule`` with the metadata embedded as ``immunodig.json``."""
    import torch

    path = Path(path)
    ModelMetadata.from_dict(metadata.to_dict(), str(path))
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(module, str(tmp),
                       _extra_files={TORCHSCRIPT_METADATA_NAME: json.dumps(metadata.to_dict())})
    return path


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding ``code/``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in n or n.startswith("code/") for n in zf.namelist())


def sidecar_path(path: str | Path) -> Path | None:
    """The side-car JSON of a model file (``<file>.json``, else ``<stem>.json``) if one exists."""
    path = Path(path)
    for cand in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if cand.exists() and cand != path:
            return cand
    return None


def model_content_sha256(path: str | Path) -> str:
    """Content hash of a model file and its side-car JSON (the model file's own SHA-256 when
    it has none), so editing the side file changes the run key."""
    import hashlib

    from immunodig.provenance import file_sha256

    digest = file_sha256(path)
    side = sidecar_path(path)
    if side is None:
        return digest
    return hashlib.sha256((digest + file_sha256(side)).encode()).hexdigest()


def sidecar_metadata(path: Path) -> dict[str, Any] | None:
    """The side-car JSON object of a model file, or None when there is none (invalid JSON or
    a non-object is refused)."""
    cand = sidecar_path(path)
    if cand is None:
        return None
    try:
        raw = json.loads(cand.read_text())
    except json.JSONDecodeError as exc:
        raise ModelMetadataError(f"{cand}: side-car metadata is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ModelMetadataError(f"{cand}: side-car metadata must be a JSON object")
    return raw


def metadata_from_hyper_parameters(hp: dict[str, Any]) -> dict[str, Any]:
    """Metadata fields found among Lightning hyper-parameters (names or
    :data:`HYPER_PARAMETER_ALIASES`); values of the wrong type are ignored."""
    known = {f.name for f in fields(ModelMetadata)}
    out: dict[str, Any] = {}
    for key, value in hp.items():
        name = key if key in known else HYPER_PARAMETER_ALIASES.get(key)
        if name is None or name in out:
            continue
        if name == "architecture" and isinstance(value, str):
            out[name] = value
        elif name == "class_names" and isinstance(value, (list, tuple)) and value:
            out[name] = [str(v) for v in value]
        elif name in ("input_mpp",) and isinstance(value, (int, float)):
            out[name] = float(value)
        elif name == "tile_size_px" and isinstance(value, int):
            out[name] = value
        elif name in ("mean", "std") and isinstance(value, (list, tuple)) and len(value) == 3:
            out[name] = [float(v) for v in value]
        elif name in ("output", "licence", "layout") and isinstance(value, str):
            out[name] = value
    return out


def _needs_metadata(src: str, path: Path, what: str) -> ModelMetadataError:
    return ModelMetadataError(
        f"{src}: {what} without metadata; add {path.name}.json beside it with architecture, "
        "class_names, input_mpp, tile_size_px, mean, std, or write it with "
        f"'python cli.py describe-model {path.name} --architecture ... --classes ...' (docs/tissue.md)")


def _load_torchscript(path: Path, overrides: dict[str, Any]) -> LoadedModelFile:
    import torch

    src = str(path)
    extra = {EMBEDDED_METADATA_NAME: ""}
    try:
        with warnings.catch_warnings():  # torch >= 2.9 flags TorchScript as deprecated
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(src, map_location="cpu", _extra_files=extra)
    except Exception as exc:  # torch raises RuntimeError subclasses of many kinds
        raise ModelFileError(f"{src}: TorchScript file could not be loaded ({exc})") from exc
    embedded = json.loads(extra[EMBEDDED_METADATA_NAME]) if extra[EMBEDDED_METADATA_NAME] else {}
    raw = {**embedded, **(sidecar_metadata(path) or {}), **overrides}
    if not raw:
        raise _needs_metadata(src, path, "TorchScript model")
    meta = ModelMetadata.from_dict({**raw, "architecture": "torchscript", "layout": "torchscript"}, src)
    return LoadedModelFile(meta, None, module.eval(), path, container="torchscript")


def _load_onnx(path: Path, overrides: dict[str, Any]) -> LoadedModelFile:
    src = str(path)
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelFileError(f"{src}: ONNX models need onnxruntime (pip install onnxruntime)") from exc
    try:
        session = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelFileError(f"{src}: ONNX file could not be loaded ({exc})") from exc
    embedded = session.get_modelmeta().custom_metadata_map.get(EMBEDDED_METADATA_NAME)
    raw = {**(json.loads(embedded) if embedded else {}), **(sidecar_metadata(path) or {}), **overrides}
    if not raw:
        raise _needs_metadata(src, path, "ONNX model")
    meta = ModelMetadata.from_dict({**raw, "architecture": "onnx", "layout": "onnx"}, src)
    return LoadedModelFile(meta, None, None, path, onnx_session=session, container="onnx")


def load_model_file(path: str | Path, overrides: dict[str, Any] | None = None) -> LoadedModelFile:
    """Read a model file of any accepted kind (see module docstring).

    Parameters
    ----------
    path : str or Path
        The model file.
    overrides : dict, optional
        Metadata fields that take precedence over the side file and the file's own metadata
        (used by ``describe-model``).

    Raises
    ------
    ModelFileError
        File missing, unreadable, or without usable metadata (:class:`ModelMetadataError`).
    UnknownClassError
        A class name outside the Kather-9 vocabulary.
    """
    path = Path(path)
    src = str(path)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if not path.is_file():
        raise ModelFileError(f"{src}: model file not found; pass an existing file or omit --model "
                             "to use the shipped default")
    side = sidecar_metadata(path) or {}
    if path.suffix.lower() == ".onnx" or {**side, **overrides}.get("layout") == "onnx":
        loaded = _load_onnx(path, overrides)
    elif is_torchscript(path):
        loaded = _load_torchscript(path, overrides)
    else:
        loaded = _load_state_dict_file(path, side, overrides)
    kather_index_map(loaded.metadata.class_names, src)
    return loaded


def _load_state_dict_file(path: Path, side: dict[str, Any], overrides: dict[str, Any]) -> LoadedModelFile:
    import torch

    from immunodig.tissue.layouts import strip_wrapper_prefixes, unwrap_state_dict

    src = str(path)
    try:
        payload = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(
            f"{src}: not a readable model file ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "expected an immunodig checkpoint, a state dict (bare, Lightning or training-loop dict) "
            "readable with torch.load(weights_only=True), a TorchScript or an ONNX file; a file "
            "that pickles Python objects must be re-saved as model.state_dict()") from exc
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        if int(payload.get("version", 0)) > CHECKPOINT_VERSION:
            raise ModelFileError(f"{src}: checkpoint version {payload['version']} is newer than this "
                                 f"immunodig understands ({CHECKPOINT_VERSION}); upgrade immunodig")
        meta = ModelMetadata.from_dict({**payload["metadata"], **overrides}, src)
        state, dropped = strip_wrapper_prefixes(dict(payload["state_dict"]))
        return LoadedModelFile(meta, state, None, path, dropped_keys=dropped)
    unwrapped = unwrap_state_dict(payload)
    if unwrapped is None:
        raise ModelFileError(f"{src}: unrecognised content (no 'format': '{CHECKPOINT_FORMAT}' key, "
                             "no state dict of tensors, not TorchScript)")
    raw = {**metadata_from_hyper_parameters(unwrapped.hyper_parameters), **side, **overrides}
    if not raw:
        what = "a Lightning checkpoint" if unwrapped.container == "lightning" else "a state dict"
        raise _needs_metadata(src, path, what)
    meta = ModelMetadata.from_dict(raw, src)
    state, dropped = strip_wrapper_prefixes(unwrapped.state_dict)
    return LoadedModelFile(meta, state, None, path, container=unwrapped.container, dropped_keys=dropped)
