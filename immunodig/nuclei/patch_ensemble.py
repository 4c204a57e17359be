"""Cell classifier for segmented nuclei: an ensemble of patch CNNs, optionally with gradient boosting.

Each segmented nucleus is classified from a 32 x 32 px patch at 0.5 µm/px centred on it
(:mod:`immunodig.nuclei.patch_net`) by ``cnn_models`` small CNNs trained with different seeds
(their probabilities averaged; the second network reads the mirrored views). Optionally
(``gbm_weight`` > 0, or ``cnn_epochs`` = 0 for boosting alone) a ``HistGradientBoostingClassifier``
on nucleus measures is averaged in with weight ``gbm_weight``. Its features:

* multi-scale pixel features of the haematoxylin / eosin OD at the centroid
  (:mod:`immunodig.nuclei.pixel_features`), the mean / std of H and E OD on rings of 2, 4 and 6 µm
  around it, and the number of nuclei within 10 and 20 µm (lymphocytes crowd);
* the nucleus's own measures (:func:`immunodig.nuclei.morphology.measure_nuclei`: area, perimeter,
  eccentricity, solidity, circularity, H / E OD, texture) and its H OD relative to the image median;
* its neighbourhood: median area, mean H OD and fraction of small (< 35 µm²) nuclei within 12 and
  25 µm.

Classes: ``NET_CLASSES`` (epithelial, lymphocyte, fibroblast, other) plus ``none`` (a segmented
object that is no annotated nucleus: debris, fragments of an over-segmented nucleus), learnt so
that such objects are not called lymphocytes. Decision rule: the most probable of the five; an
object whose most probable class is ``none`` is reported as ``other`` (not a named cell type), and
the probability of ``other`` is then p(other) + p(none).

Training (:meth:`PatchEnsembleClassifier.fit`) segments each image with the classical segmenter and
labels every segmented nucleus by one-to-one matching (Hungarian, within ``match_um``) to the
annotated centre points; a nucleus matched to a point without a class is left out; an unmatched
nucleus is ``none``.
"""

from __future__ import annotations

import gzip
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from immunodig.errors import ConfigError, ModelFileError, NotFittedError
from immunodig.nuclei.cell_net import NET_CLASSES
from immunodig.nuclei.morphology import MORPHOLOGY_COLUMNS, instance_centroids
from immunodig.nuclei.pixel_features import feature_names, pixel_features

MODEL_FORMAT = "immunodig-nucleus-classifier-v3"
#: Model classes: the cell classes, then ``none`` (no nucleus).
MODEL_CLASSES: tuple[str, ...] = (*NET_CLASSES, "none")
_CONTEXT_UM = (10.0, 20.0)
#: Radii (µm) of the rings whose mean / std of haematoxylin and eosin OD describe nucleus shape.
_RING_UM = (2.0, 4.0, 6.0)
_RING_ANGLES = np.linspace(0, 2 * np.pi, 12, endpoint=False)
#: Nucleus measures used as features.
_MEASURES = MORPHOLOGY_COLUMNS[2:]  # every measure but the pixel centroid
#: Neighbourhood radii (µm) and the area (µm²) below which a neighbour counts as small.
_NEIGHBOUR_UM = (12.0, 25.0)
_SMALL_UM2 = 35.0


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
    return np.stack(cols, 1)


def nucleus_feature_names() -> list[str]:
    """Names of the columns of :func:`nucleus_features`."""
    return (
        feature_names()
        + [f"ring{r:g}um_{c}_{s}" for r in _RING_UM for c in "he" for s in ("mean", "std")]
        + [f"nuclei_within_{r:g}um" for r in _CONTEXT_UM]
        + list(_MEASURES)
        + [f"neighbours_{r:g}um_{s}" for r in _NEIGHBOUR_UM for s in ("median_area_um2", "mean_h_od", "small_fraction")]
        + ["h_od_minus_image_median"]
    )


