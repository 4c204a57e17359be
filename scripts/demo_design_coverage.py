"""How often a cohort design gives a tumour core and a TLS candidate, from the drawn truth.

Draws the class maps of a generated cohort's H&E slides (no pixels rendered), turns each into
the 112 µm tile map the pipeline would see with a perfect tissue classifier (majority class of
each tile, tiles more than half glass left out), and counts the slides with a tumour core
(:func:`immunodig.features.margin.compartments` at ``--margin-um``) and with a TLS candidate
(8-connected LYM tiles of >= 0.03 mm²). Usage::

    python scripts/demo_design_coverage.py [--design demo] [--patients 30] [--seed 7]
        [--slide-mm 1.2] [--margin-um 100] [--tumour-radius-frac 0.38 0.42]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import polars as pl
from scipy import ndimage

from immunodig.features.margin import compartments
from immunodig.features.structures import TLS_MIN_AREA_MM2
from immunodig.features.tilemap import TileMap
from immunodig.synthetic.cohort import plan_cohort
from immunodig.synthetic.design import DESIGNS
from immunodig.synthetic.fields import Fields
from immunodig.synthetic.layout import make_layout
from immunodig.synthetic.slide import LAYOUT_MPP_TARGET
from immunodig.vocab import KATHER_CLASSES

TILE_UM = 112.0


def truth_tile_map(cm: np.ndarray, layout_mpp: float) -> TileMap:
    """The tile map of a class map under a perfect classifier."""
    k = int(round(TILE_UM / layout_mpp))
    back = KATHER_CLASSES.index("BACK")
    rows = []
    for r in range(cm.shape[0] // k):
        for c in range(cm.shape[1] // k):
            counts = np.bincount(cm[r * k:(r + 1) * k, c * k:(c + 1) * k].ravel(), minlength=len(KATHER_CLASSES))
            if counts[back] > counts.sum() / 2:
                continue
            counts[back] = 0
            rows.append((c, r, c * TILE_UM, r * TILE_UM, KATHER_CLASSES[int(counts.argmax())]))
    t = pl.DataFrame(rows, schema=["col", "row", "x_um", "y_um", "pred_class"], orient="row")
    t = t.with_columns(pl.lit(True).alias("qc_pass"), pl.lit(1.0).alias("tissue_fraction"),
                       *[(pl.col("pred_class") == c).cast(pl.Float32).alias(f"prob_{c}") for c in KATHER_CLASSES])
    return TileMap.from_tiles(t, TILE_UM)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", default="demo", choices=sorted(DESIGNS))
    parser.add_argument("--patients", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--slide-mm", type=float, default=1.2)
    parser.add_argument("--margin-um", type=float, default=100.0)
    parser.add_argument("--tumour-radius-frac", type=float, nargs=2, default=None)
    args = parser.parse_args()
    design = DESIGNS[args.design]
    if args.tumour_radius_frac:
        design = replace(design, tumour_radius_frac=tuple(args.tumour_radius_frac))
    mpp = 0.5
    layout_mpp = mpp * max(1, int(round(LAYOUT_MPP_TARGET / mpp)))
    n_layout = int(round(args.slide_mm * 1000 / layout_mpp))
    jobs = [j for j in plan_cohort(args.patients, args.seed, 0.0, design) if j.stain == "HE"]
    core = tls = 0
    for j in jobs:
        r_layout = np.random.default_rng(np.random.SeedSequence(j.seed).spawn(3)[0])
        tmap = truth_tile_map(make_layout(n_layout, layout_mpp, j.params.layout, Fields(j.seed), r_layout),
                              layout_mpp)
        core += bool(compartments(tmap, args.margin_um).core.any())
        lab, n = ndimage.label(tmap.is_class("LYM"), np.ones((3, 3)))
        sizes = np.bincount(lab.ravel())[1:] * tmap.tile_area_mm2
        tls += bool(n and (sizes >= TLS_MIN_AREA_MM2).any())
    print(f"{design}, margin ±{args.margin_um:g} µm, {args.slide_mm} mm slides, {len(jobs)} H&E slides: "
          f"tumour core on {core / len(jobs):.0%}, TLS candidate on {tls / len(jobs):.0%}")


if __name__ == "__main__":
    main()
