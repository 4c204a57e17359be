"""Feature distributions by outcome group (box plot with every patient as a point)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunodig.report.figures import axes_or_new, no_data

#: Group labels of primary resistance, in display order, with their colours.
RESISTANCE_GROUPS: dict[str, str] = {
    "resistant": "tab:red",
    "not resistant": "tab:blue",
    "undetermined": "tab:grey",
}


def resistance_label(primary_resistance) -> np.ndarray:
    """Map 1 / 0 / missing primary resistance to the labels of :data:`RESISTANCE_GROUPS`."""
    s = pd.Series(primary_resistance, dtype="Float64")
    out = np.full(len(s), "undetermined", dtype=object)
    out[(s == 1).fillna(False).to_numpy()] = "resistant"
    out[(s == 0).fillna(False).to_numpy()] = "not resistant"
    return out


def group_summary(values, groups, order=None) -> pd.DataFrame:
    """Count of defined values, median and quartiles per group.

    Returns
    -------
    pandas.DataFrame
        Index: group; columns ``n, n_missing, median, q1, q3``.
    """
    df = pd.DataFrame({"v": np.asarray(values, dtype=float), "g": np.asarray(groups)})
    order = order or list(dict.fromkeys(df["g"]))
    rows = []
    for name in order:
        v = df.loc[df["g"] == name, "v"]
        d = v.dropna()
        rows.append({"group": name, "n": int(d.size), "n_missing": int(v.isna().sum()),
                     "median": d.median() if d.size else np.nan,
                     "q1": d.quantile(0.25) if d.size else np.nan,
                     "q3": d.quantile(0.75) if d.size else np.nan})
    return pd.DataFrame(rows).set_index("group")


def plot_feature_distribution(values, groups, ax=None, feature: str = "", unit: str | None = None,
                              colours: dict[str, str] | None = None, seed: int = 0):
    """Box plot per group with jittered points; x labels carry the group size.

    Parameters
    ----------
    values : array of float
        One value per patient (NaN = undefined, left out and counted).
    groups : array of str
        Group of each patient.
    feature, unit : str
        Title and axis label.
    colours : dict, optional
        Group -> colour (default: :data:`RESISTANCE_GROUPS` where they match).

    A feature no patient has a value of is an empty panel saying "no data"; a feature whose
    values are all non-negative (counts, areas, densities) has its axis start at 0.
    """
    ax = axes_or_new(ax, (4.0, 3.5))
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        no_data(ax, f"{feature}: no data" if feature else "no data")
        return ax
    colours = colours or RESISTANCE_GROUPS
    names = [g for g in colours if g in set(np.asarray(groups))] + \
        [g for g in dict.fromkeys(np.asarray(groups)) if g not in colours]
    summary = group_summary(values, groups, names)
    g = np.asarray(groups)
    rng = np.random.default_rng(seed)
    data = [v[(g == name) & np.isfinite(v)] for name in names]
    positions = np.arange(1, len(names) + 1)
    nonempty = [i for i, d in enumerate(data) if d.size]
    if nonempty:
        ax.boxplot([data[i] for i in nonempty], positions=positions[nonempty], widths=0.5,
                   showfliers=False, medianprops={"color": "black"})
    for pos, name, d in zip(positions, names, data):
        ax.scatter(pos + rng.uniform(-0.15, 0.15, d.size), d, s=12, alpha=0.7,
                   color=colours.get(name, "tab:grey"), zorder=3)
    ax.set_xticks(positions)
    ax.set_xticklabels([f"{n}\n(n={summary.loc[n, 'n']})" for n in names], fontsize=8)
    ax.set_xlim(0.4, len(names) + 0.6)
    ax.set_title(feature, fontsize=9)
    if finite.min() >= 0:
        top = float(finite.max())
        ax.set_ylim(0, top * 1.05 if top > 0 else 1.0)
    if unit:
        ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    return ax
