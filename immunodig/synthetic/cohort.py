"""The demo cohort on disk: slides, manifest, clinical table and ground truth."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from immunodig.io import atomic_path
from immunodig.synthetic.clinical import clinical_table, cohort_morphology, patient_id
from immunodig.synthetic.design import STANDARD_DESIGN, CohortDesign
from immunodig.synthetic.layout import LayoutParams
from immunodig.synthetic.slide import SlideParams, make_slide


@dataclass(frozen=True)
class CohortPaths:
    """Where a generated cohort lives."""

    root: Path
    slides_dir: Path
    manifest: Path
    clinical_csv: Path
    truth_dir: Path


@dataclass(frozen=True)
class SlideJob:
    """One slide to render."""

    name: str
    patient_id: str
    stain: str
    seed: int
    params: SlideParams


def plan_cohort(n_patients: int, seed: int, cd3_fraction: float = 0.3,
                design: CohortDesign = STANDARD_DESIGN) -> list[SlideJob]:
    """Every slide of the cohort with its seed and parameters (nothing rendered).

    Slide-level parameters jitter around the patient's latent morphology (lognormal sd 0.2 on
    lymphocyte densities, sd 0.05 on the stroma fraction). A CD3 slide is a serial section of the
    patient's first H&E slide (same seed). ``design`` sets the layout knobs
    (:mod:`immunodig.synthetic.design`); every design makes the same random draws.
    """
    morph = cohort_morphology(n_patients, seed)
    jobs: list[SlideJob] = []
    children = np.random.SeedSequence([seed & 0xFFFFFFFF, 2]).spawn(n_patients)
    for i, (m, child) in enumerate(zip(morph, children)):
        rng = np.random.default_rng(child)
        pid = patient_id(i)
        for k in range(m.n_slides):
            layout = LayoutParams(
                stroma_fraction=float(np.clip(m.stroma_fraction + rng.normal(0, 0.05), 0.02, 0.9)),
                necrosis_fraction=m.necrosis_fraction, mucin_fraction=m.mucin_fraction,
                tls_per_mm2=m.tls_per_mm2 * design.tls_rate_scale,
                tumour_radius_frac=float(rng.uniform(*design.tumour_radius_frac)),
                tls_radius_um=design.tls_radius_um)
            params = SlideParams(layout, m.til_tumour_per_mm2 * float(np.exp(rng.normal(0, 0.2))),
                                 m.til_stroma_per_mm2 * float(np.exp(rng.normal(0, 0.2))))
            slide_seed = int(rng.integers(1 << 31))
            if k < design.max_he_slides:
                jobs.append(SlideJob(f"{pid}_HE{k + 1}", pid, "HE", slide_seed, params))
        if rng.random() < cd3_fraction:
            first = next(j for j in jobs if j.patient_id == pid)
            jobs.append(SlideJob(f"{pid}_CD3", pid, "CD3", first.seed, first.params))
    return jobs


def _render(job: SlideJob, slides_dir: Path, truth_dir: Path, slide_mm: float,
            mpp: float) -> str:
    make_slide(slides_dir / f"{job.name}.tiff", job.seed, slide_mm, mpp, job.params,
               stain=job.stain, truth_dir=truth_dir / job.name)
    return job.name


def make_cohort(out_dir: str | os.PathLike, n_patients: int, seed: int, slide_mm: float = 4.0,
                mpp: float = 0.5, cd3_fraction: float = 0.3, workers: int = 1,
                progress=None, design: CohortDesign = STANDARD_DESIGN) -> CohortPaths:
    """Generate the demo cohort.

    Writes ``slides/<name>.tiff``, ``slides.csv`` (``file, patient_id, stain``), ``clinical.csv``
    and ``truth/<name>/`` (``classmap.png``, ``truth.json``, ``nuclei.parquet``) plus
    ``truth/patients.csv`` (latent morphology and resistance probability per patient).

    Parameters
    ----------
    out_dir : path-like
        Output folder (created; existing files of the same names are replaced).
    n_patients : int
        Number of patients (1-3 H&E slides each).
    seed : int
        Seed: the same seed and arguments give the same cohort.
    slide_mm : float
        Side of each square slide, mm.
    mpp : float
        Microns per pixel.
    cd3_fraction : float
        Probability that a patient also has a CD3 IHC slide.
    workers : int
        Processes rendering slides in parallel.
    progress : callable, optional
        Called with each finished slide name.
    design : CohortDesign
        Slide-layout knobs (:data:`immunodig.synthetic.design.DEMO_DESIGN` for the demo).

    Returns
    -------
    CohortPaths
    """
    if n_patients < 1:
        raise ValueError("n_patients must be >= 1")
    root = Path(out_dir)
    paths = CohortPaths(root, root / "slides", root / "slides.csv", root / "clinical.csv",
                        root / "truth")
    paths.slides_dir.mkdir(parents=True, exist_ok=True)
    paths.truth_dir.mkdir(parents=True, exist_ok=True)
    jobs = plan_cohort(n_patients, seed, cd3_fraction, design)
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(_render, j, paths.slides_dir, paths.truth_dir, slide_mm, mpp)
                       for j in jobs]
            for fut in futures:
                name = fut.result()
                if progress:
                    progress(name)
    else:
        for j in jobs:
            _render(j, paths.slides_dir, paths.truth_dir, slide_mm, mpp)
            if progress:
                progress(j.name)

    import polars as pl

    manifest = pl.DataFrame({"file": [f"{j.name}.tiff" for j in jobs],
                             "patient_id": [j.patient_id for j in jobs],
                             "stain": [j.stain for j in jobs]})
    clinical, latent = clinical_table(cohort_morphology(n_patients, seed), seed)
    latent = latent.with_columns(pl.col("n_slides").clip(upper_bound=design.max_he_slides))
    for df, path in ((manifest, paths.manifest), (clinical, paths.clinical_csv),
                     (latent, paths.truth_dir / "patients.csv")):
        with atomic_path(path) as tmp:
            df.write_csv(tmp)
    return paths
