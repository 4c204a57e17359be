"""Gradient-boosting lymphocyte detector and cell classifier on multi-scale pixel features.

Two stages, both cheap on CPU:

1. *candidates*: local maxima (``min_distance_um`` apart) of the haematoxylin OD smoothed at
   ``candidate_sigma_um`` — a high-recall blob detector;
2. *scoring*: the features of :mod:`immunodig.nuclei.pixel_features` at each candidate plus two
   context counts (candidates within 10 and 20 µm: lymphocytes crowd) feed two
   ``HistGradientBoostingClassifier`` models: P(nucleus centre) and P(class | nucleus) over
   ``NET_CLASSES`` (epithelial, lymphocyte, fibroblast, other).

Training pixels come from centre points (CRCHistoPhenotypes): pixels within ``centre_um`` of an
annotated point are "nucleus centre" with that point's class (unknown, and left out of the class
model, when the point carries none); pixels farther than ``background_um`` from every point are
background; the ambiguous ring between is not used. Detection keeps candidates with P(nucleus) >
``threshold`` and suppresses weaker candidates within ``match_um`` of a kept one (greedy
non-maximum suppression). Segmented nuclei (the ``build-features``
pipeline) are classified with the class model at their centroids.
"""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from immunodig.errors import ModelFileError, NotFittedError
from immunodig.nuclei.cell_net import NET_CLASSES
from immunodig.nuclei.pixel_features import feature_names, pixel_features

MODEL_FORMAT = "immunodig-nucleus-gbm-v1"
_CONTEXT_UM = (10.0, 20.0)
#: Radii (µm) of the rings whose mean / std of haematoxylin and eosin OD describe nucleus shape.
_RING_UM = (2.0, 4.0, 6.0)
_RING_ANGLES = np.linspace(0, 2 * np.pi, 12, endpoint=False)


def _rings(feats: np.ndarray, xy_px: np.ndarray, mpp: float) -> np.ndarray:
    """Mean and std of H and E OD (1 µm smoothing) on circles around each point (rotation-free)."""
    h, w = feats.shape[:2]
    hi, ei = feature_names().index("h_gauss_1.0"), feature_names().index("e_gauss_1.0")
    cols = []
    for r_um in _RING_UM:
        r = r_um / mpp
        xs = np.clip(np.round(xy_px[:, :1] + r * np.cos(_RING_ANGLES)).astype(int), 0, w - 1)
        ys = np.clip(np.round(xy_px[:, 1:] + r * np.sin(_RING_ANGLES)).astype(int), 0, h - 1)
        for ch in (hi, ei):
            v = feats[ys, xs, ch]
            cols += [v.mean(1), v.std(1)]
    return np.stack(cols, 1).astype(np.float32)


def _context(xy_px: np.ndarray, ref_px: np.ndarray, mpp: float) -> np.ndarray:
    from scipy.spatial import cKDTree

    if not len(xy_px):
        return np.zeros((0, len(_CONTEXT_UM)), dtype=np.float32)
    tree = cKDTree(ref_px) if len(ref_px) else None
    cols = []
    for r in _CONTEXT_UM:
        if tree is None:
            cols.append(np.zeros(len(xy_px)))
        else:
            cols.append(np.array([len(n) for n in tree.query_ball_point(xy_px, r / mpp)], dtype=float))
    return np.stack(cols, 1).astype(np.float32)


