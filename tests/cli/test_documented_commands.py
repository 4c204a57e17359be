"""Every command line of docs/ runs as written (issue 17).

:func:`tests.cli.doc_commands.documented_commands` reads them from the pages; :data:`PLANS` says
for each, by its exact text, how it is checked:

- ``run``: executed in the documentation workspace (:mod:`tests.cli.doc_workspace`) in page
  order, in the default suite; ``slow``: the same, under ``-m slow`` (a generated cohort, real
  public data, training);
- ``not run``: needs what cannot exist here (Slurm, a cluster's paths, network) or runs for many
  minutes; the reason is given;
- ``mention``: a command named in prose without its arguments.

Whatever the plan, the written command and option names must exist (``--help`` of that command,
or the script's argument parser). Shell words are expanded by bash exactly as a user's shell
would (quotes, ``$(cat FILE)``, ``\\$``, comments); ``cli.py`` commands then run in-process.
Placeholders of synopses (``SLIDE``, ``DIR``, ``MODEL.pt``) get the workspace's files and
optional ``[...]`` parts are left out. A documented command that is not in :data:`PLANS` fails
the test: a new example in docs/ must say how it is checked.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cli.doc_commands import REPO, DocCommand, documented_commands
from tests.cli.doc_workspace import DOC_SLIDE, make_workspace, python_shim

COMMANDS = documented_commands()
QUERY_FILES = sorted((REPO / "docs" / "queries").glob("*.sql"))


@dataclass(frozen=True)
class Plan:
    """How one documented command is checked (see the module docstring)."""

    kind: str
    reason: str = ""
    subs: dict[str, str] = field(default_factory=dict)
    before: Callable[[Path], None] | None = None
    after: Callable[[Path, str], None] | None = None
    #: Optional ``[--name VALUE]`` parts that are kept (e.g. a short ``--epochs N``).
    keep: tuple[str, ...] = ()


def run(**kw) -> Plan:
    return Plan("run", **kw)


def slow(reason: str, **kw) -> Plan:
    return Plan("slow", reason, **kw)


def not_run(reason: str) -> Plan:
    return Plan("not run", reason)


MENTION = Plan("mention")


# ----------------------------------------------------------------------------------- hooks
def make_key(ws: Path) -> None:
    """clinical.md creates the pseudonym key further down the page; a user has it first."""
    import secrets

    if not (ws / "cohort.key").exists():
        (ws / "cohort.key").write_text(secrets.token_hex(32) + "\n")


def oof_from_splits(ws: Path) -> None:
    """modelling.md: '... predict its test patients, add a column `prediction`' to splits.csv."""
    import numpy as np
    import pandas as pd

    splits = pd.read_csv(ws / "splits.csv")
    splits["prediction"] = np.random.default_rng(0).uniform(0, 1, len(splits))
    splits.to_csv(ws / "oof.csv", index=False)


def random_resnet18(ws: Path) -> None:
    """tissue.md's lab model: a torchvision ResNet-18 state dict (random weights) as the lab's file."""
    import torch
    import torchvision

    if not (ws / "lab_resnet18.pth").exists():
        torch.manual_seed(0)
        torch.save(torchvision.models.resnet18(num_classes=9).state_dict(), ws / "lab_resnet18.pth")


def disc_annotations(ws: Path) -> None:
    """structures.md's DIR: images with QuPath GeoJSON annotations (nuclei drawn as discs)."""
    from tests.structures.helpers import write_disc_folder

    if not (ws / "annotated").exists():
        write_disc_folder(ws / "annotated", 4, size=256)


def generated_cohort(ws: Path) -> None:
    """mil.md / embeddings.md start from slides: a generated 14-patient cohort (0.4 mm slides; the
    seed gives at least 6 patients of each resistance class and of PFS events and censorings,
    enough for 5-fold CV) replaces the hand-built store; SLIDES is its slide folder, slides.csv
    its manifest."""
    from immunodig.synthetic import make_cohort

    for name in ("cohort.duckdb", "cohort.duckdb.lock", "cohort_slides"):
        path = ws / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    cohort = make_cohort(ws / "generated", n_patients=14, seed=24, slide_mm=0.4, cd3_fraction=0.0)
    shutil.copy(cohort.manifest, ws / "slides.csv")


