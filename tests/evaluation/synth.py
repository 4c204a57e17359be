"""Synthetic patient matrices with known truth: planted signal or pure noise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunodig.models import survival_target


def classification(n: int = 150, p: int = 8, signal: float = 0.0, prevalence: float = 0.3,
                   seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``n`` patients, ``p`` normal features; the label depends on ``f0`` and ``f1`` with
    log-odds ``signal`` per SD (0 = pure noise). Adds a categorical and some missing values."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{i}" for i in range(p)])
    b0 = np.log(prevalence / (1 - prevalence))
    lp = b0 + signal * (X["f0"] - 0.7 * X["f1"])
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    X["site"] = rng.choice(["a", "b", "c"], size=n)
    X.loc[rng.random(n) < 0.1, "f2"] = np.nan
    return X, y, np.array([f"P{i:04d}" for i in range(n)])


def survival(n: int = 150, p: int = 8, signal: float = 0.0, censor_rate: float = 0.05,
             seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Exponential PFS with hazard ``0.1 * exp(signal * (f0 - 0.7 f1))`` (months) and uniform
    censoring; ``signal = 0`` is pure noise."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{i}" for i in range(p)])
    hazard = 0.1 * np.exp(signal * (X["f0"] - 0.7 * X["f1"]))
    t_event = rng.exponential(1 / hazard)
    t_cens = rng.exponential(1 / censor_rate, size=n)
    time = np.minimum(t_event, t_cens)
    event = (t_event <= t_cens).astype(int)
    X["site"] = rng.choice(["a", "b", "c"], size=n)
    return X, survival_target(time, event), np.array([f"P{i:04d}" for i in range(n)])
