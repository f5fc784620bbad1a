"""lead_hsr.errors.command: every `python -m lead_hsr...` command reports bad input as one line and exit status 2."""
import pytest

from lead_hsr.errors import INPUT_ERROR_EXIT, InputError, command


@command
def _main(argv=None):
    if argv == ["bad"]:
        raise InputError("x.csv:3: expected 4 columns")
    if argv == ["bug"]:
        raise KeyError("a bug")
    return 0


def test_bad_input_is_one_line_and_exit_2_and_a_bug_still_raises(capsys):
    assert _main(["fine"]) == 0
    assert _main(["bad"]) == INPUT_ERROR_EXIT == 2
    assert capsys.readouterr().err == "error: x.csv:3: expected 4 columns\n"
    with pytest.raises(KeyError):
        _main(["bug"])