def import_generated_clinical(ws: Path) -> None:
    """The clinical table of the generated cohort (docs/clinical.md's first command)."""
    from immunodig.clinical import import_clinical

    import_clinical(ws / "generated" / "clinical.csv", ws / "cohort.duckdb")


def colon_tables(ws: Path) -> None:
    """Needs ../shared/data/r-survival-colon; the page's first command derives the tables."""
    if not (ws.parent / "shared" / "data" / "r-survival-colon" / "colon.csv").is_file():
        pytest.skip("../shared/data/r-survival-colon/colon.csv not found")


def needs_shared(relative: str) -> Callable[[Path], None]:
    def check(ws: Path) -> None:
        if not (ws.parent / "shared" / "data" / relative).exists():
            pytest.skip(f"../shared/data/{relative} not found")
    return check


def expect_file(name: str) -> Callable[[Path, str], None]:
    def check(ws: Path, out: str) -> None:
        assert (ws / name).exists() and (ws / name).stat().st_size > 0, f"{name} not written"
    return check


def expect_rows(ws: Path, out: str) -> None:
    assert re.search(r"shape: \([1-9]\d*, \d+\)", out), f"no row: {out[:200]}"


def expect_key(ws: Path, out: str) -> None:
    assert re.fullmatch(r"[0-9a-f]{64}\n", (ws / "cohort.key").read_text())


