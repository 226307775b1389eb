"""The ``neurosparse`` command as a user meets it: errors, help, version, table width."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurosparse import __version__
from neurosparse.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
MODEL = f"{ROOT}/examples/report_model.py:build"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The command in a fresh interpreter, as a shell runs it."""
    return subprocess.run([sys.executable, "-m", "neurosparse.cli", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.parametrize("args, says", [
    (["report", "nope.py:build"], "target file 'nope.py' does not exist"),
    (["report", MODEL, "--data", "synthetic-dvs:0"], "positive integer"),
    (["report", MODEL, "--hardware", "no-such-chip"], "no-such-chip"),
])  # fmt: skip
def test_user_errors_print_one_line_and_exit_2(args, says, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert says in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback():
    proc = _cli("--debug", "report", "nope.py:build")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    proc = _cli("report", "nope.py:build")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("neurosparse report: error:")


def test_report_on_the_shipped_example_fits_100_columns(capsys):
    assert main(["report", MODEL, "--data", "example"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    # nothing is cut: every hardware profile and every column of the wide table is there
    for word in ("SynOps", "Dense MACs", "State r/w", "Provenance", "Dynamic", "Static",
                 "Latency", "Cores", "spinnaker2", "truenorth", "gpu-a100-fp16"):
        assert word in out, word
    # every column of the tables is explained in one line (issue 19)
    legend = out[out.index("Columns:"):]
    for word in ("SynOps", "Dense MACs", "Neuron upd.", "Provenance", "Static", "Cores"):
        assert f"  {word} " in legend, word
    # a lower-bound profile's per-layer energies carry their >= here too (Speck: 0 J
    # dynamic energy, printed bare before)
    table = out[out.index("Dynamic energy per layer"):out.index("Per hardware")]
    speck_rows = [line for line in table.splitlines() if "J" in line]
    assert speck_rows and all("≥" in line for line in speck_rows)


def test_report_formats_json_and_wide(capsys):
    assert main(["report", MODEL, "--data", "synthetic-dvs:2", "--format", "json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["samples"] == 2 and rep["layers"]
    assert main(["report", MODEL, "--data", "synthetic-dvs:2", "--format", "wide"]) == 0
    wide = capsys.readouterr().out
    assert max(len(line) for line in wide.splitlines()) > 100  # the one-table layout


def test_info_survives_an_invalid_kernel_setting():
    proc = _cli("info", env={"NEUROSPARSE_KERNELS": "fast"})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "NEUROSPARSE_KERNELS is invalid" in proc.stdout and "'fast'" in proc.stdout
    assert f"neurosparse {__version__}" in proc.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"neurosparse {__version__}"


def test_every_option_has_help():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"neurosparse {name} {action.option_strings or action.dest}"


def test_demo_shows_progress_while_generating_data(capsys):
    """The demo's first silent stretch was generating the data: it now has a bar."""
    from neurosparse.demo import DemoConfig, make_tensors

    x, y = make_tensors(DemoConfig(), 3, seed=0, desc="generating train data")
    assert x.shape[1] == 3 == y.shape[0]
    err = capsys.readouterr().err
    assert "generating train data" in err and "3/3" in err
    make_tensors(DemoConfig(), 2, seed=0)  # no name, no bar (library use)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("args, says", [
    (["demo", "--epochs", "-1"], "argument --epochs: must be a positive integer, got '-1'"),
    (["demo", "--epochs", "0"], "argument --epochs: must be a positive integer, got '0'"),
    (["demo", "--n-train", "x"], "argument --n-train: must be a positive integer, got 'x'"),
])  # fmt: skip
def test_demo_refuses_a_count_below_one(args, says, capsys):
    # --epochs -1 used to train nothing and print the untrained network's figures, exit 0
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert says in capsys.readouterr().err


def test_bench_times_every_path_and_ranks_them(tmp_path, capsys):
    """``neurosparse bench`` times each path on checked outputs; the table's ratios are
    the medians over the fastest one's, and the JSON says the same."""
    out = tmp_path / "b.json"
    assert main(["bench", "--in-features", "64", "--out-features", "48", "--batch", "3",
                 "--rate", "0.2", "--rounds", "2", "--json", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert (res["batch"], res["in_features"], res["out_features"]) == (3, 64, 48)
    assert set(res["us"]) == {"EventLinear event", "EventLinear auto", "dense F.linear fp32",
                              "torch.sparse CSR"}  # fmt: skip
    best = min(t["median"] for t in res["us"].values())
    for name, t in res["us"].items():
        assert t["min"] <= t["median"] <= t["max"]
        row = next(line for line in text.splitlines() if line.startswith(name))
        assert row.split()[-1 if "fastest" not in row else -3] == f"{t['median'] / best:.2f}"
    assert res["auto_path"] in text


def test_bench_refuses_to_time_a_wrong_result(monkeypatch):
    """Every path is checked against the fp32 dense product before it is timed."""
    from neurosparse import bench
    from neurosparse.errors import DeviceError
    from neurosparse.layers.event_linear import EventLinear

    real = EventLinear.forward
    monkeypatch.setattr(EventLinear, "forward", lambda self, x: real(self, x) + 1e-2)
    with pytest.raises(RuntimeError, match="EventLinear event differs"):
        bench.run_bench(2, 32, 16, 0.3, rounds=1, calls=1)
    monkeypatch.setattr(EventLinear, "forward", real)
    if not __import__("torch").cuda.is_available():
        with pytest.raises(DeviceError, match="--device cpu"):
            bench.run_bench(device="cuda")
