"""Primary resistance to immune-checkpoint inhibitors, derived by an explicit, configurable rule.

Default rule (window W = 6 months), applied in this order:

1. ``best_response = PD``                         -> 1 (resistant)
2. ``pfs_event = 1`` and ``pfs_months <= W``     -> 1 (progression or death within the window)
3. ``pfs_months >= W``                            -> 0 (progression-free for the whole window)
4. otherwise (censored before W without PD, or PFS missing) -> null: undetermined, never 0.

Counting early-censored patients as non-resistant would bias the label towards response; they
are left undetermined so models drop or handle them explicitly. The rule's text is stored beside
every derived value (``outcomes.resistance_rule``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from immunodig.errors import ConfigError


@dataclass(frozen=True)
class ResistanceRule:
    """Rule turning best response and PFS into ``primary_resistance`` (1, 0 or null).

    Parameters
    ----------
    window_months : float
        Progression or death within this many months of treatment start means resistance.
    progression_as_best_response : bool
        Whether best response PD alone means resistance.
    """

    window_months: float = 6.0
    progression_as_best_response: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.window_months <= 60:
            raise ConfigError(f"resistance window {self.window_months} months outside (0, 60]")

    def describe(self) -> str:
        """Plain-text statement of the rule, stored with each derived value."""
        w = f"{self.window_months:g}"
        first = "best_response = PD or " if self.progression_as_best_response else ""
        return (f"primary_resistance = 1 if {first}(pfs_event = 1 and pfs_months <= {w}); "
                f"0 if pfs_months >= {w} otherwise; null (undetermined) if censored before {w} "
                "months or PFS missing")

    def derive(self, best_response: pd.Series, pfs_months: pd.Series, pfs_event: pd.Series) -> pd.Series:
        """Return ``primary_resistance`` as a nullable ``Int8`` series aligned with the inputs.

        Examples
        --------
        >>> import pandas as pd
        >>> r = ResistanceRule().derive(pd.Series(["PR", "SD", "SD", "PD"]),
        ...                             pd.Series([3.0, 4.0, 12.0, 9.0]), pd.Series([1, 0, 0, 1]))
        >>> r.tolist()
        [1, <NA>, 0, 1]
        """
        months = pd.to_numeric(pfs_months, errors="coerce").to_numpy(dtype=float)
        event = pd.to_numeric(pfs_event, errors="coerce").to_numpy(dtype=float)
        pd_best = best_response.astype("string").fillna("").to_numpy() == "PD"
        resistant = (event == 1) & (months <= self.window_months)
        if self.progression_as_best_response:
            resistant |= pd_best
        spared = ~resistant & (months >= self.window_months)
        out = np.where(resistant, 1.0, np.where(spared, 0.0, np.nan))
        return pd.Series(out, index=best_response.index).astype("Int8")
