"""The whole loop on generated slides: train-segmenter on some, build-features --structure-model on
others, structures recovered within the tolerance stated in docs/structures.md."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "validate_structures_synthetic.py"


def _script():
    spec = importlib.util.spec_from_file_location("validate_structures_synthetic", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_structures_recovered_on_unseen_generated_slides(tmp_path):
    script = _script()
    result = script.main(["--out", str(tmp_path / "run"), "--json", str(tmp_path / "result.json")])
    pooled = result["pooled"]
    assert set(pooled) == {"TLS", "Gland"} and len(result["per_slide"]) == 3
    for cls, m in pooled.items():
        assert abs(m["count_ratio"] - 1) <= script.COUNT_TOLERANCE, (cls, m)
        assert abs(m["area_ratio"] - 1) <= script.AREA_TOLERANCE, (cls, m)
        assert min(m["recall"], m["precision"]) >= script.MATCH_FLOOR, (cls, m)
    assert result["within_tolerance"] == {"TLS": True, "Gland": True}
