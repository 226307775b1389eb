"""Each example runs with ``--quick`` in a fresh interpreter and its results hold.

The scripts assert their own bounds (measured, see each script); here the summary they
write is checked again, against facts found independently where there are any (the
event count of an N-MNIST file is its size / 5 bytes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurosparse.data.fetch_recordings import data_dir, missing_reason

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED_NMNIST = data_dir() / "nmnist"  # $NEUROSPARSE_DATA_DIR, else ../shared/data/dvs


def run_example(name: str, out: Path, *flags: str) -> dict:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--quick", "--out", str(out), *flags],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads((out / "summary.json").read_text())


def nonempty(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def test_01_quickstart(tmp_path):
    s = run_example("01_quickstart.py", tmp_path)
    sample = SHARED_NMNIST / "Test" / "0" / "00004.bin"
    if sample.exists():
        assert s["events"] == sample.stat().st_size // 5  # 40-bit N-MNIST events
        assert s["sensor_size"] == [34, 34, 2]
    assert s["count_sum"] == s["events"]
    assert 0 < s["spikes"] <= s["events"]
    for f in ("events_raster.png", "events.gif", "membrane.png", "lif_raster.png"):
        assert nonempty(tmp_path / f), f
    from PIL import Image

    with Image.open(tmp_path / "events.gif") as im:
        assert im.n_frames == s["gif_frames"] > 1


def _check_report(path_md: Path, path_json: Path | None = None) -> None:
    assert "# Energy and latency report" in path_md.read_text()
    if path_json is not None:
        import neurosparse as ns

        rep = ns.energy.Report.from_json(path_json)
        assert [r.name for r in rep.hardware] == ["loihi", "speck", "gpu-a100-fp16", "cpu-45nm"]
        assert rep.samples > 0 and rep.totals["synops"] + rep.totals["macs"] > 0


def test_02_nmnist_energy_synthetic(tmp_path):
    s = run_example("02_nmnist_energy.py", tmp_path, "--data", "synthetic")
    # measured 0.67-0.87 over seeds 0-2 (chance 0.10)
    assert s["test_accuracy"] > 0.3
    assert s["test_samples"] == 160
    _check_report(tmp_path / "energy.md", tmp_path / "energy.json")
    for f in ("energy_report.png", "energy_per_layer.png", "sparsity.png", "hidden_raster.png"):
        assert nonempty(tmp_path / f), f


@pytest.mark.skipif(not SHARED_NMNIST.is_dir(), reason=str(missing_reason("nmnist")))
def test_02_nmnist_energy_shared_recordings(tmp_path):
    s = run_example("02_nmnist_energy.py", tmp_path, "--data", "shared")
    assert s["train_samples"] == 10 and s["test_samples"] == 4
    assert s["train_accuracy"] >= 0.5  # measured 0.8: it fits the ten shifted recordings
    _check_report(tmp_path / "energy.md", tmp_path / "energy.json")


def test_03_delta_vs_dense(tmp_path):
    s = run_example("03_delta_vs_dense.py", tmp_path)
    # measured 0.98-0.99 for both (chance 0.125)
    assert s["dense_accuracy"] > 0.5 and s["delta_accuracy"] > 0.5
    assert s["effective_ops"]["delta"] < s["effective_ops"]["dense"] < s["dense_macs"]
    assert all(0.0 < v < 1.0 for v in s["temporal_sparsity"].values())
    (r,) = s["runs"]
    # the gains are recomputed from the counts the script wrote
    nz_dense, nz_delta = r["nonzero_dense"], r["nonzero_deltas"]
    assert r["activation_gain_all"] == pytest.approx(
        sum(nz_dense.values()) / sum(nz_delta.values()))
    ops = r["ops_per_sample"]
    assert r["ops_gain_vs_zero_skipping"] == pytest.approx(ops["dense"] / ops["delta"])
    # zero-skipping dense never does more work than all dense MACs, so its ratio is smaller
    assert 1.0 < r["ops_gain_vs_zero_skipping"] < r["ops_gain_vs_all_macs"]
    assert nonempty(tmp_path / "delta_vs_dense.png")
    assert nonempty(tmp_path / "delta_energy.md") and nonempty(tmp_path / "dense_energy.md")


def test_04_sequence_anomaly(tmp_path):
    s = run_example("04_sequence_anomaly.py", tmp_path)
    days = s["anomaly_per_learning_day"]
    assert days[0] > 0.5 > 0.2 > days[-1]  # starts unpredicted, learns the cycle
    assert all(p > s["last_day_max"] for p in s["peaks"].values())
    assert nonempty(tmp_path / "anomaly.png")


def test_05_bring_your_model(tmp_path):
    pytest.importorskip("snntorch", reason="snntorch is in the [interop] extra")
    pytest.importorskip("norse", reason="norse is in the [interop] extra")
    s = run_example("05_bring_your_model.py", tmp_path)
    for fw in ("snntorch", "snntorch-conv", "norse"):
        r = s["frameworks"][fw]
        assert r["same_spikes"], fw
        assert r["nir_roundtrip"] or fw == "snntorch-conv", fw  # NIR has no max pooling
        # float sums in another order may flip a spike sitting at the threshold: measured 1.0
        assert r["event_agreement"] is None or r["event_agreement"] >= 0.999
        assert r["test_accuracy"] > 0.25  # measured 0.70 / 0.80 / 0.79 (chance 0.125)
        assert nonempty(tmp_path / f"{fw}_energy.md")


def test_06_sparse_rewiring(tmp_path):
    pytest.importorskip("sklearn", reason="the MLP half uses scikit-learn's digits")
    s = run_example("06_sparse_rewiring.py", tmp_path)
    assert s["sparsities"] == [0.75, 0.95] and len(s["seeds"]) == 1
    methods = ["dense", "static", "SET", "RigL", "momentum"]
    methods += ["Hebbian (G2GNet)", "Hebbian, random start"]
    assert s["methods"] == methods
    for net, lowest in (("MLP", 0.6), ("SNN", 0.125)):  # chance 0.10 / 0.0625
        res = s["results"][net]
        # measured --quick: MLP 0.89-0.97, SNN 0.20-0.39
        assert len(res["dense"]["dense"]) == 1 and res["dense"]["dense"][0]["acc"] > lowest
        for m in methods[1:]:
            assert sorted(res[m]) == ["0.75", "0.95"], (net, m)  # JSON keys
            for runs in res[m].values():
                (r,) = runs
                assert r["acc"] > lowest, (net, m, r)
                assert r["nnz_conserved"] and r["pruned"] == r["grown"]
                assert (r["pruned"] > 0) == (m != "static"), (net, m, r)
        # the G2GNet start is modular (k <= group width at 75 %); rewiring may leave it
        g2g = res["Hebbian (G2GNet)"]["0.75"][0]["in_group_fraction_first_layer"]
        rnd = res["Hebbian, random start"]["0.75"][0]["in_group_fraction_first_layer"]
        assert g2g > rnd, (net, g2g, rnd)
    assert nonempty(tmp_path / "sparse_rewiring.png")
    assert nonempty(tmp_path / "mlp_table.md") and nonempty(tmp_path / "snn_table.md")


def test_07_sdr_memory(tmp_path):
    s = run_example("07_sdr_memory.py", tmp_path)
    rec, nn = s["recall"], s["nearest_neighbour"]
    # measured (--quick, seeds 0-1): stored-digit labels 1.0 at 0-30 % noise, held-out
    # 0.88 -> 0.87 (chance 0.10); probe Spearman 0.93
    assert min(rec["stored"]["mean"]) >= 0.9
    assert min(rec["heldout"]["mean"]) > 0.6
    # nearest-neighbour lookup finds every stored item under 0-30 % noise (40 bits of
    # 1024, 12 moved, leave its own item far ahead); the memory's codes cannot beat it
    assert min(nn["item"]["mean"]) == 1.0
    assert max(rec["item"]["mean"]) <= 1.0
    assert rec["exact"]["mean"][0] >= rec["exact"]["mean"][-1]  # more noise, fewer exact codes
    assert s["probe_spearman"] > 0.8
    assert s["novel_code_overlap"] < 3 * s["chance_code_overlap"]
    for f in ("recall_vs_noise.png", "overlap_vs_similarity.png"):
        assert nonempty(tmp_path / f), f


def test_08_ksparse_autoencoder(tmp_path):
    pytest.importorskip("sklearn", reason="scikit-learn provides the digits data")
    s = run_example("08_ksparse_autoencoder.py", tmp_path)
    # measured (--quick, seed 0): k=20 0.965, ReLU AE 0.967, denoising 0.973 (chance 0.10)
    p = s["probe"]
    assert p["20"]["mean"] > 0.93 and p["relu"]["mean"] > 0.9 and p["denoising"]["mean"] > 0.9
    best = max(p["relu"]["runs"][0], p["denoising"]["runs"][0])
    assert s["gap_vs_nonlinear"]["20"] == pytest.approx(p["20"]["runs"][0] - best)
    # the filter figure's caption says what the weights are: near their initialisation
    # (measured --quick: cosine 0.9+) unless training moved them away
    cos = s["filter_cosine_to_init"]
    assert all(-1 <= c <= 1 for c in cos.values())
    near = max(cos.values()) >= 0.5
    assert ("still" in s["filter_caption"]) == near
    assert near or "stroke" not in s["filter_caption"]
    for f in ("probe_vs_k.png", "filters.png"):
        assert nonempty(tmp_path / f), f


def test_continual_dendrites(tmp_path):
    pytest.importorskip("sklearn", reason="the permuted tasks are built from scikit-learn's digits")
    s = run_example("continual_dendrites.py", tmp_path, "--seeds", "1", "--tasks", "3")
    res = s["results"]
    assert sorted(res) == sorted([
        "MLP", "MLP + context input", "k-WTA only", "k-WTA + context input",
        "dendrites only", "dendrites + k-WTA (Iyer et al.)"])
    for name, r in res.items():
        (accs,) = r["runs"]
        assert len(accs) == 3 and accs[-1] > 0.8, (name, accs)  # learns the last task
        assert r["all_tasks"][0] == pytest.approx(sum(accs) / 3)
    g = s["gains"]["dendrites + k-WTA over MLP"][0]
    assert g == pytest.approx(res["dendrites + k-WTA (Iyer et al.)"]["all_tasks"][0]
                              - res["MLP"]["all_tasks"][0])


def test_high_order_sequences(tmp_path):
    s = run_example("high_order_sequences.py", tmp_path, "--seeds", "1", "--pairs", "2")
    f = s["final"]
    # with the decrement the pairs are disambiguated; with htm.core's defaults the
    # correct ending is predicted but the other ending stays predicted too (measured 0.5)
    assert f["predicted_segment_decrement = 0.05"]["accuracy"][0] == 1.0
    assert f["predicted_segment_decrement = 0.05"]["wrong"][0] == 0.0
    assert f["htm.core defaults"]["accuracy"][0] == 1.0
    assert f["htm.core defaults"]["wrong"][0] > 0.0


DAVIS_346 = data_dir() / "aedat4" / "aestream_davis.aedat4"
EMPTY_AEDAT = data_dir() / "aedat2" / "sample_aedat_header.aedat"  # a header, no events


@pytest.mark.skipif(not DAVIS_346.is_file(), reason=str(missing_reason("aedat4")))
def test_01_quickstart_on_a_large_sensor_fires_without_saturating(tmp_path):
    # thousands of spikes per 1 ms bin on 346 x 260: the projection is scaled so the
    # neurons do not all fire at every step (they did: a rate of 1.000)
    s = run_example("01_quickstart.py", tmp_path, "--file", str(DAVIS_346))
    assert s["sensor_size"] == [346, 260, 2]
    assert 0.01 < s["lif_rate"] < 0.9


@pytest.mark.skipif(not EMPTY_AEDAT.is_file(), reason=str(missing_reason("aedat2")))
@pytest.mark.parametrize("name", ["01_quickstart.py", "09_streaming.py"])
def test_examples_say_an_empty_recording_has_nothing_to_show(tmp_path, name):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--quick", "--out",
                           str(tmp_path), "--file", str(EMPTY_AEDAT)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode != 0
    assert "holds no events" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(not DAVIS_346.is_file(), reason=str(missing_reason("aedat4")))
def test_09_streaming_a_sensor_whose_width_is_no_multiple_of_the_stride(tmp_path):
    # 346 x 260: the conv's output is ceil(346 / 4) = 87 wide, which the Linear after it
    # must take (it was sized 346 // 4 = 86 and refused the frames)
    s = run_example("09_streaming.py", tmp_path, "--file", str(DAVIS_346))
    assert s["mismatches"] == 0 and s["steps"] > 0


NCARS_DAT = data_dir() / "prophesee_dat" / "NCARS_obj_004397_td.dat"  # states no size


@pytest.mark.skipif(not NCARS_DAT.is_file(), reason=str(missing_reason("prophesee_dat")))
def test_09_streaming_asks_for_a_sensor_size_the_recording_lacks(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, str(EXAMPLES / "09_streaming.py"), "--quick", "--out",
           str(tmp_path), "--file", str(NCARS_DAT)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "--sensor-size W H" in proc.stderr
    assert "Traceback" not in proc.stderr
    s = run_example("09_streaming.py", tmp_path, "--file", str(NCARS_DAT),
                    "--sensor-size", "120", "100")  # fmt: skip
    assert s["mismatches"] == 0 and s["steps"] > 0


@pytest.mark.skipif(not SHARED_NMNIST.is_dir(), reason=str(missing_reason("nmnist")))
def test_02_writes_its_results_on_a_folder_too_small_to_learn_from(tmp_path):
    # the shared N-MNIST folder as one's own data (--data nmnist): 10 training
    # recordings, accuracy near chance, which the example notes instead of failing
    s = run_example("02_nmnist_energy.py", tmp_path, "--data", "nmnist", "--root",
                    str(SHARED_NMNIST), "--hardware", "loihi")  # fmt: skip
    assert s["data"] == "nmnist" and s["train_samples"] == 10
    assert 0.0 <= s["test_accuracy"] <= 1.0 and nonempty(tmp_path / "energy.md")


def test_09_streaming(tmp_path):
    s = run_example("09_streaming.py", tmp_path)
    # one step per frame, and not one spike different from the sequence-mode call
    assert s["steps"] == 300 and s["mismatches"] == 0
    assert 0 < s["output_spikes"] < s["steps"] * 64
    assert s["median_step_ms"] > 0 and s["frame_ms"] == 1.0
    assert s["mode"] == ("CUDA graph" if s["device"] == "cuda" else "eager")
    assert nonempty(tmp_path / "streaming.png")