# ----------------------------------------------------------------------------------- plans
CLUSTER = "a cluster: the paths of its shared file system and Slurm; tests/compute runs the same code"
BENCH = "a benchmark (minutes of CPU); its results are the tables of docs/benchmarks.md"
PLANS: dict[str, Plan] = {
    # benchmarks.md
    "OMP_NUM_THREADS=1 python benchmarks/bench_scale.py --out /tmp/bench_scale2 --patients 4 --slide-mm 2.5":
        not_run(BENCH),
    "python cli.py ingest": MENTION,
    "OMP_NUM_THREADS=1 python benchmarks/bench_tissue.py --max-tiles 1000 --naive-tiles 100 --workers 2 "
    "--threads 2": not_run(BENCH),
    "python cli.py demo": not_run("about 16 minutes; tests/report/test_real_pipeline.py runs the same "
                                  "run_demo (slow)"),
    "python benchmarks/bench_patch_net.py": not_run(BENCH),
    # clinical.md
    "python cli.py import-clinical clinical.csv --store cohort.duckdb [--resistance-window-months 6]":
        run(),
    "python cli.py import-clinical export.xlsx --store cohort.duckdb --id-column ipp --key-file cohort.key":
        run(before=make_key),
    "python cli.py import-genomic genomic.csv --store cohort.duckdb": run(),
    "python cli.py import-multiplex densities.parquet --store cohort.duckdb": run(),
    'python -c "import secrets; print(secrets.token_hex(32))" > cohort.key': run(after=expect_key),
    # cluster.md
    "python cli.py build-features /data/slides --store cohort.duckdb --manifest slides.csv --workers 8":
        not_run(CLUSTER),
    "python cli.py build-features /shared/slides --store /shared/cohort/cohort.duckdb --manifest "
    "/shared/cohort/slides.csv --executor slurm --partition gpu --gpus 1 --cpus 8 --mem-gb 32 --time-min 120 "
    "--slides-per-task 10 --array-parallelism 16 --account mylab": not_run(CLUSTER),
    "python cli.py ingest --store /shared/cohort/cohort.duckdb": not_run(CLUSTER),
    "python cli.py status --store /shared/cohort/cohort.duckdb": not_run(CLUSTER),
    "python -m pytest -m slurm tests/compute": not_run("needs a local single-node Slurm (slurm-wlm + "
                                                       "munge), as the page says"),
    # embeddings.md
    "python cli.py build-features SLIDES --store S.duckdb --manifest slides.csv --embeddings [--encoder FILE "
    "--encoder-arch NAME]": slow("builds a generated cohort", before=generated_cohort,
                                 subs={"SLIDES": "generated/slides", "S.duckdb": "cohort.duckdb"}),
    "OMP_NUM_THREADS=1 python scripts/train_default_encoder.py --epochs 40 --outer-folds 5":
        not_run("retrains the shipped encoder (40 epochs x 5 folds, tens of minutes); its output is the "
                "committed asset"),
    "OMP_NUM_THREADS=1 python benchmarks/bench_encoders.py --max-tiles 256 --vit-tiles 32 --threads 1":
        not_run(BENCH),
    # features.md
    "python -m immunodig.features.docs": not_run("rewrites docs/features.md in the source tree; "
                                                 "tests/features/test_catalogue_docs.py checks the committed "
                                                 "page equals what it writes"),
    # install.md
    "python3 -m venv .venv": not_run("creates an environment (the suite runs in one)"),
    ".venv/bin/pip install -e . # runtime": not_run("installs from the package index (network)"),
    ".venv/bin/pip install -e '.[test]' # + pytest, scikit-survival (independent checks)":
        not_run("installs from the package index (network)"),
    # mil.md
    "python cli.py build-features SLIDES/ --store cohort.duckdb --manifest slides.csv --embeddings":
        slow("builds a generated cohort", before=generated_cohort, subs={"SLIDES/": "generated/slides/"}),
    "python cli.py evaluate --store cohort.duckdb --model abmil --outcome resistance":
        slow("5 x 5-fold CV of a MIL network", before=import_generated_clinical),
    "python cli.py evaluate --store cohort.duckdb --model abmil --outcome pfs --clinical-fusion "
    "--mil-param epochs=60": slow("5 x 5-fold CV of a MIL network"),
    "python cli.py compare --store cohort.duckdb --model logistic --outcome resistance --mil abmil,meanpool":
        slow("5 x 5-fold CV of three models"),
    "python cli.py show SLIDE --store cohort.duckdb --attention latest":
        slow("needs the MIL run above", subs={"SLIDE": "P0001_HE1.tiff"}),
    "OMP_NUM_THREADS=1 python scripts/validate_mil_tile_bags.py":
        not_run("5 x 5-fold CV of four MIL models on 80 bags of real tiles (tens of minutes); its output "
                "is the table below it"),
    "python benchmarks/bench_mil.py --patients 200 --tiles 2000 --dims 64,384 --threads 2": not_run(BENCH),
    # modelling.md
    "python cli.py evaluate --table matrix.csv --id patient_id --label resistant --model xgboost --json r.json":
        slow("nested CV of XGBoost", after=expect_file("r.json")),
    "python cli.py evaluate --table matrix.parquet --id patient_id --time pfs_months --event pfs_event "
    "--model cox --repeats 5 --folds 5 --seed 0 --json r.json": slow("5 x 5-fold nested CV",
                                                                      after=expect_file("r.json")),
    "python cli.py evaluate --store cohort.duckdb --outcome resistance --features combined --model logistic":
        slow("5 x 5-fold nested CV"),
    "python cli.py fit --store cohort.duckdb --outcome pfs --features combined --model cox --out cox.joblib":
        run(after=expect_file("cox.joblib")),
    "python cli.py predict --model cox.joblib --store cohort.duckdb --out predictions.csv":
        run(after=expect_file("predictions.csv")),
    "python cli.py fit --table A.csv --id id --time time --event status --model cox --reference rx=Obs "
    "--json fit.json --out cox.joblib": run(after=expect_file("fit.json")),
    "python cli.py evaluate --model-file cox.joblib --table B.csv --json external.json":
        run(after=expect_file("external.json")),
    "python cli.py compare --table A.csv --id id --time time --event status --model cox --set clinical=age,sex "
    "--set morphology=til,area --set combined=clinical,morphology": slow("nested CV of three feature sets"),
    "python cli.py splits --store cohort.duckdb --outcome resistance --out splits.csv "
    "# patient_id, repeat, fold": run(after=expect_file("splits.csv")),
    "python cli.py evaluate --store cohort.duckdb --outcome resistance --oof-file oof.csv --name gpu-model":
        run(before=oof_from_splits),
    "python -c \"import pandas as pd; c = pd.read_csv('../shared/data/r-survival-colon/colon.csv', index_col=0); "
    "r = c[c.etype == 1].drop(columns=['etype', 'study']); r.to_csv('colon_rec.csv', index=False); "
    "r[r.id <= 465].to_csv('colonA.csv', index=False); r[r.id > 465].to_csv('colonB.csv', index=False)\"":
        slow("real data", before=colon_tables, after=expect_file("colonB.csv")),
    "python cli.py evaluate --table colon_rec.csv --id id --time time --event status --covariates "
    "rx,sex,age,obstruct,perfor,adhere,nodes,differ,extent,surg,node4 --model cox":
        slow("5 x 5-fold nested CV on 929 patients (165 s)", before=colon_tables),
    "python cli.py fit --table colon_rec.csv --id id --time time --event status --model cox --reference "
    "rx=Obs --covariates rx,sex,age,obstruct,perfor,adhere,nodes,differ,extent,surg,node4 --json fit.json "
    "# 22 s": slow("22 s", before=colon_tables),
    "python cli.py fit --table colonA.csv --id id --time time --event status --model cox --out A.joblib":
        slow("real data", before=colon_tables),
    "python cli.py evaluate --model-file A.joblib --table colonB.csv --json ext.json # 21 s":
        slow("21 s", before=colon_tables),
    "python cli.py compare --table colon_rec.csv --id id --time time --event status --model cox --set "
    "base=rx,sex,age,obstruct,perfor,adhere,differ,extent,surg --set with_nodes=base,nodes,node4":
        not_run("5.5 min of nested CV on 929 patients (the page's figure); the colon commands above run "
                "under -m slow"),
    # nuclei.md
    "python cli.py eval-nuclei ../shared/data/monuseg --method segmenter --json out.json":
        slow("real data", before=needs_shared("monuseg"), after=expect_file("out.json")),
    "python cli.py train-cell-classifier DIR --out MODEL.pkl [--cnn-models 2 --cnn-epochs 32 --gbm-weight 0]":
        not_run("trains the shipped cell classifier's CNNs on CRCHistoPhenotypes (about 7 min on 2 cores)"),
    "python cli.py eval-lymphocytes ../shared/data/crchistophenotypes --json out.json":
        not_run("3-11 minutes on 2 cores (the page's figures)"),
    "python cli.py eval-lymphocytes ../shared/data/crchistophenotypes":
        not_run("3-11 minutes on 2 cores (the page's figures)"),
    "python cli.py validate-ihc --store FILE [--json OUT]": run(subs={"FILE": "cohort.duckdb"}),
    # queries
    'python cli.py query "$(cat docs/queries/04_features_of_one_patient.sql)" --store S --param '
    "patient_id=P_0001": run(subs={"S": "cohort.duckdb"}, after=expect_rows),
    'python cli.py query "<SQL>" --store immunodig.duckdb':
        run(subs={"<SQL>": "select count(*) as n from slides", "immunodig.duckdb": "cohort.duckdb"}),
    "python cli.py query --file my_query.sql --store immunodig.duckdb":
        run(subs={"immunodig.duckdb": "cohort.duckdb"}, after=expect_rows),
    # report.md
    "python cli.py report --store cohort.duckdb --out report.html [--max-slides 24] [--work-dir DIR]":
        run(after=expect_file("report.html")),
    "python cli.py evaluate --store ...": MENTION,
    "python cli.py show s_0123456789abcdef --store cohort.duckdb [--out-dir DIR]":
        run(after=expect_file(f"cohort_slides/{DOC_SLIDE}/overlay_compartments.png")),
    "python cli.py show --all --store cohort.duckdb":
        slow("five overlays for each of the workspace's 30 slides (about 50 s)",
             after=expect_file(f"cohort_slides/{DOC_SLIDE}/overlay_qc_excluded.png")),
    "python cli.py export-geojson s_0123456789abcdef --store cohort.duckdb --out slide.geojson [--no-tiles] "
    "[--no-annotations] [--no-nuclei] [--points]": run(after=expect_file("slide.geojson")),
    "python cli.py export-geojson --all --store cohort.duckdb --out geojson/":
        run(after=expect_file(f"geojson/{DOC_SLIDE}.geojson")),
    # store.md
    'python cli.py query "select * from patient_dataset" --store cohort.duckdb --format csv': run(),
    'python cli.py query "select * from slides where patient_id = \\$p" --store cohort.duckdb --param p=P_0001':
        run(after=expect_rows),
    "python cli.py query --file docs/queries/07_patient_dataset.sql --store cohort.duckdb": run(after=expect_rows),
    "python cli.py check-store --store cohort.duckdb": run(),
    "python cli.py check-store": MENTION,
    "python cli.py query --file docs/queries/NN_name.sql --store F": MENTION,  # every file: see below
    "python cli.py query": MENTION,
    "python cli.py export-dataset --store cohort.duckdb --out dataset.parquet":
        run(after=expect_file("dataset.columns.csv")),
    # structures.md
    "python cli.py train-segmenter DIR --out MODEL.pt --mpp M [--classes a,b] [--epochs N] [--arch unet] "
    "[--encoder resnet18] [--seed S] [--patch 256] [--instances components|watershed] [--encoder-weights FILE] "
    "[--image-mpp M0] [--threads T] [--licence TEXT]":
        slow("trains a U-Net for two epochs", before=disc_annotations, keep=("--epochs",),
             subs={"DIR": "annotated", "MODEL.pt": "segmenter.pt", "M": "0.5", "N": "2"},
             after=expect_file("segmenter.pt")),
    "python cli.py eval-segmenter DIR --model MODEL.pt --mpp M [--json OUT]":
        slow("needs the model above", subs={"DIR": "annotated", "MODEL.pt": "segmenter.pt", "M": "0.5"}),
    "python cli.py eval-segmenter DIR --cv K --mpp M [training options] [--json OUT]":
        not_run("a cross-validation of the training above: as many trainings as folds at the default "
                "30 epochs (the MoNuSeg run below took 14 min)"),
    "python cli.py export-geojson SLIDE --store S --out F.geojson --no-tiles --no-annotations --no-nuclei":
        run(subs={"SLIDE": DOC_SLIDE, "S": "cohort.duckdb", "F.geojson": "structures.geojson"},
            after=expect_file("structures.geojson")),
    "python scripts/monuseg_to_geojson.py --src ../shared/data/monuseg --out /tmp/mnsg":
        not_run("MoNuSeg validation, 14 min on 2 cores, in /tmp outside any test folder; the table below "
                "it is its output"),
    "python cli.py eval-segmenter /tmp/mnsg --mpp 0.5 --image-mpp 0.25 --cv 3 --instances watershed --patch "
    "128 --epochs 20 --threads 1 --seed 0 --json /tmp/mnsg_cv.json": not_run("MoNuSeg validation, 14 min"),
    "python cli.py train-segmenter /tmp/mnsg_train --out /tmp/mnsg_model/nucleus.pt --mpp 0.5 --image-mpp 0.25 "
    '--instances watershed --patch 128 --epochs 20 --threads 1 --seed 0 --licence "CC BY-NC-SA 4.0 (MoNuSeg)"':
        not_run("MoNuSeg validation (163 s of training on a fold copied by hand)"),
    "python cli.py eval-segmenter /tmp/mnsg_test --model /tmp/mnsg_model/nucleus.pt --mpp 0.5 --image-mpp 0.25":
        not_run("needs the MoNuSeg model above"),
    "python benchmarks/bench_structures.py --threads 1 [--mpp 2.0]": not_run(BENCH),
    # synthetic.md
    "python cli.py synth-cohort --out DIR --patients 8 --seed 0 --slide-mm 4 [--mpp 0.5] [--cd3-fraction 0.3] "
    "[--workers 2]": slow("renders 8 patients' 4 mm slides", subs={"DIR": "synth"},
                          after=expect_file("synth/slides.csv")),
    "python scripts/demo_design_coverage.py": run(),  # class maps only, no pixels (~5 s)
    # tissue.md
    "python cli.py train-tissue-classifier TRAIN_DIR [--val VAL_DIR] --out MODEL.pt [--method features|cnn] "
    "[--epochs 60] [--seed 0] [--augment 8] [--mpp 0.5] [--licence TEXT]":
        slow("5-fold CV with 8 augmented views per tile (about 17 s)",
             subs={"TRAIN_DIR": "tiles", "MODEL.pt": "tissue.pt"}, after=expect_file("tissue.metrics.json")),
    "python cli.py eval-tissue-classifier DIR [--model MODEL.pt] [--json OUT.json] [--png OUT.png]":
        run(subs={"DIR": "tiles"}),
    "python cli.py describe-model MODEL.pth --architecture resnet18 --classes ADI,BACK,DEB,LYM,MUC,MUS,NORM,STR,"
    "TUM --mpp 0.5 --tile-size 224 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 [--layout torchvision|timm|"
    "tiatoolbox|immunodig|torchscript|onnx] [--output logits|probabilities] [--licence TEXT] [--no-write]":
        slow("a 45 MB ResNet-18 file", before=random_resnet18, subs={"MODEL.pth": "lab_resnet18.pth"}),
    "python cli.py describe-model lab_resnet18.pth --architecture resnet18 --classes ADI,BACK,DEB,LYM,MUC,MUS,"
    "NORM,STR,TUM --mpp 0.5 --tile-size 224 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225":
        slow("a 45 MB ResNet-18 file", before=random_resnet18),
    "python cli.py eval-tissue-classifier ../shared/data/kather-crc-val-he-7k --model lab_resnet18.pth --json "
    "lab_resnet18.val.json --png lab_resnet18.val.png":
        slow("a ResNet-18 on the real tiles", before=needs_shared("kather-crc-val-he-7k"),
             after=expect_file("lab_resnet18.val.png")),
    "OMP_NUM_THREADS=1 python scripts/train_default_tissue_model.py":
        not_run("retrains the shipped tissue classifier; its output is the committed asset"),
}


