"""The feature catalogue: every slide feature declared once, with unit and definition.

The catalogue is declared explicitly: :data:`DECLARING_MODULES` lists every module whose
``SPECS`` it holds, in catalogue order (a new stage adds its module here once). The declarations
feed the store's ``feature_catalog`` table and the generated
``docs/features.md``. Changing a definition means bumping ``version``; values computed under an
older version stay in the store under that version.
"""

from __future__ import annotations

from immunodig.features import (
    composition_specs,
    margin_specs,
    segmented_structures_specs,
    spatial_specs,
    structures_specs,
    til_specs,
)
from immunodig.features.feature_spec import FeatureSpec

#: Modules whose ``SPECS`` make up the catalogue.
DECLARING_MODULES = (composition_specs, margin_specs, spatial_specs, structures_specs, til_specs,
                     segmented_structures_specs)


def _assemble() -> dict[str, FeatureSpec]:
    specs: dict[str, FeatureSpec] = {}
    for module in DECLARING_MODULES:
        for spec in module.SPECS:
            if spec.name in specs:
                raise ValueError(f"feature {spec.name!r} declared twice "
                                 f"({module.__name__} and an earlier module)")
            specs[spec.name] = spec
    return specs


_CATALOG: dict[str, FeatureSpec] = _assemble()


def catalog() -> dict[str, FeatureSpec]:
    """Return all declared features by name."""
    return dict(_CATALOG)


def get(name: str) -> FeatureSpec:
    """Return the declaration of ``name``; raise ``KeyError`` naming close matches otherwise."""
    specs = catalog()
    if name not in specs:
        import difflib

        close = difflib.get_close_matches(name, specs, n=3)
        raise KeyError(f"unknown feature {name!r}; did you mean {close}?")
    return specs[name]
