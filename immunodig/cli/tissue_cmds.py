"""Commands of the tissue classifier: train-tissue-classifier, eval-tissue-classifier, describe-model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the tissue-classifier commands to ``app``."""

    @app.command("train-tissue-classifier")
    def train_tissue_classifier(
        train_dir: Path = typer.Argument(..., help="Folder with one sub-folder of tiles per class."),
        out: Path = typer.Option(..., "--out", help="Model file to write (.pt)."),
        val: Optional[Path] = typer.Option(None, "--val", help="Validation folder (same layout)."),
        method: str = typer.Option("features", "--method", help="features | cnn"),
        head: str = typer.Option("logistic", "--head", help="features: logistic | xgboost"),
        epochs: int = typer.Option(60, "--epochs", help="Maximum epochs (cnn)."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        augment: int = typer.Option(8, "--augment", help="Augmented copies per tile (features)."),
        mpp: float = typer.Option(0.5, "--mpp", help="µm/px of the training tiles."),
        licence: str = typer.Option("unknown", "--licence", help="Licence of the training data."),
    ) -> None:
        """Train a Kather-9 tile classifier; writes MODEL, MODEL.metrics.json, MODEL.confusion.png."""
        from immunodig.tissue.training import train_tissue_classifier as train

        metrics = train(train_dir, out, val_dir=val, method=method, epochs=epochs, seed=seed,
                        n_augment=augment, head=head, input_mpp=mpp, licence=licence)
        typer.echo(f"wrote {out} ({metrics['evaluation']}): balanced accuracy "
                   f"{metrics['balanced_accuracy']:.3f}")

    @app.command("eval-tissue-classifier")
    def eval_tissue_classifier(
        directory: Path = typer.Argument(..., help="Folder with one sub-folder of tiles per class."),
        model: Optional[Path] = typer.Option(None, "--model", help="Model file; default: the shipped one."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the metrics JSON here."),
        png_out: Optional[Path] = typer.Option(None, "--png", help="Write a confusion-matrix PNG here."),
    ) -> None:
        """Accuracy, balanced accuracy, per-class F1 and confusion matrix on a tile folder."""
        from immunodig.tissue.evaluate import evaluate_folder, save_confusion_png

        metrics = evaluate_folder(directory, model)
        typer.echo(f"n={metrics['n']}  accuracy {metrics['accuracy']:.3f}  "
                   f"balanced accuracy {metrics['balanced_accuracy']:.3f}  macro F1 {metrics['macro_f1']:.3f}")
        typer.echo("class  precision  recall  f1     support")
        for c, m in metrics["per_class"].items():
            if m["support"]:
                typer.echo(f"{c:<6} {m['precision']:.3f}      {m['recall']:.3f}   {m['f1']:.3f}  {m['support']}")
        if json_out is not None:
            json_out.write_text(json.dumps(metrics, indent=2))
        if png_out is not None:
            save_confusion_png(metrics, png_out)

    @app.command("describe-model")
    def describe_model(
        model: Path = typer.Argument(..., help="Model file (.pth/.pt/.ckpt state dict, TorchScript, .onnx)."),
        architecture: Optional[str] = typer.Option(
            None, "--architecture", help="torchvision / timm model name or TIAToolbox backbone (e.g. resnet18)."),
        classes: Optional[str] = typer.Option(
            None, "--classes", help="Class names in output order, comma-separated (e.g. ADI,BACK,...,TUM)."),
        mpp: Optional[float] = typer.Option(None, "--mpp", help="µm/px the model was trained at."),
        tile_size: Optional[int] = typer.Option(None, "--tile-size", help="Tile edge in pixels."),
        mean: Optional[str] = typer.Option(None, "--mean", help="3 comma-separated values (RGB in [0, 1])."),
        std: Optional[str] = typer.Option(None, "--std", help="3 comma-separated values."),
        layout: Optional[str] = typer.Option(
            None, "--layout", help="torchvision | timm | tiatoolbox | immunodig | torchscript | onnx "
                                   "(default: detected from the keys)."),
        output: Optional[str] = typer.Option(None, "--output", help="logits | probabilities."),
        licence: Optional[str] = typer.Option(None, "--licence", help="Licence of the weights and data."),
        write: bool = typer.Option(True, "--write/--no-write", help="Write MODEL.json beside the file."),
    ) -> None:
        """Load a model file, check the weights fit, say what it holds and write its side file."""
        from immunodig.tissue.describe import describe_model as describe, parse_values

        desc = describe(model, architecture=architecture, class_names=parse_values(classes, str, "--classes"),
                        input_mpp=mpp, tile_size_px=tile_size, mean=parse_values(mean, float, "--mean"),
                        std=parse_values(std, float, "--std"), layout=layout, output=output,
                        licence=licence, write=write)
        for line in desc.lines():
            typer.echo(line)
