"""Commands of the structure segmenters: train-segmenter, eval-segmenter (docs/structures.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

#: Options shared by train-segmenter and eval-segmenter --cv.
EPOCHS_OPT = typer.Option("--epochs", help="Maximum epochs (early stopping on a validation split).")
ARCH_OPT = typer.Option("--arch", help="segmentation-models-pytorch architecture (unet, fpn, ...).")
ENCODER_OPT = typer.Option("--encoder", help="smp encoder (resnet18, resnet34, efficientnet-b0, ...).")
WEIGHTS_OPT = typer.Option("--encoder-weights", help="Local file of encoder weights (default: random).")
PATCH_OPT = typer.Option("--patch", help="Training patch edge in px at --mpp.")
THREADS_OPT = typer.Option("--threads", help="torch CPU threads (default: torch's).")
INSTANCES_OPT = typer.Option("--instances", help="components | watershed (touching objects, e.g. nuclei).")
IMAGE_MPP_OPT = typer.Option("--image-mpp", help="µm/px of image tiles (default --mpp); slides use metadata.")


def _classes(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def _params(epochs: int, arch: str, encoder: str, seed: int, patch: int, threads: Optional[int],
            instances: str, encoder_weights: Optional[Path]):
    from immunodig.structures.training import SegmenterTrainingParams

    return SegmenterTrainingParams(architecture=arch, encoder=encoder, epochs=epochs, seed=seed, patch_px=patch,
                                   num_threads=threads, instances=instances,
                                   encoder_weights=str(encoder_weights) if encoder_weights else None)


def _print_scores(metrics: dict) -> None:
    typer.echo(f"dice {metrics['dice']:.3f}  iou {metrics['iou']:.3f}  ({metrics['n_images']} images)")
    for name, m in metrics["per_class"].items():
        typer.echo(f"  {name}: dice {m['dice']:.3f} iou {m['iou']:.3f} object F1 {m['object_f1']:.3f} "
                   f"(precision {m['object_precision']:.3f}, recall {m['object_recall']:.3f})")


def register(app: typer.Typer) -> None:
    """Add the structure-segmenter commands to ``app``."""

    @app.command("train-segmenter")
    def train_segmenter(
        train_dir: Annotated[Path, typer.Argument(help="Folder of images/slides with same-stem .geojson files.")],
        out: Annotated[Path, typer.Option("--out", help="Model file to write (.pt).")],
        mpp: Annotated[float, typer.Option("--mpp", help="µm/px the model works at.")],
        classes: Annotated[Optional[str], typer.Option("--classes", help="Structure classes a,b (default: all).")
                           ] = None,
        epochs: Annotated[int, EPOCHS_OPT] = 30,
        arch: Annotated[str, ARCH_OPT] = "unet",
        encoder: Annotated[str, ENCODER_OPT] = "resnet18",
        seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
        patch: Annotated[int, PATCH_OPT] = 256,
        threads: Annotated[Optional[int], THREADS_OPT] = None,
        instances: Annotated[str, INSTANCES_OPT] = "components",
        encoder_weights: Annotated[Optional[Path], WEIGHTS_OPT] = None,
        image_mpp: Annotated[Optional[float], IMAGE_MPP_OPT] = None,
        licence: Annotated[str, typer.Option("--licence", help="Licence of the training data.")] = "unknown",
    ) -> None:
        """Train a structure segmenter from QuPath GeoJSON annotations; writes MODEL and MODEL.metrics.json."""
        from immunodig.structures.training import train_segmenter_folder

        summary = train_segmenter_folder(
            train_dir, out, mpp, _classes(classes),
            _params(epochs, arch, encoder, seed, patch, threads, instances, encoder_weights),
            image_mpp=image_mpp, licence=licence)
        typer.echo(f"wrote {out}: classes {', '.join(summary['classes'])}; best epoch {summary['best_epoch']}, "
                   f"validation dice {summary['best_val_dice']:.3f} ({summary['validation']})")

    @app.command("eval-segmenter")
    def eval_segmenter(
        directory: Annotated[Path, typer.Argument(help="Folder of images/slides with same-stem .geojson files.")],
        mpp: Annotated[float, typer.Option("--mpp", help="µm/px (must match the model's).")],
        model: Annotated[Optional[Path], typer.Option("--model", help="Model file (immunodig, TorchScript, "
                                                                      "state dict + side file).")] = None,
        json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the metrics JSON here.")] = None,
        cv: Annotated[Optional[int], typer.Option("--cv", help="Instead of --model: grouped K-fold "
                                                               "cross-validation, training K models.")] = None,
        classes: Annotated[Optional[str], typer.Option("--classes", help="--cv: structure classes a,b.")] = None,
        epochs: Annotated[int, EPOCHS_OPT] = 30,
        arch: Annotated[str, ARCH_OPT] = "unet",
        encoder: Annotated[str, ENCODER_OPT] = "resnet18",
        seed: Annotated[int, typer.Option("--seed", help="--cv: random seed.")] = 0,
        patch: Annotated[int, PATCH_OPT] = 256,
        threads: Annotated[Optional[int], THREADS_OPT] = None,
        instances: Annotated[str, INSTANCES_OPT] = "components",
        encoder_weights: Annotated[Optional[Path], WEIGHTS_OPT] = None,
        image_mpp: Annotated[Optional[float], IMAGE_MPP_OPT] = None,
    ) -> None:
        """Pixel Dice and IoU, object precision/recall/F1 (IoU > 0.5) per class, of a model or by grouped CV."""
        from immunodig.errors import ConfigError
        from immunodig.io import write_json_atomic

        if (model is None) == (cv is None):
            raise ConfigError("eval-segmenter: give either --model MODEL.pt or --cv K (cross-validation)")
        if model is not None:
            from immunodig.structures.evaluation import evaluate_folder

            metrics = evaluate_folder(directory, model, mpp, image_mpp)
        else:
            from immunodig.structures.dataset import load_annotated_folder
            from immunodig.structures.evaluation import cross_validate

            regions, names = load_annotated_folder(directory, mpp, _classes(classes), image_mpp)
            metrics = cross_validate(regions, names, mpp, cv,
                                     _params(epochs, arch, encoder, seed, patch, threads, instances, encoder_weights))
            metrics.update({"mpp": mpp, "classes": names})
        _print_scores(metrics)
        if json_out is not None:
            write_json_atomic(json_out, metrics)
            typer.echo(f"wrote {json_out}")
