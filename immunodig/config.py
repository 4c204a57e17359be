"""Build configuration and its stable hash (part of every run key)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from immunodig.errors import ConfigError
from immunodig.vocab import PLAUSIBLE_MPP, mpp_is_plausible

#: Nucleus segmentation backends (``immunodig.nuclei.get_segmenter``).
NUCLEI_BACKENDS: tuple[str, ...] = ("classical", "cellpose", "torchscript", "segmenter")


@dataclass(frozen=True)
class BuildConfig:
    """Parameters of ``build-features``; identical configs give identical run keys.

    Parameters
    ----------
    target_mpp : float
        Resolution (µm/px) at which tissue tiles are read.
    tile_size_px : int
        Tile edge in pixels at ``target_mpp``.
    mask_mpp : float
        Resolution of the thumbnail used for the tissue mask.
    min_tissue_fraction : float
        Tiles with less tissue (by mask) than this are not classified.
    tissue_model : str or None
        Path to a tissue-classifier checkpoint; ``None`` uses the shipped default.
    nuclei_backend : str or None
        Nucleus segmentation backend (one of :data:`NUCLEI_BACKENDS`; default ``classical``);
        ``None`` skips the nuclei stage (``--nuclei-backend none``).
    nuclei_model : str or None
        Model file for the nuclei backend, where it needs one.
    nuclei_mpp : float
        Resolution (µm/px) for nucleus segmentation.
    cell_classifier : str or None
        Cell classifier of the nuclei stage: ``None`` = the shipped default, ``"rule"`` = the
        size/shape/stain rule, or the path of a model file (its content hash enters the run key).
    margin_um : float
        Half-width of the invasive-margin band around the tumour edge.
    stain_normalise : bool
        Apply Macenko normalisation to the reference in ``stain_reference``.
    mpp_override : float or None
        Microns-per-pixel to use when a slide has none in its metadata.
    embeddings : bool
        Embed every H&E tissue tile that passed QC (``embeddings.npy``, :mod:`immunodig.embeddings`).
    encoder : str or None
        Encoder file for ``embeddings``; ``None`` uses the shipped default (its content hash
        enters the run key).
    encoder_arch : str or None
        timm / torchvision architecture of ``encoder`` (else from its side file).
    qc_rules : dict
        Overrides of the plausibility-flag thresholds
        (:data:`immunodig.pipeline.slide_qc.QC_RULES`, by rule name).
    extra : dict
        Free-form parameters of later stages (kept in the hash).
    structure_model : str or None
        Structure-segmenter model file (``--structure-model``; :mod:`immunodig.structures`);
        ``None`` skips the structure stage.
    """

    target_mpp: float = 0.5
    tile_size_px: int = 224
    mask_mpp: float = 8.0
    min_tissue_fraction: float = 0.5
    tissue_model: str | None = None
    nuclei_backend: str | None = "classical"
    nuclei_model: str | None = None
    nuclei_mpp: float = 0.5
    cell_classifier: str | None = None
    margin_um: float = 500.0
    stain_normalise: bool = False
    mpp_override: float | None = None
    embeddings: bool = False
    encoder: str | None = None
    encoder_arch: str | None = None
    qc_rules: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    structure_model: str | None = None

    def __post_init__(self) -> None:
        if not 0.05 <= self.target_mpp <= 20:
            raise ConfigError(f"target_mpp={self.target_mpp} outside 0.05-20 µm/px")
        if not 16 <= self.tile_size_px <= 4096:
            raise ConfigError(f"tile_size_px={self.tile_size_px} outside 16-4096")
        if self.mpp_override is not None and not mpp_is_plausible(self.mpp_override):
            raise ConfigError(f"--mpp {self.mpp_override} outside the plausible "
                              f"{PLAUSIBLE_MPP[0]}-{PLAUSIBLE_MPP[1]} µm/px of a microscopy scan")
        if not 0 <= self.min_tissue_fraction <= 1:
            raise ConfigError("min_tissue_fraction must lie in [0, 1]")
        if self.nuclei_backend is not None and self.nuclei_backend not in NUCLEI_BACKENDS:
            raise ConfigError(f"unknown nuclei backend {self.nuclei_backend!r}; use one of "
                              f"{', '.join(NUCLEI_BACKENDS)} or none")

    @property
    def tile_size_um(self) -> float:
        """Tile edge in µm."""
        return self.target_mpp * self.tile_size_px

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON representation."""
        return asdict(self)

    def config_hash(self) -> str:
        """SHA-256 of the canonical JSON of all parameters except file paths of models.

        Model files enter the run key through their content hash instead (see
        :func:`immunodig.provenance.run_key`), so moving a model file does not make a new run.
        """
        d = self.to_dict()
        d.pop("tissue_model")
        d.pop("nuclei_model")
        d.pop("structure_model")  # its content hash is in the run key
        d.pop("mpp_override")  # per-slide fact, recorded with the slide
        d.pop("encoder")  # its content hash is in the run key
        if not d["embeddings"]:  # builds without embeddings keep the run keys they always had
            d.pop("embeddings")
            d.pop("encoder_arch")
        if d["cell_classifier"] != "rule":  # a model file: its content hash is in the run key
            d.pop("cell_classifier")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def with_(self, **changes: Any) -> "BuildConfig":
        """Return a copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_json(cls, path: str | Path) -> "BuildConfig":
        """Read a config from a JSON file; unknown keys are an error."""
        data = json.loads(Path(path).read_text())
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"{path}: unknown config keys {sorted(unknown)}")
        return cls(**data)
