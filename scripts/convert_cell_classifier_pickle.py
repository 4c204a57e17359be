"""Convert a CNN-only patch-ensemble pickle (``.pkl``, format v3) to the weights-only ``.pt`` file.

The float16 weights are copied bit for bit, so predictions are identical::

    python scripts/convert_cell_classifier_pickle.py OLD.pkl NEW.pt
"""

from __future__ import annotations

import sys
from pathlib import Path

from immunodig.nuclei.cell_classifier import file_sha256
from immunodig.nuclei.patch_ensemble import PatchEnsembleClassifier


def main(old: Path, new: Path) -> None:
    model = PatchEnsembleClassifier.load(old)
    model.save(new, converted_from_sha256=file_sha256(old))
    print(f"wrote {new}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
