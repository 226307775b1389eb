"""Report formats (text, rich, Markdown, JSON, PNG) and the CLI entry point."""

from __future__ import annotations

import io
import json

import pytest
import torch
from _step_loop import StepLoop  # tests/, beside this
from torch import nn

from neurosparse.energy import Meter, Report, cli_report, list_profiles
from neurosparse.errors import InputValueError

MODEL_FILE = '''
import torch
from torch import nn

def build():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    return net, (torch.rand(3, 2, 6) < 0.5).float()
'''


@pytest.fixture(scope="module")
def report() -> Report:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(2 * 4 * 4, 3))
    x = (torch.rand(5, 2, 1, 4, 4) < 0.3).float()  # T=5, B=2
    model = StepLoop(net)
    with Meter(model) as m:
        model(x)
    return m.report(hardware=["loihi", "cpu-45nm", "gpu-a100-fp16"])


def test_json_round_trip(report, tmp_path):
    path = tmp_path / "r.json"
    text = report.to_json(path)
    assert path.read_text() == text
    back = Report.from_json(path)
    assert back.to_dict() == report.to_dict()
    assert Report.from_json(text).to_dict() == report.to_dict()
    d = json.loads(text)
    assert d["schema"] == "neurosparse.energy.report" and d["version"] == 1
    assert d["samples"] == 2 and d["time_steps"] == 5
    d["version"] = 99
    with pytest.raises(InputValueError, match="version 99"):
        Report.from_dict(d)


def test_per_inference_totals_and_sparsity(report):
    layers = {c.name: c for c in report.layers}
    t = report.totals
    assert t["synops"] == sum(c.totals["synops"] for c in report.layers) / 2
    relu = layers["net.1"]
    assert report.activation_sparsity == pytest.approx(
        1 - relu.totals["spikes"] / relu.totals["neuron_updates"])
    sp = report.sparsity_over_time()
    assert len(sp["activation"]) == 5
    step_upd = [relu.per_step["neuron_updates"][s] for s in range(5)]
    assert step_upd == [2 * 2 * 4 * 4] * 5


def test_text_markdown_and_rich(report, tmp_path):
    text = str(report)
    for name in ("net.0", "net.1", "net.3", "loihi", "cpu-45nm", "gpu-a100-fp16", "Total"):
        assert name in text
    md_path = tmp_path / "r.md"
    md = report.to_markdown(md_path)
    assert md_path.read_text() == md
    assert md.startswith("# Energy and latency report") and "| net.3 | Linear |" in md
    rich = pytest.importorskip("rich.console", reason="rich (dev extra) renders the report tables")
    buf = io.StringIO()
    report.print(rich.Console(file=buf, width=200))
    assert "net.0" in buf.getvalue() and "gpu-a100-fp16" in buf.getvalue()


