"""Speed of whole-slide structure segmentation: seconds per mm² of tissue.

Runs :func:`immunodig.structures.slide_inference.segment_slide_structures` exactly as
``build-features --structure-model`` runs it (tissue mask, blocks, blended tiles, vectorising,
seam merging) over the shared real slide CMU-1-Small-Region, with a model file: the one given, or
a random-weight U-Net / ResNet-18 of train-segmenter's default shape (speed does not depend on the
weights, except through the number of objects to vectorise). Usage::

    python benchmarks/bench_structures.py [--model MODEL.pt] [--mpp 0.5] [--tile 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLIDE = ROOT.parent / "shared" / "data" / "openslide-cmu-1-small-region" / "cmu_small_region.svs"


def _random_model(path: Path, mpp: float, tile: int) -> Path:
    import torch

    from immunodig.structures.model_file import save_segmenter
    from immunodig.structures.networks import build_network
    from immunodig.structures.training import SegmenterTrainingParams, segmenter_metadata

    params = SegmenterTrainingParams(patch_px=tile)
    torch.manual_seed(0)
    net = build_network(params.architecture, params.encoder, 2, params.decoder_channels)
    return save_segmenter(path, segmenter_metadata(["gland"], mpp, params), net.state_dict())


def main() -> None:
    import torch

    from immunodig.slides import Slide
    from immunodig.slides.tissue_mask import TissueMask, detect_tissue
    from immunodig.structures.inference import StructureSegmenter
    from immunodig.structures.slide_inference import segment_slide_structures

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--mpp", type=float, default=0.5)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp, Slide(SLIDE) as slide:
        model = args.model or _random_model(Path(tmp) / "random.pt", args.mpp, args.tile)
        seg = StructureSegmenter(model)
        mask_mpp = 8.0
        mask = TissueMask(detect_tissue(slide.thumbnail(mask_mpp), mask_mpp), mask_mpp)
        t0 = time.perf_counter()
        table = segment_slide_structures(slide, seg, mask)
        seconds = time.perf_counter() - t0
    print(f"{SLIDE.name}: tissue {mask.area_mm2:.2f} mm2, model at {seg.mpp:g} um/px, tile {seg.tile_px} px, "
          f"{args.threads} thread(s), device {seg.device}: {seconds:.1f} s = {seconds / mask.area_mm2:.1f} s/mm2 "
          f"of tissue, {len(table)} structures")


if __name__ == "__main__":
    main()
