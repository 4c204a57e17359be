"""The modelling commands' warning relay: InputWarnings as one line each, others passed on once."""

from __future__ import annotations

import warnings

import pytest

from immunodig.cli.model_cmds import _with_input_warnings
from immunodig.errors import InputWarning


@pytest.mark.timeout(30)
def test_other_warnings_are_passed_on_once_and_the_command_returns(capsys):
    seen = []

    @_with_input_warnings
    def command():
        warnings.warn("check the input", InputWarning, stacklevel=1)
        warnings.warn("solver did not converge", RuntimeWarning, stacklevel=1)
        return 7

    with warnings.catch_warnings(record=True) as outer:
        warnings.simplefilter("always")
        assert command() == 7
        seen = [str(w.message) for w in outer]
    assert seen == ["solver did not converge"]
    assert "warning (InputWarning): check the input" in capsys.readouterr().err
