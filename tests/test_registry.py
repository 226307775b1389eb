"""One registry decides kernel or reference: strict under NEUROSPARSE_KERNELS=numba,
every fallback recorded with its reason, the SDR kernels included."""

import warnings

import numpy as np
import pytest
import torch

import neurosparse as ns
from neurosparse.cli import main
from neurosparse.errors import KernelUnavailableError
from neurosparse.ops import registry


def _f64_calls():
    x = torch.rand(4, 2, 6, dtype=torch.float64)
    return {
        "lif_sequence": lambda: ns.LIF()(x),
        "delta_encode": lambda: ns.DeltaEncoder(0.1)(x),
        "sparse_event_linear": lambda: ns.SparseEventLinear(6, 5, density=0.5).double()(x),
    }


@pytest.mark.parametrize("op", sorted(_f64_calls()))
def test_strict_mode_refuses_what_the_kernel_cannot_run(op, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    with pytest.raises(KernelUnavailableError, match="float64"):
        _f64_calls()[op]()


@pytest.mark.parametrize("op", sorted(_f64_calls()))
def test_auto_mode_falls_back_once_and_records_why(op, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "auto")
    registry._OPS[op].fallbacks.clear()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _f64_calls()[op]()
        _f64_calls()[op]()
    said = [w for w in seen if issubclass(w.category, RuntimeWarning) and op in str(w.message)]
    assert len(said) == 1 and "float64" in str(said[0].message)
    # attributed to the user's line (here this file), not to a frame inside the package
    assert said[0].filename == __file__
    (reason, calls), = registry.fallbacks()[op].items()
    assert reason.startswith("cpu:") and "float64" in reason and calls == 2
    impl = {(o, d): i for o, d, i in registry.table()}[(op, "cpu")]
    assert "fell back" in impl and "float64" in impl


def test_spatial_pooler_reference_equals_kernel(monkeypatch):
    rng = np.random.default_rng(0)
    inputs = [rng.choice(200, 20, replace=False) for _ in range(40)]
    runs = []
    for mode in ("numba", "torch"):
        monkeypatch.setenv("NEUROSPARSE_KERNELS", mode)
        sp = ns.sdr.SpatialPooler(200, 128, 8, seed=3)
        winners = [sp.compute(x).sparse.copy() for x in inputs]
        runs.append((winners, sp._perm.copy(), sp._in_conn.copy()))
    (w_k, p_k, c_k), (w_r, p_r, c_r) = runs
    assert all(np.array_equal(a, b) for a, b in zip(w_k, w_r))
    assert np.array_equal(p_k, p_r) and np.array_equal(c_k, c_r)
    assert not np.array_equal(p_k, ns.sdr.SpatialPooler(200, 128, 8, seed=3)._perm)  # learned


def test_info_lists_the_sdr_kernels(capsys, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "sdr_spatial_pooler" in out and "sdr_segment_activation" in out
    tm = [ln for ln in out.splitlines() if ln.startswith("sdr_temporal_memory") and "cpu" in ln]
    assert tm and "no reference" in tm[0]
