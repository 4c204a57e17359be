"""One slide-level feature declaration: name, unit, definition, stage and patient aggregation."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from immunodig.errors import ConfigError
from immunodig.vocab import FEATURE_STAGES, PATIENT_AGGREGATIONS

#: How a feature combines over a patient's slides (the patient view, sql/views).
Aggregation = Literal["area_weighted_mean", "sum", "max", "mean"]


@dataclass(frozen=True)
class FeatureSpec:
    """Declaration of one slide-level feature.

    Parameters
    ----------
    name : str
        Column-safe name carrying the unit, e.g. ``til_density_tumour_per_mm2``.
    unit : str
        Physical unit (``mm2``, ``per_mm2``, ``fraction``, ``um``, ``count``, ``1``).
    description : str
        Definition a pathologist recognises, including how edge cases are valued.
    stage : str
        Pipeline stage producing it, one of :data:`immunodig.vocab.FEATURE_STAGES`; the stage
        decides which feature set of the model matrix the feature joins.
    inputs : tuple of str
        Per-slide artefacts it is computed from (``mask``, ``tiles``, ``nuclei``).
    version : int
        Bumped whenever the definition changes.
    patient_aggregation : str
        How slides of one patient combine in the patient view, one of
        :data:`immunodig.vocab.PATIENT_AGGREGATIONS`.
    weight : str or None
        Feature used as weight for ``area_weighted_mean`` (e.g. ``area_tumour_mm2``).
    reference : str or None
        Literature reference, where one exists.
    """

    name: str
    unit: str
    description: str
    stage: str
    inputs: tuple[str, ...]
    version: int = 1
    patient_aggregation: Aggregation = "area_weighted_mean"
    weight: str | None = "area_tissue_mm2"
    reference: str | None = None

    def __post_init__(self) -> None:
        if self.stage not in FEATURE_STAGES:
            raise ConfigError(f"feature {self.name!r}: stage {self.stage!r} is not one of "
                              f"{FEATURE_STAGES} (immunodig.vocab)")
        if self.patient_aggregation not in PATIENT_AGGREGATIONS:
            raise ConfigError(f"feature {self.name!r}: patient_aggregation "
                              f"{self.patient_aggregation!r} is not one of {PATIENT_AGGREGATIONS}")
        if self.patient_aggregation == "area_weighted_mean" and not self.weight:
            raise ConfigError(f"feature {self.name!r}: area_weighted_mean needs a weight feature")

    def as_row(self) -> dict:
        """Return the declaration as a flat dict (row of ``feature_catalog``)."""
        row = asdict(self)
        row["inputs"] = ",".join(self.inputs)
        return row
