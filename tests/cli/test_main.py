"""The `rnnlab` entry point: unknown commands and no command are one clear message, not a traceback."""
import pytest

from rnnlab.cli.main import main


def test_unknown_command_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bogus"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rnnlab: error:") and "'bogus'" in err[0]


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
