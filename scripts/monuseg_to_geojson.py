"""Write MoNuSeg's nucleus outlines as QuPath GeoJSON beside links to its images (training data).

Each ground-truth nucleus (the MoNuSeg reader's instance map, :func:`immunodig.nuclei.datasets.read_monuseg`)
becomes one ``annotation`` of class ``nucleus``; the image is linked (not copied) into ``--out``.
Nothing is written inside the repository; the data stay under ``../shared/data``.

    python scripts/monuseg_to_geojson.py --src ../shared/data/monuseg --out /tmp/monuseg_geojson
    python cli.py eval-segmenter /tmp/monuseg_geojson --mpp 0.5 --image-mpp 0.25 --cv 3 --instances watershed
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shapely.geometry import mapping

from immunodig.nuclei.datasets import read_monuseg
from immunodig.structures.vectorise import instance_polygons


def feature(geometry, cls: str) -> dict:
    """A QuPath annotation feature."""
    return {"type": "Feature", "geometry": mapping(geometry),
            "properties": {"objectType": "annotation", "classification": {"name": cls, "color": [200, 0, 200]}}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=Path("../shared/data/monuseg"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cls", default="nucleus")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for im in read_monuseg(args.src):
        polys = instance_polygons(im.instances)
        collection = {"type": "FeatureCollection", "features": [feature(p, args.cls) for p in polys.values()]}
        (args.out / f"{im.image_id}.geojson").write_text(json.dumps(collection))
        link = args.out / f"{im.image_id}.tif"
        if not link.exists():
            link.symlink_to((args.src / f"{im.image_id}.tif").resolve())
        print(f"{im.image_id}: {len(polys)} nuclei, {im.mpp:g} µm/px")


if __name__ == "__main__":
    main()