def _point_discs(shape: tuple[int, int], points_xy: np.ndarray, labels: np.ndarray, radius_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean map of discs around points and the label of the disc each pixel lies in (-1 none)."""
    from immunodig.nuclei.cell_net import make_targets

    near, lab = make_targets(shape, points_xy, labels, radius_px)
    return near.astype(bool), lab


def _suppress(xy: np.ndarray, score: np.ndarray, threshold: float, radius_px: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of kept points, best score first."""
    from scipy.spatial import cKDTree

    order = np.flatnonzero(score > threshold)
    order = order[np.argsort(-score[order], kind="stable")]
    if not len(order):
        return order
    tree = cKDTree(xy)
    removed = np.zeros(len(xy), dtype=bool)
    kept = []
    for i in order:
        if removed[i]:
            continue
        kept.append(i)
        removed[tree.query_ball_point(xy[i], radius_px)] = True
    return np.asarray(kept, dtype=int)


class NucleusGBMClassifier:
    """Candidate detector + gradient-boosted nucleus / class scores (see module docstring).

    Parameters
    ----------
    candidate_sigma_um : float
        Gaussian sigma of the haematoxylin map whose maxima are candidates.
    min_distance_um : float
        Minimum distance between candidates.
    match_um : float
        Candidate-to-annotation matching radius during training.
    threshold : float
        P(nucleus) above which a candidate is reported by :meth:`detect`.
    max_iter : int
        Boosting iterations of each model.
    candidate_quantile : float
        Candidates must exceed this quantile of the smoothed haematoxylin map of the image.
    centre_um, background_um : float
        Training pixels within ``centre_um`` of an annotated centre are positives (with its class);
        pixels farther than ``background_um`` from every centre are negatives.
    pixels_per_image : int
        Positive and negative training pixels sampled per image (each).
    """

    def __init__(self, candidate_sigma_um: float = 1.0, min_distance_um: float = 2.5, match_um: float = 4.0, threshold: float = 0.5, max_iter: int = 300, candidate_quantile: float = 0.5, centre_um: float = 1.6, background_um: float = 3.5, pixels_per_image: int = 1500) -> None:
        self.candidate_sigma_um = candidate_sigma_um
        self.min_distance_um = min_distance_um
        self.match_um = match_um
        self.threshold = threshold
        self.max_iter = max_iter
        self.candidate_quantile = candidate_quantile
        self.centre_um = centre_um
        self.background_um = background_um
        self.pixels_per_image = pixels_per_image

    # ---- features ---------------------------------------------------------------------------
    def candidates(self, feats: np.ndarray, mpp: float) -> np.ndarray:
        """Candidate centres (x, y) px from the feature stack (smoothed haematoxylin maxima)."""
        from scipy import ndimage as ndi
        from skimage.feature import peak_local_max

        h = ndi.gaussian_filter(feats[..., 0], self.candidate_sigma_um / mpp)
        dist = max(1, int(round(self.min_distance_um / mpp)))
        peaks = peak_local_max(h, min_distance=dist, threshold_abs=float(np.quantile(h, self.candidate_quantile)), exclude_border=False)
        return peaks[:, ::-1].astype(float)

    @staticmethod
    def point_features(feats: np.ndarray, xy_px: np.ndarray, ref_px: np.ndarray, mpp: float) -> np.ndarray:
        """Features at points (nearest pixel) plus context counts around them."""
        if not len(xy_px):
            return np.zeros((0, feats.shape[-1] + 4 * len(_RING_UM) + len(_CONTEXT_UM)), dtype=np.float32)
        c = np.clip(np.round(xy_px[:, 0]).astype(int), 0, feats.shape[1] - 1)
        r = np.clip(np.round(xy_px[:, 1]).astype(int), 0, feats.shape[0] - 1)
        return np.concatenate([feats[r, c], _rings(feats, xy_px, mpp), _context(xy_px, ref_px, mpp)], axis=1)

    # ---- training ---------------------------------------------------------------------------
    def fit(self, images: list, seed: int = 0) -> "NucleusGBMClassifier":
        """Train on :class:`immunodig.nuclei.datasets.PointImage` objects."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        rng = np.random.default_rng(seed)
        xs, is_nuc, cls = [], [], []
        for im in images:
            feats = pixel_features(im.rgb, im.mpp)
            cand = self.candidates(feats, im.mpp)
            near, lab_map = _point_discs(im.rgb.shape[:2], im.points_xy, im.labels, self.centre_um / im.mpp)
            ring, _ = _point_discs(im.rgb.shape[:2], im.points_xy, im.labels, self.background_um / im.mpp)
            pos = np.flatnonzero(near.ravel())
            neg = np.flatnonzero(~ring.ravel())
            pos = rng.choice(pos, min(len(pos), self.pixels_per_image), replace=False)
            neg = rng.choice(neg, min(len(neg), self.pixels_per_image), replace=False)
            idx = np.concatenate([pos, neg])
            xy = np.column_stack([idx % im.rgb.shape[1], idx // im.rgb.shape[1]]).astype(float)
            xs.append(self.point_features(feats, xy, cand, im.mpp))
            is_nuc.append(np.r_[np.ones(len(pos), int), np.zeros(len(neg), int)])
            cls.append(np.r_[lab_map.ravel()[pos], np.full(len(neg), -1)])
        x, is_nuc, cls = np.concatenate(xs), np.concatenate(is_nuc), np.concatenate(cls)
        common = dict(max_iter=self.max_iter, learning_rate=0.08, max_leaf_nodes=31, l2_regularization=1.0, random_state=seed)
        self.nucleus_model_ = HistGradientBoostingClassifier(**common).fit(x, is_nuc)
        keep = cls >= 0
        self.class_model_ = HistGradientBoostingClassifier(**common, class_weight="balanced").fit(x[keep], cls[keep])
        counts = np.bincount(cls[keep], minlength=len(NET_CLASSES))
        self.metadata_ = {
            "format": MODEL_FORMAT,
            "classes": list(NET_CLASSES),
            "features": feature_names() + [f"ring{r:g}um_{c}_{s}" for r in _RING_UM for c in "he" for s in ("mean", "std")] + [f"candidates_within_{r:g}um" for r in _CONTEXT_UM],
            "params": {k: getattr(self, k) for k in ("candidate_sigma_um", "min_distance_um", "match_um", "threshold", "max_iter", "candidate_quantile", "centre_um", "background_um", "pixels_per_image")},
            "train": {"n_images": len(images), "n_pixels": int(len(cls)), "n_labelled_pixels": int(keep.sum()), "class_counts": counts.tolist(), "seed": seed},
        }
        return self

    # ---- inference --------------------------------------------------------------------------
    def _check(self) -> None:
        if not hasattr(self, "class_model_"):
            raise NotFittedError("NucleusGBMClassifier is not fitted; call fit() or load_cell_classifier()")

    def _class_proba(self, x: np.ndarray) -> np.ndarray:
        p = np.zeros((len(x), len(NET_CLASSES)))
        if len(x):
            p[:, self.class_model_.classes_] = self.class_model_.predict_proba(x)
        return p

    def detect(self, rgb: np.ndarray, mpp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect and classify nuclei: (xy px (N, 2), class str (N,), class prob (N, C))."""
        from immunodig.nuclei.cell_classifier import _to_cell_classes

        self._check()
        feats = pixel_features(rgb, mpp)
        cand = self.candidates(feats, mpp)
        x = self.point_features(feats, cand, cand, mpp)
        if not len(x):
            return np.zeros((0, 2)), np.zeros(0, dtype=str), np.zeros((0, len(NET_CLASSES)))
        p_nuc = self.nucleus_model_.predict_proba(x)[:, 1]
        keep = _suppress(cand, p_nuc, self.threshold, self.match_um / mpp)
        prob = self._class_proba(x[keep])
        return cand[keep], np.asarray(_to_cell_classes(prob.argmax(1))), prob

    def classify_nuclei(self, rgb: np.ndarray, labels: np.ndarray, mpp: float) -> tuple[np.ndarray, np.ndarray]:
        """Class of each instance 1..N of ``labels`` from the features at its centroid."""
        from scipy import ndimage as ndi

        from immunodig.nuclei.cell_classifier import _to_cell_classes

        self._check()
        n = int(labels.max())
        if n == 0:
            return np.zeros(0, dtype=str), np.zeros(0)
        cms = np.asarray(ndi.center_of_mass(np.ones(labels.shape), labels, np.arange(1, n + 1))).reshape(-1, 2)
        xy = cms[:, ::-1]
        feats = pixel_features(rgb, mpp)
        prob = self._class_proba(self.point_features(feats, xy, xy, mpp))
        idx = prob.argmax(1)
        return np.asarray(_to_cell_classes(idx)), prob[np.arange(n), idx]

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path, **metadata: Any) -> Path:
        """Pickle (gzip) the two models with JSON metadata (e.g. ``training_data_licence``)."""
        self._check()
        self.metadata_ = {**self.metadata_, **metadata}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with gzip.open(tmp, "wb", compresslevel=9) as fh:
            pickle.dump({"metadata": json.dumps(self.metadata_), "nucleus_model": self.nucleus_model_, "class_model": self.class_model_}, fh, protocol=5)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "NucleusGBMClassifier":
        """Read a file written by :meth:`save` (a pickle: load only files you trust)."""
        path = Path(path)
        try:
            with gzip.open(path, "rb") as fh:
                blob = pickle.load(fh)
            meta = json.loads(blob["metadata"])
        except FileNotFoundError as exc:
            raise ModelFileError(f"{path}: cell classifier file not found; train one with `train-cell-classifier`") from exc
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise ModelFileError(f"{path}: not a readable immunodig cell classifier ({exc})") from exc
        if meta.get("format") != MODEL_FORMAT:
            raise ModelFileError(f"{path}: format {meta.get('format')!r}, expected {MODEL_FORMAT!r}")
        model = cls(**meta["params"])
        model.nucleus_model_, model.class_model_, model.metadata_ = blob["nucleus_model"], blob["class_model"], meta
        return model
