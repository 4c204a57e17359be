"""Fixtures of the feature tests."""

from __future__ import annotations

import sys
import types

import pytest


@pytest.fixture
def til_stub(monkeypatch):
    """Replace ``immunodig.features.til`` by a stub that returns no feature.

    The TIL features belong to the nuclei stage and are tested there; these tests check the
    features computed here from the same nuclei table, independently of that module.
    """
    stub = types.ModuleType("immunodig.features.til")
    stub.til_features = lambda tiles, nuclei, cfg: {}
    monkeypatch.setitem(sys.modules, "immunodig.features.til", stub)
    return stub
