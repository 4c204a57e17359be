"""Keyed pseudonyms for raw hospital identifiers: ``P_`` + 16 hex of HMAC-SHA256(key, id).

An unkeyed hash of a hospital number can be reversed by hashing every possible number, so a
secret key is always required. The key comes from ``--key-file`` or the environment variable
``IMMUNODIG_PSEUDONYM_KEY``; keep it outside the repository and the store, and use the same key
for every import of a cohort (slides and clinical data then share pseudonyms).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from immunodig.errors import PseudonymKeyError, ValidationError

#: Environment variable holding the key when no key file is given.
KEY_ENV = "IMMUNODIG_PSEUDONYM_KEY"
#: Shortest key accepted, in bytes.
MIN_KEY_BYTES = 16


def load_key(key_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> bytes:
    """Return the pseudonymisation key from ``key_file`` or ``$IMMUNODIG_PSEUDONYM_KEY``.

    Raises
    ------
    PseudonymKeyError
        Neither is set, the file is unreadable, or the key is shorter than 16 bytes.
    """
    environ = os.environ if environ is None else environ
    if key_file is not None:
        try:
            key = Path(key_file).read_bytes().strip()
        except OSError as exc:
            raise PseudonymKeyError(f"key file {key_file} cannot be read: {exc.strerror}") from exc
        where = f"key file {key_file}"
    elif environ.get(KEY_ENV):
        key = environ[KEY_ENV].strip().encode()
        where = f"${KEY_ENV}"
    else:
        raise PseudonymKeyError(
            f"raw identifiers need a pseudonymisation key: pass --key-file FILE or set {KEY_ENV}. "
            'Create one once per cohort with: python -c "import secrets; print(secrets.token_hex(32))" '
            "> cohort.key (keep it out of the repository and the store)"
        )
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"{where}: key has {len(key)} bytes; use at least {MIN_KEY_BYTES} (32 random bytes recommended)"
        )
    return key


def pseudonymise(ids: Iterable[object], key: bytes | str) -> list[str]:
    """Return the keyed pseudonym ``P_<16 hex>`` of each raw identifier.

    Identifiers are compared as text with surrounding spaces removed (an integer-valued float
    such as ``12345.0`` from a spreadsheet counts as ``12345``).

    Parameters
    ----------
    ids : iterable
        Raw hospital identifiers.
    key : bytes or str
        Secret key, e.g. from :func:`load_key`.

    Raises
    ------
    PseudonymKeyError
        The key is shorter than 16 bytes.
    ValidationError
        An identifier is empty (reported by 1-based position, without values).

    Examples
    --------
    >>> pseudonymise(["12345"], b"0123456789abcdef0123")[0][:2]
    'P_'
    """
    key_bytes = key.encode() if isinstance(key, str) else bytes(key)
    if len(key_bytes) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"key has {len(key_bytes)} bytes; use at least {MIN_KEY_BYTES}")
    out, empty = [], []
    for i, raw in enumerate(ids, start=1):
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        text = "" if raw is None or raw != raw else str(raw).strip()
        if not text:
            empty.append({"row": i, "column": None, "check": "empty identifier"})
            out.append("")
            continue
        digest = hmac.new(key_bytes, text.encode("utf-8"), hashlib.sha256).hexdigest()
        out.append("P_" + digest[:16])
    if empty:
        raise ValidationError("pseudonymise", empty)
    return out
