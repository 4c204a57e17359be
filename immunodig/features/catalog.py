"""The feature catalogue: every slide feature declared once, with unit and definition.

The declarations feed the store's ``feature_catalog`` table and the generated
``docs/features.md``. Changing a definition means bumping ``version``; values computed under an
older version stay in the store under that version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

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
        Pipeline stage producing it: ``tissue``, ``nuclei``, ``structures``, ``spatial``, ``ihc``.
    inputs : tuple of str
        Per-slide artefacts it is computed from (``mask``, ``tiles``, ``nuclei``).
    version : int
        Bumped whenever the definition changes.
    patient_aggregation : str
        How slides of one patient combine in the patient view.
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

    def as_row(self) -> dict:
        """Return the declaration as a flat dict (row of ``feature_catalog``)."""
        row = asdict(self)
        row["inputs"] = ",".join(self.inputs)
        return row


_CATALOG: dict[str, FeatureSpec] = {}


def register(*specs: FeatureSpec) -> None:
    """Add feature declarations; a name may be declared only once."""
    for spec in specs:
        if spec.name in _CATALOG and _CATALOG[spec.name] != spec:
            raise ValueError(f"feature {spec.name!r} declared twice with different definitions")
        _CATALOG[spec.name] = spec


def catalog() -> dict[str, FeatureSpec]:
    """Return all declared features, importing every declaring module first."""
    from immunodig.features import declarations  # noqa: F401  (registers on import)

    return dict(_CATALOG)


def get(name: str) -> FeatureSpec:
    """Return the declaration of ``name``; raise ``KeyError`` naming close matches otherwise."""
    specs = catalog()
    if name not in specs:
        import difflib

        close = difflib.get_close_matches(name, specs, n=3)
        raise KeyError(f"unknown feature {name!r}; did you mean {close}?")
    return specs[name]
