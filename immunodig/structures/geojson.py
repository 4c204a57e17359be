"""QuPath GeoJSON annotations: reading, class conventions and checks.

A QuPath export (*File > Export objects as GeoJSON*) is a ``FeatureCollection``, a JSON list of
features or a single feature. Each feature's ``geometry`` is a ``Polygon`` or ``MultiPolygon``
(holes allowed; a ``GeometryCollection`` of polygons is accepted) in **level-0 pixel coordinates**
of the image or slide it was drawn on; ``properties.classification.name`` is its class and
``properties.objectType`` its kind.

Conventions
-----------
* Kinds: ``annotation`` objects (and features without ``objectType``) are read; other QuPath
  objects (``detection``, ``cell``, ``tile``, ``tma_core``, ``root``) are skipped, so an
  ``export-geojson`` file with tiles and nuclei reads as its annotations only.
* Region of interest: a class named ``Region*`` (QuPath's built-in region class), ``Region``,
  ``ROI`` or ``Region of interest`` (any case) marks where annotation is complete. When a file
  has one or more regions of interest, only pixels inside them count; unannotated pixels inside
  are background. Without one, the whole image counts and every unannotated pixel is background.
* Ignore: a class named ``Ignore*`` or ``Ignore`` marks pixels left out of training and scoring.
* Every other class names a structure. An object without a class is refused (say whether it
  is a structure or a region of interest), as is an invalid or non-area geometry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from immunodig.errors import AnnotationError, InvalidGeometryError, UnknownAnnotationClassError

#: QuPath object kinds read as labelled areas; other kinds are skipped.
READ_OBJECT_TYPES: tuple[str, ...] = ("annotation",)
#: Class names (lower case, ``*`` and spaces removed) that mark a region of interest.
ROI_CLASS_NAMES: frozenset[str] = frozenset({"region", "roi", "regionofinterest"})
#: Class names (same normalisation) that mark pixels to ignore.
IGNORE_CLASS_NAMES: frozenset[str] = frozenset({"ignore"})


def _normalised(name: str) -> str:
    return re.sub(r"[\s*_-]", "", name.lower())


def is_roi_class(name: str) -> bool:
    """True for the region-of-interest class names (``Region*``, ``ROI``, ...)."""
    return _normalised(name) in ROI_CLASS_NAMES


def is_ignore_class(name: str) -> bool:
    """True for the ignore class names (``Ignore*``, ``Ignore``)."""
    return _normalised(name) in IGNORE_CLASS_NAMES


@dataclass(frozen=True)
class Annotation:
    """One labelled area of a GeoJSON file.

    Attributes
    ----------
    index : int
        0-based position of the feature in the file (as named in error messages).
    class_name : str
        Its class as spelled in ``--classes`` when given, else as in the file.
    geometry : shapely Polygon or MultiPolygon
        Level-0 pixel coordinates.
    object_type : str
        ``annotation``.
    """

    index: int
    class_name: str
    geometry: Any
    object_type: str = "annotation"

    @property
    def is_roi(self) -> bool:
        """Whether this marks a region of interest."""
        return is_roi_class(self.class_name)

    @property
    def is_ignore(self) -> bool:
        """Whether this marks pixels to ignore."""
        return is_ignore_class(self.class_name)

    @property
    def is_structure(self) -> bool:
        """Whether this is a structure of some class (neither region of interest nor ignore)."""
        return not (self.is_roi or self.is_ignore)


def _features(raw: Any, src: str) -> list[Any]:
    if isinstance(raw, list):
        return raw
    if isinstance(raw, dict) and raw.get("type") == "FeatureCollection":
        feats = raw.get("features")
        if not isinstance(feats, list):
            raise AnnotationError(f"{src}: FeatureCollection without a 'features' list")
        return feats
    if isinstance(raw, dict) and raw.get("type") == "Feature":
        return [raw]
    raise AnnotationError(f"{src}: expected a GeoJSON FeatureCollection, a list of features or a feature "
                          "(QuPath: File > Export objects as GeoJSON)")


def _polygonal(geometry: Any, where: str) -> Any:
    from shapely.geometry import MultiPolygon, Polygon, shape
    from shapely.validation import explain_validity

    if not isinstance(geometry, dict) or "type" not in geometry:
        raise InvalidGeometryError(f"{where}: no geometry object")
    kind = geometry["type"]
    if kind == "GeometryCollection":
        parts = [_polygonal(g, where) for g in geometry.get("geometries") or []]
        polys = [p for part in parts for p in (part.geoms if isinstance(part, MultiPolygon) else [part])]
        if not polys:
            raise InvalidGeometryError(f"{where}: empty GeometryCollection")
        return MultiPolygon(polys) if len(polys) > 1 else polys[0]
    if kind not in ("Polygon", "MultiPolygon"):
        raise InvalidGeometryError(f"{where}: geometry is a {kind}; only Polygon and MultiPolygon areas can be "
                                   "learnt (draw the structure as an area, not a point or line)")
    try:
        geom = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise InvalidGeometryError(f"{where}: malformed {kind} coordinates ({exc})") from exc
    if not isinstance(geom, (Polygon, MultiPolygon)) or geom.is_empty:
        raise InvalidGeometryError(f"{where}: {kind} encloses no area")
    if not geom.is_valid:
        raise InvalidGeometryError(f"{where}: invalid {kind} ({explain_validity(geom)}); fix it in QuPath "
                                   "(e.g. Objects > Annotations > Simplify shape, or redraw it)")
    if geom.area <= 0:
        raise InvalidGeometryError(f"{where}: {kind} encloses no area")
    return geom


def _class_name(props: dict[str, Any]) -> str | None:
    cls = props.get("classification")
    if isinstance(cls, dict):
        name = cls.get("name")
        if name is None and isinstance(cls.get("names"), list):
            name = ": ".join(str(n) for n in cls["names"])
        return str(name).strip() if name not in (None, "") else None
    if isinstance(cls, str) and cls.strip():
        return cls.strip()
    return None


def read_geojson(path: str | Path, classes: Sequence[str] | None = None) -> list[Annotation]:
    """Read the labelled areas of a QuPath GeoJSON file (conventions in the module docstring).

    Parameters
    ----------
    path : str or Path
        The ``.geojson`` file.
    classes : sequence of str, optional
        Structure classes allowed (matched ignoring case); any other structure class is refused.

    Returns
    -------
    list of Annotation
        In file order; skipped object kinds are left out.

    Raises
    ------
    AnnotationError
        Unreadable JSON, not GeoJSON, or an object without a class.
    InvalidGeometryError
        A geometry that is not a valid polygonal area.
    UnknownAnnotationClassError
        A structure class outside ``classes``.
    """
    path = Path(path)
    src = str(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"{src}: not a readable GeoJSON file ({exc})") from exc
    allowed = {c.lower(): c for c in classes} if classes is not None else None
    out = []
    for i, feat in enumerate(_features(raw, src)):
        where = f"{src}: feature {i}"
        if not isinstance(feat, dict):
            raise AnnotationError(f"{where}: not a GeoJSON feature object")
        props = feat.get("properties") or {}
        kind = str(props.get("objectType") or feat.get("objectType") or "annotation").lower()
        if kind not in READ_OBJECT_TYPES:
            continue
        name = _class_name(props)
        if name is None:
            raise AnnotationError(f"{where}: {kind} without a classification; give it a structure class, "
                                  "'Region*' for a region of interest or 'Ignore*' (docs/structures.md)")
        geom = _polygonal(feat.get("geometry"), where)
        if allowed is not None and not (is_roi_class(name) or is_ignore_class(name)):
            if name.lower() not in allowed:
                raise UnknownAnnotationClassError(
                    f"{where}: class {name!r} is not among --classes ({', '.join(classes)}); add it there, "
                    "rename it in QuPath, or mark the area 'Ignore*'")
            name = allowed[name.lower()]
        out.append(Annotation(i, name, geom, kind))
    return out


def structure_classes(annotations: Sequence[Annotation]) -> list[str]:
    """Sorted structure class names present in ``annotations``."""
    return sorted({a.class_name for a in annotations if a.is_structure})
