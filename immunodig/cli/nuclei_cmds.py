"""Nuclei commands: eval-nuclei, eval-lymphocytes, train-cell-classifier, validate-ihc."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer


def _dump(result: dict[str, Any], out: Optional[Path]) -> None:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    text = json.dumps(clean(result), indent=1, default=float)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def register(app: typer.Typer) -> None:
    """Add the nuclei commands to ``app``."""

    @app.command("eval-nuclei")
    def eval_nuclei_cmd(
        folder: Annotated[Path, typer.Argument(help="MoNuSeg-style folder: <id>.tif + <id>.xml.")],
        backend: Annotated[
            Optional[str], typer.Option(help="classical | cellpose | torchscript (default: build-features' default).")
        ] = None,
        model: Annotated[
            Optional[str], typer.Option(help="Model file / cellpose built-in name for the backend.")
        ] = None,
        method: Annotated[
            str,
            typer.Option(
                help="pipeline (each image through the nuclei stage of build-features, at its nuclei mpp) | "
                     "segmenter (the backend alone, at the image's mpp)."
            ),
        ] = "pipeline",
        json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the full result as JSON.")] = None,
    ) -> None:
        """Nucleus segmentation quality: Dice, AJI and PQ per image and overall."""
        from immunodig.config import BuildConfig
        from immunodig.errors import ConfigError
        from immunodig.nuclei.datasets import read_monuseg
        from immunodig.nuclei.segmentation_eval import evaluate_segmenter
        from immunodig.nuclei.segmenter import get_segmenter

        if method not in ("pipeline", "segmenter"):
            raise ConfigError(f"--method {method!r}: choose pipeline or segmenter")
        cfg = BuildConfig() if method == "pipeline" else None
        res = evaluate_segmenter(read_monuseg(folder), get_segmenter(backend, model), cfg)
        res["method"] = method
        for r in res["per_image"]:
            typer.echo(
                f"{r['image_id']}: AJI {r['aji']:.3f}  Dice {r['dice']:.3f}  PQ {r['pq']:.3f}  ({r['n_pred']} / "
                f"{r['n_true']} nuclei)"
            )
        typer.echo(
            f"overall ({res['backend']}, {res['n_images']} images): AJI {res['aji']:.3f}  Dice {res['dice']:.3f} "
            f"PQ {res['pq']:.3f}"
        )
        _dump(res, json_out)

    @app.command("eval-lymphocytes")
    def eval_lymphocytes_cmd(
        folder: Annotated[
            Path, typer.Argument(help="CRCHistoPhenotypes-style folder: imgN/imgN.bmp + imgN_<class>.mat.")
        ],
        model: Annotated[
            Optional[Path], typer.Option(help="Cell classifier file (default: the shipped model).")
        ] = None,
        method: Annotated[
            str,
            typer.Option(
                help="pipeline (each image through the nuclei stage of build-features: segmenter + classifier "
                     "on the blocks segment_slide reads) | detector (the classifier's own detections)."
            ),
        ] = "pipeline",
        backend: Annotated[Optional[str], typer.Option(help="Segmenter for --method pipeline.")] = None,
        mpp: Annotated[float, typer.Option(help="µm/px of the images.")] = 0.55,
        json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the full result as JSON.")] = None,
    ) -> None:
        """Inflammatory-cell (lymphocyte) detection: precision, recall, F1 and class confusion."""
        import torch

        from immunodig.errors import ConfigError
        from immunodig.nuclei.cell_classifier import load_cell_classifier
        from immunodig.nuclei.datasets import read_crchistophenotypes
        from immunodig.nuclei.lymphocyte_eval import evaluate_lymphocytes
        from immunodig.nuclei.segmenter import get_segmenter

        if method not in ("detector", "pipeline"):
            raise ConfigError(f"--method {method!r}: choose detector or pipeline")
        torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
        clf = load_cell_classifier(model)
        seg = get_segmenter(backend) if method == "pipeline" else None
        res = evaluate_lymphocytes(read_crchistophenotypes(folder, mpp), clf, seg)
        res["method"] = method
        typer.echo(
            f"inflammatory ({res['match_radius_um']:g} µm match radius, {len(res['per_image'])} images): "
            f"precision {res['precision']:.3f}  recall {res['recall']:.3f}  F1 {res['f1']:.3f}"
        )
        conf = res["confusion"]
        typer.echo("confusion (rows ground truth, columns predicted): " + ", ".join(conf["columns_predicted"]))
        for name, row in zip(conf["rows_ground_truth"], conf["counts"]):
            typer.echo(f"  {name:>14}: {row}")
        _dump(res, json_out)

    @app.command("train-cell-classifier")
    def train_cell_classifier_cmd(
        folder: Annotated[Path, typer.Argument(help="CRCHistoPhenotypes-style folder.")],
        out: Annotated[Path, typer.Option(help="Model file to write.")],
        kind: Annotated[
            str,
            typer.Option(
                help="patch (ensemble of nucleus-patch CNNs on classical nuclei, the shipped kind; writes a .pt "
                     "(a .pkl with --gbm-weight > 0 or --cnn-epochs 0); "
                     "scripts/train_default_cell_classifier.py also adds generated nuclei) | cnn (small FCN; "
                     "writes a .pt)."
            ),
        ] = "patch",
        cnn_models: Annotated[int, typer.Option(help="patch kind: number of patch CNNs in the ensemble.")] = 2,
        cnn_epochs: Annotated[
            float,
            typer.Option(help="patch kind: training epochs per CNN (0 = gradient boosting on nucleus measures alone)."),
        ] = 32.0,
        gbm_weight: Annotated[
            float,
            typer.Option(
                help="patch kind: weight of gradient boosting on nucleus measures in the average (0 = not trained)."
            ),
        ] = 0.0,
        steps: Annotated[int, typer.Option(help="Training steps of the cnn kind (batches of 8 crops).")] = 1500,
        mpp: Annotated[float, typer.Option(help="µm/px of the images.")] = 0.55,
        licence: Annotated[
            str, typer.Option(help="Licence of the training data, stored in the model.")
        ] = "CRCHistoPhenotypes: research purpose only (Sirinukunwattana et al., IEEE TMI 2016)",
        seed: Annotated[int, typer.Option()] = 0,
    ) -> None:
        """Train the cell classifier / lymphocyte detector on centre-point annotations."""
        from immunodig.errors import ConfigError
        from immunodig.nuclei.cellnet_classifier import CellNetClassifier
        from immunodig.nuclei.datasets import read_crchistophenotypes
        from immunodig.nuclei.patch_ensemble import PatchEnsembleClassifier

        boosting = gbm_weight > 0 or cnn_epochs <= 0
        suffix = {"patch": ".pkl" if boosting else ".pt", "cnn": ".pt"}.get(kind)
        if suffix is None or out.suffix != suffix:
            raise ConfigError(
                f"--kind {kind!r} with --out {out.name}: write a {suffix or '.pt'} file (patch kind: .pkl only "
                f"with boosting)"
            )
        images = read_crchistophenotypes(folder, mpp)
        if kind == "patch":
            model = PatchEnsembleClassifier(cnn_epochs=cnn_epochs, cnn_models=cnn_models, gbm_weight=gbm_weight).fit(
                images, seed=seed
            )
        else:
            model = CellNetClassifier().fit(images, steps=steps, seed=seed, log_every=max(1, steps // 10))
        model.save(out, training_data=str(folder.name), training_data_licence=licence)
        typer.echo(f"wrote {out}")

    @app.command("validate-ihc")
    def validate_ihc_cmd(
        store: Annotated[Path, typer.Option(help="DuckDB store.")],
        he_feature: Annotated[
            str, typer.Option(help="H&E lymphocyte density feature.")
        ] = "til_density_tumour_region_per_mm2",
        ihc_feature: Annotated[str, typer.Option(help="IHC density feature.")] = "cd3_density_tumour_region_per_mm2",
        json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the result as JSON.")] = None,
    ) -> None:
        """Per patient, H&E lymphocyte density against IHC CD3 density (Spearman rho)."""
        from immunodig.errors import StoreError
        from immunodig.nuclei.ihc import PATIENT_DENSITIES_SQL, validate_ihc
        from immunodig.store import query

        if not store.exists():
            raise StoreError(f"{store}: store not found; run build-features first")
        long = query(store, PATIENT_DENSITIES_SQL, {"he": he_feature, "ihc": ihc_feature})
        res = validate_ihc(long, he_feature, ihc_feature)
        typer.echo(
            f"{res['n_patients']} patients with both: Spearman rho {res['spearman_rho']:.3f} (p = {res['p_value']:.3g})"
        )
        _dump(res, json_out)
