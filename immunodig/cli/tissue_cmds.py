"""Commands of the tissue classifier: train-tissue-classifier, eval-tissue-classifier, describe-model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def _in_sample_note(directory: Path, provenance: dict, metrics: dict) -> str | None:
    """A warning when ``directory`` holds the model's own training tiles, else ``None``.

    The training set is recognised by ``provenance.real_files_sha256`` (SHA-256 of the sorted
    per-file SHA-256s, as scripts/train_default_tissue_model.py records it) or by the folder name
    ``provenance.train_dir`` (train-tissue-classifier).
    """
    from immunodig.tissue.dataset import list_folder_dataset

    recorded = provenance.get("real_files_sha256")
    same_set = False
    if recorded:
        files = [p for p, _ in list_folder_dataset(directory)]
        digest = hashlib.sha256("".join(sorted(hashlib.sha256(p.read_bytes()).hexdigest()
                                               for p in files)).encode()).hexdigest()
        same_set = digest == recorded
    same_name = provenance.get("train_dir") == Path(directory).name
    if not (same_set or same_name):
        return None
    why = "the same files" if same_set else f"a folder named like the training folder {directory.name!r}"
    cv = metrics.get("cv_balanced_accuracy")
    honest = (f"; its out-of-sample estimate is balanced accuracy {cv:.3f} "
              f"({metrics.get('cv_scheme', 'cross-validation')})") if cv is not None else ""
    return (f"IN-SAMPLE: {why} the model was trained on, so these figures measure fit, not "
            f"accuracy on new tiles{honest}")


def register(app: typer.Typer) -> None:
    """Add the tissue-classifier commands to ``app``."""

    @app.command("train-tissue-classifier")
    def train_tissue_classifier(
        train_dir: Annotated[Path, typer.Argument(help="Folder with one sub-folder of tiles per class.")],
        out: Annotated[Path, typer.Option("--out", help="Model file to write (.pt).")],
        val: Annotated[Optional[Path], typer.Option("--val", help="Validation folder (same layout).")] = None,
        method: Annotated[str, typer.Option("--method", help="features | cnn")] = "features",
        head: Annotated[str, typer.Option("--head", help="features: logistic | xgboost")] = "logistic",
        epochs: Annotated[int, typer.Option("--epochs", help="Maximum epochs (cnn).")] = 60,
        seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
        augment: Annotated[int, typer.Option("--augment", help="Augmented copies per tile (features).")] = 8,
        mpp: Annotated[float, typer.Option("--mpp", help="µm/px of the training tiles.")] = 0.5,
        licence: Annotated[str, typer.Option("--licence", help="Licence of the training data.")] = "unknown",
    ) -> None:
        """Train a Kather-9 tile classifier; writes MODEL, MODEL.metrics.json, MODEL.confusion.png."""
        from immunodig.tissue.training import train_tissue_classifier as train

        metrics = train(train_dir, out, val_dir=val, method=method, epochs=epochs, seed=seed,
                        n_augment=augment, head=head, input_mpp=mpp, licence=licence)
        typer.echo(f"wrote {out} ({metrics['evaluation']}): balanced accuracy "
                   f"{metrics['balanced_accuracy']:.3f}")

    @app.command("eval-tissue-classifier")
    def eval_tissue_classifier(
        directory: Annotated[Path, typer.Argument(help="Folder with one sub-folder of tiles per class.")],
        model: Annotated[Optional[Path], typer.Option("--model", help="Model file; default: the shipped one.")] = None,
        json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the metrics JSON here.")] = None,
        png_out: Annotated[Optional[Path], typer.Option("--png", help="Write a confusion-matrix PNG here.")] = None,
    ) -> None:
        """Accuracy, balanced accuracy, per-class F1 and confusion matrix on a tile folder.

        Says so when the folder is the model's own training set (in-sample figures).
        """
        from immunodig.tissue.classifier import load_tissue_classifier
        from immunodig.tissue.classifier_eval import evaluate_folder, save_confusion_png

        metrics = evaluate_folder(directory, model)
        meta = load_tissue_classifier(model).metadata
        note = _in_sample_note(directory, meta.provenance, meta.metrics)
        metrics["in_sample"] = note is not None
        if note:
            typer.echo(note)
        typer.echo(f"n={metrics['n']}  accuracy {metrics['accuracy']:.3f}  "
                   f"balanced accuracy {metrics['balanced_accuracy']:.3f}  macro F1 {metrics['macro_f1']:.3f}"
                   + ("  (in-sample)" if note else ""))
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
        model: Annotated[Path, typer.Argument(help="Model file (.pth/.pt/.ckpt state dict, TorchScript, .onnx).")],
        architecture: Annotated[Optional[str], typer.Option(
            "--architecture", help="torchvision / timm model name or TIAToolbox backbone (e.g. resnet18).")] = None,
        classes: Annotated[Optional[str], typer.Option(
            "--classes", help="Class names in output order, comma-separated (e.g. ADI,BACK,...,TUM).")] = None,
        mpp: Annotated[Optional[float], typer.Option("--mpp", help="µm/px the model was trained at.")] = None,
        tile_size: Annotated[Optional[int], typer.Option("--tile-size", help="Tile edge in pixels.")] = None,
        mean: Annotated[Optional[str], typer.Option("--mean", help="3 comma-separated values (RGB in [0, 1]).")] = None,
        std: Annotated[Optional[str], typer.Option("--std", help="3 comma-separated values.")] = None,
        layout: Annotated[Optional[str], typer.Option(
            "--layout", help="torchvision | timm | tiatoolbox | immunodig | torchscript | onnx "
                             "(default: detected from the keys).")] = None,
        output: Annotated[Optional[str], typer.Option("--output", help="logits | probabilities.")] = None,
        licence: Annotated[Optional[str], typer.Option("--licence", help="Licence of the weights and data.")] = None,
        write: Annotated[bool, typer.Option("--write/--no-write", help="Write MODEL.json beside the file.")] = True,
    ) -> None:
        """Load a model file, check the weights fit, say what it holds and write its side file."""
        from immunodig.tissue.describe import describe_model as describe
        from immunodig.tissue.describe import parse_values

        desc = describe(model, architecture=architecture, class_names=parse_values(classes, str, "--classes"),
                        input_mpp=mpp, tile_size_px=tile_size, mean=parse_values(mean, float, "--mean"),
                        std=parse_values(std, float, "--std"), layout=layout, output=output,
                        licence=licence, write=write)
        for line in desc.lines():
            typer.echo(line)