# ------------------------------------------------------------------------ written names exist
def _cli_options() -> dict[str, set[str]]:
    """Every ``cli.py`` command -> its option names (``--x`` and ``--no-x``)."""
    import typer

    from immunodig.cli.app import app

    group = typer.main.get_command(app)
    return {name: {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
            for name, cmd in group.commands.items()}


def written_names_problems(cmd: DocCommand, options: dict[str, set[str]]) -> list[str]:
    """What the command names that does not exist: a ``cli.py`` command or option, a script or
    its options, a module, a pytest marker, a package extra."""
    words = cmd.words
    while words and re.fullmatch(r"[A-Z_]+=\S+", words[0]):
        words = words[1:]
    flags = {w.strip("[]").split("=")[0] for w in words if w.strip("[]").startswith("--")}
    if cmd.cli_command is not None:
        known = options.get(cmd.cli_command)
        if known is None:
            return [f"no command {cmd.cli_command!r}"]
        return [f"{cmd.cli_command}: no option {f}" for f in sorted(flags - known)]
    if words[:1] == ["python"] and len(words) > 1 and words[1].endswith(".py"):
        script = REPO / words[1]
        if not script.is_file():
            return [f"no script {words[1]}"]
        source = script.read_text(encoding="utf-8")
        return [f"{words[1]}: no option {f}" for f in sorted(flags) if f'"{f}"' not in source]
    if words[:2] == ["python", "-m"] and words[2] == "pytest":
        markers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
        marker = words[words.index("-m", 2) + 1]
        problems = [] if any(m.startswith(f"{marker}:") for m in markers) else [f"no pytest marker {marker}"]
        return problems + [f"no path {w}" for w in words[5:] if not (REPO / w).exists()]
    if words[:2] == ["python", "-m"]:
        import importlib.util

        return [] if importlib.util.find_spec(words[2]) else [f"no module {words[2]}"]
    if words[0] == ".venv/bin/pip":
        extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
        wanted = re.findall(r"\[(\w+)\]", cmd.text)
        return [f"no extra [{e}] in pyproject.toml" for e in wanted if e not in extras]
    return []


def test_every_documented_command_has_a_plan():
    texts = [c.text for c in COMMANDS]
    assert len(texts) > 60, "the extraction lost the commands"
    missing = [f"{c.source}:{c.line}: {c.text}" for c in COMMANDS if c.text not in PLANS]
    assert not missing, "documented commands without a plan in PLANS:\n" + "\n".join(missing)
    stale = sorted(set(PLANS) - set(texts))
    assert not stale, "PLANS names commands docs/ no longer shows:\n" + "\n".join(stale)
    for text, plan in PLANS.items():
        assert plan.kind in ("run", "slow", "not run", "mention")
        assert plan.kind in ("run", "mention") or plan.reason, text


def test_documented_command_and_option_names_exist():
    options = _cli_options()
    problems = [f"{c.source}:{c.line}: {p}" for c in COMMANDS for p in written_names_problems(c, options)]
    assert not problems, "\n".join(problems)


def test_a_wrong_option_or_command_is_caught():
    """The name check can fail."""
    options = _cli_options()
    bad = DocCommand("x.md", 1, "python cli.py show SLIDE --store S --colour red")
    assert written_names_problems(bad, options) == ["show: no option --colour"]
    assert written_names_problems(DocCommand("x.md", 1, "python cli.py shwo --all"), options) == \
        ["no command 'shwo'"]
    assert written_names_problems(DocCommand("x.md", 1, "python scripts/none.py"), options) == \
        ["no script scripts/none.py"]


# ------------------------------------------------------------------------------ running them
def substitute(text: str, subs: dict[str, str], keep: tuple[str, ...] = ()) -> str:
    """Drop ``[...]`` optional parts (a bracket after a space: not Python's ``c[c.etype == 1]``)
    except those starting with an option of ``keep``, then replace each placeholder as a whole
    word."""
    def optional(m: re.Match) -> str:
        inner = m.group(1)
        return " " + inner if inner.split(" ")[0] in keep else ""

    text = re.sub(r"\s+\[([^\]]*)\]", optional, text)
    for token, value in sorted(subs.items(), key=lambda kv: -len(kv[0])):
        end = r"(?![\w.-])" if token[-1].isalnum() else ""
        text = re.sub(rf"(?<![\w./-]){re.escape(token)}{end}", value.replace("\\", r"\\"), text)
    return text


def test_substitute_fills_placeholders_and_drops_options():
    assert substitute("python cli.py show SLIDE --store S [--out-dir DIR]",
                      {"SLIDE": "s_1", "S": "c.duckdb", "DIR": "x"}) == "python cli.py show s_1 --store c.duckdb"
    assert substitute("python cli.py x SLIDES/ --store S.duckdb", {"SLIDES/": "g/", "S.duckdb": "c.duckdb"}) \
        == "python cli.py x g/ --store c.duckdb"
    code = 'python -c "r = c[c.etype == 1]; r.to_csv(F)" [--x]'
    assert substitute(code, {}) == 'python -c "r = c[c.etype == 1]; r.to_csv(F)"'
    assert substitute("python cli.py t DIR [--epochs N] [--arch unet]", {"N": "2"}, keep=("--epochs",)) == \
        "python cli.py t DIR --epochs 2"


def shell_words(command: str, cwd: Path) -> list[str]:
    """The argv bash makes of ``python cli.py ARGS`` (quotes, ``$(...)``, escapes, comments)."""
    assert command.startswith("python cli.py ")
    script = "printf '%s\\0' " + command[len("python cli.py "):]
    res = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout.split("\0")[:-1]


def query_file_commands() -> list[str]:
    """store.md: ``query --file docs/queries/NN_name.sql --store F`` for every file (with the values
    of its ``-- params:`` line), and reliability.md's ``query "$(cat docs/queries/X.sql)"``."""
    out = []
    for path in QUERY_FILES:
        m = re.search(r"^-- params: (\{.*\})$", path.read_text(), flags=re.M)
        params = "".join(f" --param {k}={v}" for k, v in (json.loads(m.group(1)) if m else {}).items())
        rel = path.relative_to(REPO).as_posix()
        out += [f"python cli.py query --file {rel} --store cohort.duckdb{params}",
                f'python cli.py query "$(cat {rel})" --store cohort.duckdb{params}']
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("docs"))


