"""Tertiary-lymphoid-structure (TLS) candidates: lymphoid aggregates on the tile map.

A candidate is a connected component (8-neighbourhood) of LYM tiles whose tissue area is at least
``cfg.extra["tls_min_area_mm2"]`` (default :data:`TLS_MIN_AREA_MM2`). Relative to the tumour
(:mod:`immunodig.features.margin`) a candidate is *intratumoural* when most of its area lies in the
tumour region, *peritumoural* when not but one of its tiles lies within ``cfg.margin_um`` of the
tumour edge, and *distant* otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from immunodig.config import BuildConfig
from immunodig.features.composition import ratio
from immunodig.features.margin import Compartments
from immunodig.features.tilemap import TileMap

#: Default minimum TLS-candidate area (about three 112 µm tiles).
TLS_MIN_AREA_MM2 = 0.03


@dataclass(frozen=True)
class TLSCandidates:
    """The TLS candidates of a tile map (index ``k`` is candidate ``k``).

    Attributes
    ----------
    labels : numpy.ndarray of int
        Tile-map component label of each LYM group (0 = none); candidate ``k`` is label
        ``label_ids[k]``.
    label_ids : numpy.ndarray of int
    area_mm2, edge_distance_um : numpy.ndarray of float
        Tissue area, and signed edge distance of the tile nearest the tumour edge.
    intratumoural, peritumoural : numpy.ndarray of bool
    """

    labels: np.ndarray
    label_ids: np.ndarray
    area_mm2: np.ndarray
    edge_distance_um: np.ndarray
    intratumoural: np.ndarray
    peritumoural: np.ndarray

    def mask(self, k: int) -> np.ndarray:
        """Tile-map cells of candidate ``k``."""
        return self.labels == self.label_ids[k]


def tls_candidates(tmap: TileMap, comp: Compartments, cfg: BuildConfig) -> TLSCandidates:
    """Label the LYM groups of ``tmap`` and keep those of at least the minimum area (module
    docstring), with their position relative to the tumour."""
    min_area = float(cfg.extra.get("tls_min_area_mm2", TLS_MIN_AREA_MM2))
    lym = tmap.is_class("LYM")
    labels, n = ndimage.label(lym, structure=np.ones((3, 3), bool)) if lym.size else (lym, 0)
    ids = labels[lym]
    area = tmap.tissue_area_mm2[lym]
    comp_area = np.bincount(ids, weights=area, minlength=n + 1)[1:]
    in_tumour = np.bincount(ids, weights=area * comp.tumour_region[lym], minlength=n + 1)[1:]
    # Signed edge distance of each component's tile nearest to the edge (inf-safe).
    signed = comp.signed_um[lym]
    order = np.lexsort((np.abs(signed), ids))
    first = np.unique(ids[order], return_index=True)[1]
    nearest = signed[order][first] if n else np.zeros(0)
    keep = comp_area >= min_area
    intra = keep & (in_tumour > comp_area / 2)
    peri = keep & ~intra & (nearest <= cfg.margin_um)
    return TLSCandidates(labels, np.flatnonzero(keep) + 1, comp_area[keep], nearest[keep],
                         intra[keep], peri[keep])


def structure_features(tmap: TileMap, comp: Compartments, cfg: BuildConfig) -> dict[str, float]:
    """TLS-candidate counts, areas and positions relative to the tumour edge.

    Parameters
    ----------
    tmap : TileMap
        The slide's tile map.
    comp : Compartments
        Tumour region and edge distances of ``tmap``.
    cfg : BuildConfig
        ``margin_um`` and ``extra["tls_min_area_mm2"]``.
    """
    tls = tls_candidates(tmap, comp, cfg)
    kept_area = tls.area_mm2
    intra, peri = tls.intratumoural, tls.peritumoural
    tumour_area = float(tmap.tissue_area_mm2[comp.tumour_region].sum())
    finite = tls.edge_distance_um[np.isfinite(tls.edge_distance_um)]
    n_near = int(intra.sum() + peri.sum())
    return {
        "tls_count": float(len(kept_area)),
        "tls_intratumoural_count": float(intra.sum()),
        "tls_peritumoural_count": float(peri.sum()),
        "tls_density_tumour_per_mm2": ratio(n_near, tumour_area),
        "tls_intratumoural_fraction": ratio(float(intra.sum()), n_near),
        "tls_area_mm2": float(kept_area.sum()),
        "tls_area_mean_mm2": float(kept_area.mean()) if kept_area.size else float("nan"),
        "tls_area_max_mm2": float(kept_area.max()) if kept_area.size else 0.0,
        "tls_edge_distance_median_um": float(np.median(finite)) if finite.size else float("nan"),
    }