def nucleus_features(rgb: np.ndarray, labels: np.ndarray, mpp: float) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (x, y px, (N, 2)) and features (N, F) of the instances 1..N of ``labels``."""
    from scipy.spatial import cKDTree

    from immunodig.nuclei.morphology import measure_nuclei

    m = measure_nuclei(rgb, labels, mpp)
    xy = np.column_stack([m["x_px"], m["y_px"]]).astype(float)
    if not len(xy):
        return xy.reshape(0, 2), np.zeros((0, len(nucleus_feature_names())), dtype=np.float32)
    feats = pixel_features(rgb, mpp)
    c = np.clip(np.round(xy[:, 0]).astype(int), 0, feats.shape[1] - 1)
    r = np.clip(np.round(xy[:, 1]).astype(int), 0, feats.shape[0] - 1)
    tree = cKDTree(xy)
    area, hod = np.asarray(m["area_um2"], float), np.asarray(m["h_od_mean"], float)
    cols = [feats[r, c], _rings(feats, xy, mpp)]
    cols.append(np.stack([[len(n) for n in tree.query_ball_point(xy, d / mpp)] for d in _CONTEXT_UM], 1))
    cols.append(np.column_stack([m[k] for k in _MEASURES]))
    for d in _NEIGHBOUR_UM:
        nb = tree.query_ball_point(xy, d / mpp)
        cols.append(
            np.stack(
                [
                    [np.median(area[n]) for n in nb],
                    [hod[n].mean() for n in nb],
                    [(area[n] < _SMALL_UM2).mean() for n in nb],
                ],
                1,
            )
        )
    cols.append((hod - np.median(hod))[:, None])
    return xy, np.concatenate(cols, axis=1).astype(np.float32)


def labelled_nuclei(image: Any, segmenter: Any, match_um: float = 6.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, patches and labels of the segmented nuclei of one annotated image.

    ``image`` is a :class:`immunodig.nuclei.datasets.PointImage`. Labels index
    :data:`MODEL_CLASSES`; nuclei matched to an unclassified point get -1 (not used).
    """
    from immunodig.nuclei.evaluation import match_points
    from immunodig.nuclei.patch_net import PATCH_PX, TRAIN_SHIFT_PX, nucleus_patches

    labels = segmenter.segment(image.rgb, image.mpp)
    xy, x = nucleus_features(image.rgb, labels, image.mpp)
    y = np.full(len(xy), MODEL_CLASSES.index("none"))
    pi, gi = match_points(xy, image.points_xy, match_um / image.mpp)
    y[pi] = np.asarray(image.labels)[gi]
    return x, nucleus_patches(image.rgb, image.mpp, xy, PATCH_PX + 2 * TRAIN_SHIFT_PX), y