@pytest.fixture
def page_workspace(workspace, tmp_path) -> Path:
    """A private copy of the workspace (commands of one page change its store)."""
    target = tmp_path / "repo"
    shutil.copytree(workspace, target, symlinks=True)
    if (workspace.parent / "shared").exists():
        (tmp_path / "shared").symlink_to((workspace.parent / "shared").resolve())
    return target


def run_commands(commands: list[tuple[str, Plan]], ws: Path, cli, monkeypatch) -> list[str]:
    """Run ``(written text, plan)`` in order in ``ws``; returns one line per failure."""
    monkeypatch.chdir(ws)
    shim = python_shim(ws.parent / "bin", sys.executable)
    failures, timings = [], []
    for text, plan in commands:
        if plan.before is not None:
            plan.before(ws)
        command = substitute(text, plan.subs, plan.keep)
        t0 = time.monotonic()
        if command.startswith("python cli.py "):
            res = cli(*shell_words(command, ws))
            code, out, err = res.code, res.out, res.err
        else:
            proc = subprocess.run(["bash", "-c", command], cwd=ws, capture_output=True, text=True, timeout=600,
                                  env={"PATH": f"{shim}:/usr/bin:/bin", "HOME": str(ws)})
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        timings.append(f"{time.monotonic() - t0:5.1f} s  {command}")
        if code != 0:
            failures.append(f"{command}\n  exit {code}: {(err or out)[-800:]}")
            continue
        if plan.after is not None:
            try:
                plan.after(ws, out)
            except AssertionError as exc:
                failures.append(f"{command}\n  {exc}")
    print("\n".join(timings))
    return failures


