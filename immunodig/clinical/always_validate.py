"""pandera validation that the environment cannot switch off.

pandera reads ``PANDERA_VALIDATION_ENABLED`` and ``PANDERA_VALIDATION_DEPTH`` when it is
imported; ``PANDERA_VALIDATION_ENABLED=False`` makes every ``schema.validate`` return its input
unchecked and ``PANDERA_VALIDATION_DEPTH=SCHEMA_ONLY`` skips the value checks. The imports and the
model matrix are the only guard between a hospital spreadsheet and the store, so every schema of
immunodig is run inside :func:`always_validate`, which turns full validation back on for the
block whatever the environment says.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def always_validate() -> Iterator[None]:
    """Run the block with pandera validation enabled at depth ``SCHEMA_AND_DATA``.

    Examples
    --------
    >>> with always_validate():              # doctest: +SKIP
    ...     schema.validate(frame, lazy=True)
    """
    from pandera.config import ValidationDepth, config_context

    with config_context(validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA):
        yield