class PatchEnsembleClassifier:
    """Ensemble of patch CNNs, optionally averaged with gradient boosting (see module docstring).

    Parameters
    ----------
    max_iter : int
        Boosting iterations (when boosting is used).
    cnn_epochs : float
        Training epochs of each patch CNN; 0 = gradient boosting alone.
    cnn_models : int
        Number of patch CNNs (seeds ``seed``, ``seed + 1000``, ...) whose probabilities are averaged.
    gbm_weight : float
        Weight of the boosting model in the average (0 = not trained; forced to 1 without CNNs).
    match_um : float
        Nucleus-to-annotation matching radius during training.
    """

    def __init__(
        self,
        max_iter: int = 300,
        cnn_epochs: float = 32.0,
        cnn_models: int = 2,
        gbm_weight: float = 0.0,
        match_um: float = 6.0,
    ) -> None:
        if cnn_epochs > 0 and cnn_models < 1:
            raise ConfigError(f"cnn_models must be >= 1 when cnn_epochs > 0, got {cnn_models}")
        if not 0.0 <= gbm_weight <= 1.0:
            raise ConfigError(f"gbm_weight must lie in [0, 1], got {gbm_weight}")
        self.max_iter = max_iter
        self.cnn_epochs = cnn_epochs
        self.cnn_models = cnn_models
        self.gbm_weight = gbm_weight
        self.match_um = match_um
        self.file_sha256: str | None = None

    @property
    def _weight(self) -> float:
        """Weight of the boosting model (1 when there are no CNNs)."""
        return 1.0 if self.cnn_epochs <= 0 else self.gbm_weight

    # ---- training ---------------------------------------------------------------------------
    def fit(self, images: list, seed: int = 0, segmenter: Any = None) -> "PatchEnsembleClassifier":
        """Train on :class:`immunodig.nuclei.datasets.PointImage` objects (labels in ``CRC_CLASSES`` order).

        ``segmenter`` defaults to the classical backend (the one ``build-features`` uses).
        """
        from immunodig.nuclei.classical import ClassicalSegmenter

        segmenter = segmenter if segmenter is not None else ClassicalSegmenter()
        parts = [labelled_nuclei(im, segmenter, self.match_um) for im in images]
        x = np.concatenate([p[0] for p in parts])
        patches = np.concatenate([p[1] for p in parts])
        y = np.concatenate([p[2] for p in parts])
        return self.fit_arrays(
            x, patches, y, seed, {"n_images": len(images), "image_ids": [im.image_id for im in images]}
        )

    def fit_arrays(
        self, x: np.ndarray, patches: np.ndarray, y: np.ndarray, seed: int = 0, info: dict | None = None
    ) -> "PatchEnsembleClassifier":
        """Train on precomputed features, patches and labels (-1 = not used)."""
        keep = y >= 0
        x, patches, y = x[keep], patches[keep], y[keep]
        self.gbm_ = None
        if self._weight > 0:
            from sklearn.ensemble import HistGradientBoostingClassifier

            self.gbm_ = HistGradientBoostingClassifier(
                max_iter=self.max_iter,
                learning_rate=0.08,
                max_leaf_nodes=31,
                l2_regularization=1.0,
                class_weight="balanced",
                random_state=seed,
            ).fit(x, y)
        self.cnn_states_ = []
        if self.cnn_epochs > 0:
            from immunodig.nuclei.patch_net import train_patch_net

            for j in range(self.cnn_models):
                net = train_patch_net(patches, y, len(MODEL_CLASSES), epochs=self.cnn_epochs, seed=seed + 1000 * j)
                self.cnn_states_.append(
                    {
                        k: v.detach().numpy().astype(np.float16 if v.is_floating_point() else v.numpy().dtype)
                        for k, v in net.state_dict().items()
                    }
                )
        self._nets = None
        self.metadata_ = {
            "format": MODEL_FORMAT,
            "classes": list(MODEL_CLASSES),
            "features": nucleus_feature_names() if self.gbm_ is not None else [],
            "params": {
                "max_iter": self.max_iter,
                "cnn_epochs": self.cnn_epochs,
                "cnn_models": self.cnn_models,
                "gbm_weight": self.gbm_weight,
                "match_um": self.match_um,
            },
            "train": {
                **(info or {}),
                "n_nuclei": int(len(y)),
                "class_counts": np.bincount(y, minlength=len(MODEL_CLASSES)).tolist(),
                "seed": seed,
            },
        }
        return self

    # ---- inference --------------------------------------------------------------------------
    def _check(self) -> None:
        if not hasattr(self, "cnn_states_"):
            raise NotFittedError("PatchEnsembleClassifier is not fitted; call fit() or load_cell_classifier()")

    def _cnns(self) -> list:
        if getattr(self, "_nets", None) is None:
            import torch

            from immunodig.nuclei.patch_net import build_patch_net, inference_net

            self._nets = []
            for state in self.cnn_states_:
                net = build_patch_net(len(MODEL_CLASSES))
                net.load_state_dict(
                    {
                        k: torch.from_numpy(np.asarray(v, dtype=np.float32) if v.dtype == np.float16 else v)
                        for k, v in state.items()
                    }
                )
                self._nets.append(inference_net(net))
        return self._nets

    def predict_proba_arrays(self, x: np.ndarray | None, patches: np.ndarray) -> np.ndarray:
        """Probabilities (N, len(MODEL_CLASSES)) from features (only read with boosting) and patches."""
        self._check()
        n = len(patches) if self.cnn_states_ else len(x)
        p = np.zeros((n, len(MODEL_CLASSES)))
        if not n:
            return p
        nets = self._cnns()
        if nets:
            from immunodig.nuclei.patch_net import predict_patch_net

            p += (
                (1 - self._weight)
                * sum(predict_patch_net(net, patches, mirror=j % 2 == 1) for j, net in enumerate(nets))
                / len(nets)
            )
        if self.gbm_ is not None:
            q = np.zeros_like(p)
            q[:, self.gbm_.classes_] = self.gbm_.predict_proba(x)
            p += self._weight * q
        return p

    def predict_proba(self, rgb: np.ndarray, labels: np.ndarray, mpp: float,
                      ids: np.ndarray | None = None) -> np.ndarray:
        """Probabilities (N, len(MODEL_CLASSES)) of the instances 1..N of ``labels``, or of the
        instances ``ids`` only (the boosting features still see every neighbour)."""
        from immunodig.nuclei.patch_net import nucleus_patches

        self._check()
        if self.gbm_ is not None:
            xy, x = nucleus_features(rgb, labels, mpp)
            if ids is not None:
                xy, x = xy[np.asarray(ids, int) - 1], x[np.asarray(ids, int) - 1]
        else:
            xy, x = instance_centroids(labels, ids), None
        return self.predict_proba_arrays(
            x, nucleus_patches(rgb, mpp, xy) if self.cnn_states_ else np.zeros((len(xy), 0))
        )

    def classify_nuclei(self, rgb: np.ndarray, labels: np.ndarray, mpp: float,
                        ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Class of each instance 1..N of ``labels`` (or of ``ids``): (cell_class str, cell_prob float).

        The most probable of the five model classes; ``none`` is reported as ``other`` with
        probability p(other) + p(none).
        """
        return decide(self.predict_proba(rgb, labels, mpp, ids))

    def detect(self, rgb: np.ndarray, mpp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Segment (classical backend) and classify: (xy px (N, 2), class str (N,), class prob (N, 4)).

        The probability columns are the four cell classes, ``other`` including ``none``.
        """
        from immunodig.nuclei.classical import ClassicalSegmenter

        labels = ClassicalSegmenter().segment(rgb, mpp)
        prob = self.predict_proba(rgb, labels, mpp)
        cls, _ = decide(prob)
        return instance_centroids(labels), cls, _merge_none(prob)

    @property
    def classes(self) -> tuple[str, ...]:
        """Cell classes it outputs (``none`` is reported as ``other``)."""
        return tuple(NET_CLASSES)

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path, **metadata: Any) -> Path:
        """Write the model with JSON metadata (e.g. ``training_data_licence``); atomic.

        CNN-only models (the shipped kind) go to a ``.pt`` file: a dict of the JSON metadata and
        the networks' float16 state dicts, loadable with ``torch.load(weights_only=True)`` (no
        pickle). A model with boosting needs a ``.pkl`` file (gzip pickle: load only files you
        trust).
        """
        self._check()
        self.metadata_ = {**self.metadata_, **metadata}
        path = Path(path)
        if (self.gbm_ is None) != (path.suffix == ".pt"):
            raise ConfigError(
                f"{path.name}: save a patch ensemble {'with' if self.gbm_ is not None else 'without'} boosting to a "
                f"{'.pkl' if self.gbm_ is not None else '.pt'} file"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        if self.gbm_ is None:
            import torch

            states = [{k: torch.from_numpy(np.array(v)) for k, v in st.items()} for st in self.cnn_states_]
            torch.save({"metadata": json.dumps(self.metadata_), "cnn_states": states}, tmp)
        else:
            with gzip.open(tmp, "wb", compresslevel=9) as fh:
                pickle.dump(
                    {"metadata": json.dumps(self.metadata_), "gbm": self.gbm_, "cnn_states": self.cnn_states_},
                    fh,
                    protocol=5,
                )
        tmp.replace(path)
        return path

    @staticmethod
    def is_own_file(path: str | Path) -> bool:
        """Whether ``path`` is a ``.pt`` file written by :meth:`save`."""
        if not (Path(path).is_file() and zipfile.is_zipfile(path)):
            return False
        try:
            return _read_pt(Path(path))[0].get("format") == MODEL_FORMAT
        except Exception:  # noqa: BLE001 - not ours (e.g. a CellNet checkpoint)
            return False

    @classmethod
    def load(cls, path: str | Path) -> "PatchEnsembleClassifier":
        """Read a file written by :meth:`save` (``.pt``: weights only; ``.pkl``: a pickle)."""
        from immunodig.nuclei.cell_classifier import file_sha256

        path = Path(path)
        try:
            if path.suffix == ".pkl":
                with gzip.open(path, "rb") as fh:
                    blob = pickle.load(fh)
                meta, gbm, states = json.loads(blob["metadata"]), blob.get("gbm"), blob.get("cnn_states")
            else:
                meta, states = _read_pt(path)
                gbm = None
        except FileNotFoundError as exc:
            raise ModelFileError(
                f"{path}: cell classifier file not found; train one with `train-cell-classifier`"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise ModelFileError(f"{path}: not a readable immunodig cell classifier ({exc})") from exc
        if meta.get("format") != MODEL_FORMAT:
            raise ModelFileError(
                f"{path}: format {meta.get('format')!r}, expected {MODEL_FORMAT!r}; retrain with "
                "scripts/train_default_cell_classifier.py"
            )
        model = cls(**meta["params"])
        model.gbm_, model.cnn_states_, model.metadata_, model._nets = gbm, states, meta, None
        model.file_sha256 = file_sha256(path)
        return model


def _read_pt(path: Path) -> tuple[dict, list[dict[str, np.ndarray]]]:
    """Metadata and CNN states (numpy, dtypes as stored) of a ``.pt`` patch-ensemble file."""
    import torch

    blob = torch.load(path, map_location="cpu", weights_only=True)
    states = [{k: v.numpy() for k, v in st.items()} for st in blob["cnn_states"]]
    return json.loads(blob["metadata"]), states


def _merge_none(prob: np.ndarray) -> np.ndarray:
    """Model probabilities (N, 5) -> cell-class probabilities (N, 4), ``none`` added to ``other``."""
    out = prob[:, : len(NET_CLASSES)].copy()
    out[:, NET_CLASSES.index("other")] += prob[:, MODEL_CLASSES.index("none")]
    return out


def decide(prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell class and its probability from model probabilities (N, len(MODEL_CLASSES)).

    The class is the most probable of the five; ``none`` becomes ``other``, whose probability is
    p(other) + p(none).
    """
    from immunodig.nuclei.cellnet_classifier import _to_cell_classes

    if not len(prob):
        return np.zeros(0, dtype=str), np.zeros(0)
    idx = prob.argmax(1)
    idx[idx == MODEL_CLASSES.index("none")] = NET_CLASSES.index("other")
    return np.asarray(_to_cell_classes(idx)), _merge_none(prob)[np.arange(len(idx)), idx]
