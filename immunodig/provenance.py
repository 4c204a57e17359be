"""Provenance: file hashes and run keys.

A run key is a function of the code version, the build config and the content hash of every
model file used, so the same inputs and config always give the same key (rebuilds are
idempotent) and a changed model always gives a new one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from immunodig import __version__


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def run_key(config_hash: str, model_hashes: dict[str, str], code_version: str = __version__) -> str:
    """Return the deterministic run id ``r_<16 hex>`` for one build configuration.

    Parameters
    ----------
    config_hash : str
        :meth:`immunodig.config.BuildConfig.config_hash`.
    model_hashes : dict
        Role (``tissue``, ``nuclei``, ``cells``) to SHA-256 of the model file.
    code_version : str
        Package version; part of the key so a new release never overwrites old values.
    """
    payload = json.dumps(
        {"code": code_version, "config": config_hash, "models": dict(sorted(model_hashes.items()))},
        sort_keys=True,
    )
    return "r_" + hashlib.sha256(payload.encode()).hexdigest()[:16]
