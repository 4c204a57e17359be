"""Imports every module that declares features, so the catalogue is complete."""

from immunodig.features import composition_specs  # noqa: F401
from immunodig.features import margin_specs  # noqa: F401
from immunodig.features import spatial_specs  # noqa: F401
from immunodig.features import structures_specs  # noqa: F401
from immunodig.features import til_specs  # noqa: F401
