"""``neurosparse report``: a model that fails on the user's data, and an unknown ``--data``,
are reported in one line (exit 2) that says what went wrong and what ``--data`` takes."""

from pathlib import Path

import pytest

from neurosparse.cli import build_parser, main
from neurosparse.data.fetch_recordings import data_dir, missing_reason
from neurosparse.data.samples import DATA_FORMS
from neurosparse.errors import InputValueError

ROOT = Path(__file__).resolve().parent.parent
MODEL = f"{ROOT}/examples/report_model.py:build"  # takes [T, B, 2, 32, 32]
NMNIST = data_dir() / "nmnist"


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_model_failing_on_data_of_another_shape_is_one_line(capsys):
    spec = "synthetic:3,2,2,34,34"
    err = _one_line_error(capsys, ["report", MODEL, "--data", spec])
    assert "model failed on input of shape (3, 2, 2, 34, 34)" in err
    assert f"--data {spec!r}" in err
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in err
    assert "must match the model's input" in err and "--debug" in err


@pytest.mark.skipif(not NMNIST.is_dir(), reason=str(missing_reason("nmnist")))
def test_nmnist_34x34_on_the_32x32_example_model_is_one_line(capsys):
    spec = f"nmnist:{NMNIST}:4"
    err = _one_line_error(capsys, ["report", MODEL, "--data", spec])
    assert "model failed on input of shape (" in err and ", 4, 2, 34, 34)" in err
    assert spec in err and "mat1 and mat2" in err


def test_debug_shows_the_models_own_error(tmp_path):
    with pytest.raises(InputValueError, match="model failed on input") as info:
        main(["--debug", "report", MODEL, "--data", "synthetic:3,2,2,34,34"])
    assert isinstance(info.value.__cause__, RuntimeError)  # chained: the traceback shows it


def test_a_bug_in_the_model_is_not_swallowed(tmp_path, capsys):
    target = tmp_path / "buggy.py"
    target.write_text("import torch\n\nclass M(torch.nn.Module):\n"
                      "    def forward(self, x):\n        return 1 / 0\n\n"
                      "def build():\n    return M(), torch.zeros(2, 1, 3)\n")
    err = _one_line_error(capsys, ["report", f"{target}:build"])
    assert "ZeroDivisionError: division by zero" in err
    assert "the build function's example input" in err


def test_unknown_data_lists_every_form_that_help_lists(tmp_path, capsys):
    help_text = next(a.help for a in build_parser()._subparsers._group_actions[0]
                     .choices["report"]._actions if a.dest == "data")
    trunc = tmp_path / "trunc.bin"
    trunc.write_bytes(b"\0" * 7)
    err = _one_line_error(capsys, ["report", MODEL, "--data", str(trunc)])
    assert "unknown sample" in err
    for form in DATA_FORMS:
        assert form in help_text and form in err, form
    for form in ("example", "synthetic-dvs[:B]", "nmnist:ROOT[:B]", "synthetic:T,B,...[@rate]",
                 ".pt", ".npy"):
        assert form in err, form