PAGES = sorted({c.source for c in COMMANDS if PLANS.get(c.text, MENTION).kind == "run"})
SLOW_PAGES = sorted({c.source for c in COMMANDS if PLANS.get(c.text, MENTION).kind == "slow"})


def _page_commands(page: str, kind: str) -> list[tuple[str, Plan]]:
    return [(c.text, PLANS[c.text]) for c in COMMANDS if c.source == page and PLANS.get(c.text) is not None
            and PLANS[c.text].kind == kind]


@pytest.mark.parametrize("page", PAGES)
def test_documented_commands_run(page, page_workspace, cli, monkeypatch):
    """The page's runnable commands, in page order, each exiting 0 (and writing what it says)."""
    commands = _page_commands(page, "run")
    if page == "docs/store.md":
        commands += [(text, run(after=expect_rows)) for text in query_file_commands()]
    failures = run_commands(commands, page_workspace, cli, monkeypatch)
    assert not failures, f"{page}: {len(failures)} of {len(commands)} documented commands failed:\n" + \
        "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("page", SLOW_PAGES)
def test_documented_slow_commands_run(page, page_workspace, cli, monkeypatch):
    """The page's long commands (generated cohort, training, real data) in page order."""
    failures = run_commands(_page_commands(page, "slow"), page_workspace, cli, monkeypatch)
    assert not failures, f"{page}: documented commands failed:\n" + "\n".join(failures)
