"""Clinical, genomic and multiplex data: validation, pseudonymisation, resistance rule, import."""

from __future__ import annotations

from immunodig.clinical.identifiers import identifier_kind, refuse_identifier_columns
from immunodig.clinical.importer import ImportResult, import_clinical
from immunodig.clinical.molecular import import_genomic, import_multiplex
from immunodig.clinical.pseudonym import KEY_ENV, PseudonymKeyError, load_key, pseudonymise
from immunodig.clinical.resistance import ResistanceRule

__all__ = [
    "ImportResult", "KEY_ENV", "PseudonymKeyError", "ResistanceRule", "identifier_kind",
    "import_clinical", "import_genomic", "import_multiplex", "load_key", "pseudonymise",
    "refuse_identifier_columns",
]