def test_plot_writes_png(report, tmp_path):
    path = report.plot(tmp_path / "energy.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_report_needs_work():
    with Meter(nn.Linear(2, 2)) as m:
        pass
    with pytest.raises(InputValueError, match="seen no work"):
        m.report(hardware=["loihi"])


def test_cli_report_example_synthetic_and_file(tmp_path):
    f = tmp_path / "model.py"
    f.write_text(MODEL_FILE)
    r = cli_report(f"{f}:build", "example", ["loihi"])
    assert r.samples == 2 and r.time_steps == 3 and [h.name for h in r.hardware] == ["loihi"]
    r2 = cli_report(f"{f}:build", "synthetic:4,3,6@0.5", ["cpu-45nm"])
    assert r2.samples == 3 and r2.time_steps == 4
    x = (torch.rand(2, 5, 6) < 0.5).float()
    torch.save(x, tmp_path / "x.pt")
    r3 = cli_report(f"{f}:build", str(tmp_path / "x.pt"), None)
    assert r3.samples == 5 and len(r3.hardware) == len(list_profiles())
    first = r3.layers[0].totals
    assert first["synops"] == (x != 0).sum().item() * 4
    with pytest.raises(ValueError):  # unknown named sample
        cli_report(f"{f}:build", "no-such-dataset", ["loihi"])


def test_report_prints_provenance_split_and_column_legend():
    fc = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with Meter(fc) as m:
        fc((torch.rand(2, 4) < 0.5).float())
    rep = m.report(hardware=["loihi", "speck", "gpu-a100-fp16"])
    text = str(rep)
    by = {r.name: r for r in rep.hardware}
    for r in rep.hardware:
        assert r.energy_j == pytest.approx(r.dynamic_j + r.static_j)
    assert by["loihi"].provenance == "pre-silicon"
    row = {line.split()[0]: line for line in text.splitlines() if line.split()
           and line.split()[0] in by}
    assert "pre-silicon" in row["loihi"]
    assert "lower-bound" in row["speck"] and "≥" in row["speck"]
    assert "lower-bound" in row["gpu-a100-fp16"] and "≥" in row["gpu-a100-fp16"]
    # Speck publishes no energy per operation: its dynamic energy is unknown, not "≥ 0 J"
    assert not by["speck"].dynamic_published and by["gpu-a100-fp16"].dynamic_published
    assert "not published" in row["speck"] and "≥ 0 J" not in text
    assert "not published" not in row["gpu-a100-fp16"] + row["loihi"]
    assert Report.from_json(rep.to_json()).hardware[1].dynamic_published is False
    # per layer too: a lower-bound profile's energies are marked, the others are not
    layer_lines = [line for line in text.splitlines() if line.startswith(("0 ", "1 ", "Total"))]
    assert layer_lines and all(line.count("≥") == 1 and line.count("not published") == 1
                               for line in layer_lines)
    for column in ("Provenance", "Dynamic", "Static", "Latency", "Cores"):
        assert any(line.strip().startswith(column) for line in text.split("Columns:")[1]
                   .splitlines()), column


def test_demo_energy_lines_explain_every_column():
    from neurosparse.demo import DemoConfig, build_model, energy_lines, energy_report, make_tensors

    cfg = DemoConfig(n_train=8, n_test=8)
    x, _ = make_tensors(cfg, 4, 0)
    rep = energy_report(build_model(cfg), x)
    assert (rep.samples, rep.time_steps) == (4, cfg.time_bins)
    lines = energy_lines(rep)
    text = "\n".join(lines)
    for r in rep.hardware:
        row = next(line for line in lines if line.split() and line.split()[0] == r.name)
        assert row.endswith(r.provenance)
        assert r.energy_j == pytest.approx(r.dynamic_j + r.static_j)
        # a lower bound's total, dynamic and static energies are each marked as one; a
        # dynamic energy the profile does not publish (Speck) says so instead
        bound = r.provenance == "lower-bound"
        assert row.count("≥") == (0 if not bound else 3 if r.dynamic_published else 2)
        assert ("not published" in row) == (not r.dynamic_published)
    assert not next(r for r in rep.hardware if r.name == "speck").dynamic_published
    for word in ("dynamic =", "static =", "latency =", "provenance ="):
        assert word in text


def test_from_json_refuses_zero_samples_and_nan_counts(report):
    d = json.loads(report.to_json())
    d["samples"] = 0  # used to be divided as 1: totals printed as per-inference figures
    with pytest.raises(InputValueError, match="samples must be an integer >= 1"):
        Report.from_dict(d)
    d = json.loads(report.to_json())
    d["layers"][0]["totals"]["synops"] = float("nan")
    with pytest.raises(InputValueError, match=r"layer 'net.0': count 'synops' = nan"):
        Report.from_dict(d)


def test_markdown_and_rich_mark_lower_bound_layer_energies(report):
    """gpu-a100-fp16 is a lower bound: its per-layer energies carry ≥ in every format."""
    gpu = next(r for r in report.hardware if r.name == "gpu-a100-fp16")
    md = report.to_markdown()
    section = md.split("## Energy and busy time per layer and hardware")[1].split("##")[0]
    row = next(line for line in section.splitlines() if line.startswith("| net.3 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # columns: Layer, then (E, t) per hardware in report order
    i = 1 + 2 * [r.name for r in report.hardware].index("gpu-a100-fp16")
    from neurosparse.energy import _format as fmt

    assert cells[i] == "≥ " + fmt.unit(gpu.layer_energy_j["net.3"], "J")
    assert "≥" not in cells[1 + 2 * [r.name for r in report.hardware].index("loihi")]
    rich = pytest.importorskip("rich.console", reason="rich (dev extra) renders the tables")
    buf = io.StringIO()
    report.print(rich.Console(file=buf, width=250))
    energy_table = buf.getvalue().split("Dynamic energy per layer")[1].split("Per hardware")[0]
    net3 = next(line for line in energy_table.splitlines() if "net.3" in line)
    assert net3.count("≥") == 1


def test_units_pick_the_prefix_after_rounding_and_ranges_keep_the_low_end():
    from neurosparse.energy import _format as fmt

    # 999.6 pJ rounds to 1000 pJ at 3 digits: it reads 1 nJ, not "1e+03 pJ"
    assert fmt.unit(9.996e-10, "J") == "1 nJ"
    assert fmt.unit(0.9996, "s") == "1 s"
    assert fmt.count(999_999) == "1 M" and fmt.count(999) == "999"
    assert fmt.nbytes(2**20 - 1) == "1 MiB"
    # the low end used to be divided by hi / 1.0 (hi's rounded figure): 1.0 nJ read 0.995
    assert fmt.unit_range(1.0e-9, 1.0049e-9, "J") == "1 – 1 nJ"
    assert fmt.unit_range(2.006e-10, 1.4828e-9, "J") == "0.201 – 1.48 nJ"
    assert fmt.unit_range(5e-10, 9.996e-10, "J") == "0.5 – 1 nJ"


def test_cli_report_refuses_a_2d_input_without_layout(tmp_path):
    """A [B=5, F=6] ANN batch used to be read as T=5 steps of 6 samples: 6 samples and
    20 dense MACs per inference instead of 5 samples and 6 x 4 = 24."""
    f = tmp_path / "ann.py"
    f.write_text("import torch\nfrom torch import nn\n"
                 "def build():\n    torch.manual_seed(0)\n"
                 "    return nn.Sequential(nn.Linear(6, 4), nn.ReLU()), torch.rand(5, 6)\n"
                 "def build_b():\n    net, x = build()\n"
                 "    return {'model': net, 'input': x, 'layout': 'B'}\n")
    from neurosparse.errors import ParameterError

    with pytest.raises(ParameterError, match="'layout': 'B'"):
        cli_report(f"{f}:build", "example", ["cpu-45nm"])
    r = cli_report(f"{f}:build_b", "example", ["cpu-45nm"])
    assert (r.samples, r.time_steps) == (5, 1)
    assert r.totals["dense_macs"] == 6 * 4


def test_two_different_profiles_under_one_name_are_refused():
    """A user's edited copy of a built-in profile, left with its name, made one of the
    two vanish from the report without a word; the same profile twice is kept once."""
    import dataclasses

    from neurosparse.energy import load_profile
    from neurosparse.errors import ParameterError

    net = nn.Linear(4, 3)
    with Meter(net, layout="B") as m:
        net(torch.ones(2, 4))
    loihi = load_profile("loihi")
    edited = dataclasses.replace(
        loihi, energy={**loihi.energy, "static_mw": loihi.energy["static_mw"] * 2})
    assert [r.name for r in m.report(hardware=["loihi", loihi]).hardware] == ["loihi"]
    with pytest.raises(ParameterError, match="'loihi'"):
        m.report(hardware=["loihi", edited])
