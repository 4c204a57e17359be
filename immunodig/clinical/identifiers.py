"""Refusal of columns that look like direct patient identifiers.

The store holds pseudonymised data only. A column whose normalised name (lower case, runs of
non-alphanumerics turned into ``_``) contains one of the token sequences below is refused before
any value is read, with :class:`~immunodig.errors.IdentifierColumnError`. The column named by
``--id-column`` is exempt: its values are replaced by keyed pseudonyms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from immunodig.errors import IdentifierColumnError

#: Kind of identifier -> normalised token sequences that reveal it (English and French).
IDENTIFIER_TOKENS: dict[str, tuple[str, ...]] = {
    "name": ("name", "names", "surname", "first_name", "firstname", "last_name", "lastname",
             "given_name", "family_name", "maiden_name", "fullname", "nom", "prenom",
             "nom_naissance", "initials"),
    "birth date": ("dob", "birth_date", "date_of_birth", "birthdate", "birthday", "birth",
                   "date_naissance", "date_de_naissance", "ddn", "naissance"),
    "social security number": ("ssn", "social_security", "nir", "insee", "nss",
                               "national_id", "securite_sociale"),
    "hospital number": ("mrn", "hospital_number", "hospital_id", "ipp", "medical_record",
                        "record_number", "nip", "nda", "patient_number"),
    "address": ("address", "adresse", "street", "postcode", "postal_code", "zip", "zipcode",
                "code_postal"),
    "phone number": ("phone", "telephone", "tel", "mobile", "fax"),
    "e-mail address": ("email", "e_mail", "mail", "courriel"),
}


def normalise_column(name: str) -> str:
    """Lower-case a column name and turn runs of other characters into ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def identifier_kind(column: str) -> str | None:
    """Return the identifier kind a column name reveals, or None.

    Examples
    --------
    >>> identifier_kind("Patient Name"), identifier_kind("date-of-birth"), identifier_kind("age_years")
    ('name', 'birth date', None)
    """
    tokens = normalise_column(column).split("_")
    for kind, sequences in IDENTIFIER_TOKENS.items():
        for seq in sequences:
            parts = seq.split("_")
            n = len(parts)
            if any(tokens[i:i + n] == parts for i in range(len(tokens) - n + 1)):
                return kind
    return None


def refuse_identifier_columns(columns: Iterable[str], source: str, exempt: str | None = None) -> None:
    """Raise IdentifierColumnError naming every column that looks like a direct identifier.

    Parameters
    ----------
    columns : iterable of str
        Column names of the input table.
    source : str
        File name for the message.
    exempt : str, optional
        The raw-ID column given with ``--id-column`` (pseudonymised, never stored).
    """
    problems = []
    for column in columns:
        if exempt is not None and normalise_column(column) == normalise_column(exempt):
            continue
        kind = identifier_kind(column)
        if kind is not None:
            problems.append({
                "row": None, "column": column,
                "check": f"looks like a direct identifier ({kind}); the store holds pseudonymised "
                         "data only: remove the column, or pass it as --id-column with a key to "
                         "replace raw hospital IDs by pseudonyms",
            })
    if problems:
        raise IdentifierColumnError(source, problems)
