"""DeltaGRU / DeltaLSTM: nn.GRU / nn.LSTM at θ = 0, the dense cell on x̂ and ĥ at θ > 0.

Both the Numba kernel path (no gradient needed) and the differentiable torch path are
held to independent references: PyTorch's own recurrent layers, and a dense cell written
out below that uses the reference-quantised input and hidden state in its products.
"""

import pytest
import torch

from neurosparse.errors import ParameterError, ShapeError
from neurosparse.layers.delta_gru import DeltaGRU, DeltaGRUState
from neurosparse.layers.delta_lstm import DeltaLSTM, DeltaLSTMState

CELLS = [(DeltaGRU, torch.nn.GRU), (DeltaLSTM, torch.nn.LSTM)]


def dense_on_quantised(cell, x, th_x, th_h):
    """The dense cell with x̂_t and ĥ_{t−1} in the matrix products (the definition)."""
    w_ih, w_hh, b_ih, b_hh = cell.weight_ih_l0, cell.weight_hh_l0, cell.bias_ih_l0, cell.bias_hh_l0
    n_b, n_h = x.shape[1], cell.hidden_size
    h = c = x.new_zeros(n_b, n_h)
    xq, hq = torch.zeros_like(x[0]), x.new_zeros(n_b, n_h)
    out = []
    for t in range(x.shape[0]):
        xq = torch.where((x[t] - xq).abs() > th_x, x[t], xq)
        hq = torch.where((h - hq).abs() > th_h, h, hq)
        gi, gh = xq @ w_ih.t() + b_ih, hq @ w_hh.t() + b_hh
        if isinstance(cell, DeltaGRU):
            r = torch.sigmoid(gi[:, :n_h] + gh[:, :n_h])
            z = torch.sigmoid(gi[:, n_h : 2 * n_h] + gh[:, n_h : 2 * n_h])
            n = torch.tanh(gi[:, 2 * n_h :] + r * gh[:, 2 * n_h :])
            h = (1 - z) * n + z * h
        else:
            i, f, g, o = (gi + gh).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out)


def seq(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=dtype) * 0.4).cumsum(0).sin()


@pytest.mark.parametrize("cls, ref", CELLS)
def test_zero_threshold_equals_torch_rnn(cls, ref):
    torch.manual_seed(0)
    rnn = ref(6, 9)
    cell = cls.from_dense(rnn, threshold=0.0)
    x = seq((30, 3, 6), seed=1)
    want, _ = rnn(x)
    with torch.no_grad():
        kernel, _ = cell(x)  # Numba kernel path
    torch.testing.assert_close(kernel, want, rtol=0, atol=1e-5)
    got, _ = cell(x)  # differentiable torch path
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    # gradients of the torch path equal PyTorch's
    g = torch.randn_like(want)
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    ga = torch.autograd.grad((got * g).sum(), [getattr(cell, n) for n in names])
    gb = torch.autograd.grad((want * g).sum(), [getattr(rnn, n) for n in names])
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls, ref", CELLS)
def test_equals_dense_cell_on_quantised_input_and_hidden(cls, ref):
    x = seq((40, 3, 5), torch.float64, seed=2)
    cell = cls(5, 8, threshold=0.15, hidden_threshold=0.05, dtype=torch.float64)
    want = dense_on_quantised(cell, x, 0.15, 0.05)
    got, _ = cell(x)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    sp = {k: s.sparsity for k, s in cell.delta_streams().items()}
    assert 0.2 < sp["input"] < 1 and 0.2 < sp["hidden"] < 1  # both encoders suppressed


@pytest.mark.parametrize("cls, ref", CELLS)
def test_kernel_path_equals_torch_path_at_positive_threshold(cls, ref):
    x = seq((50, 4, 7), seed=3)
    cell = cls(7, 16, threshold=0.1, hidden_threshold=0.05)
    with torch.no_grad():
        k, ks = cell(x)
    t, ts = cell(x)
    torch.testing.assert_close(k, t, rtol=0, atol=2e-6)
    for a, b in zip(ks, ts):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-6)


def test_no_drift_over_500_float32_steps():
    torch.manual_seed(4)
    rnn = torch.nn.GRU(4, 12)
    cell = DeltaGRU.from_dense(rnn, threshold=0.0)
    x = seq((500, 2, 4), seed=4)
    with torch.no_grad():
        got, _ = cell(x)
        want, _ = rnn.double()(x.double())
    err = (got.double() - want).abs().amax((1, 2))
    assert err.max() < 1e-4, err.max()


@pytest.mark.parametrize("cls, ref", CELLS)
def test_state_continues_and_step_mode(cls, ref):
    x = seq((20, 2, 3), seed=5)
    cell = cls(3, 6, threshold=0.1)
    with torch.no_grad():
        whole, s_whole = cell(x)
        a, s = cell(x[:8])
        b, s2 = cell(x[8:], s)
        assert isinstance(s, cell.state_type)
        torch.testing.assert_close(torch.cat([a, b]), whole, rtol=0, atol=1e-6)
        steps = torch.stack([cell.step(x[t])[0] for t in range(20)])
        torch.testing.assert_close(steps, whole, rtol=0, atol=1e-6)
        # a bare hidden state, as nn.GRU / nn.LSTM take it, at θ = 0 equals torch
        cell0 = cls.from_dense(ref(3, 6), threshold=0.0)
        rnn = torch.nn.GRU(3, 6) if cls is DeltaGRU else torch.nn.LSTM(3, 6)
        rnn.load_state_dict({k: v for k, v in cell0.state_dict().items() if "threshold" not in k})
        h0 = torch.randn(2, 6)
        bare = h0 if cls is DeltaGRU else (h0, torch.randn(2, 6))
        want, _ = rnn(x, bare[None] if cls is DeltaGRU else tuple(t[None] for t in bare))
        got, _ = cell0(x, bare)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_gradcheck_at_zero_threshold():
    torch.manual_seed(6)
    cell = DeltaGRU(2, 3, dtype=torch.float64)
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    names = ["weight_ih_l0", "weight_hh_l0", "bias_hh_l0"]
    params = [getattr(cell, n).detach().clone().requires_grad_() for n in names]

    def f(x, *p):
        return torch.func.functional_call(cell, dict(zip(names, p)), (x,))[0]

    assert torch.autograd.gradcheck(f, (x, *params))


def test_counters_are_exact():
    x = seq((15, 2, 4), seed=7)
    cell = DeltaLSTM(4, 5, threshold=0.1)
    with torch.no_grad():
        cell(x)
    s = cell.delta_streams()
    nnz = int((s["input"].delta != 0).sum() + (s["hidden"].delta != 0).sum())
    c = cell.op_counts()
    assert c["events_in"] == nnz
    assert c["macs"] + c["synops"] == nnz * 20
    assert c["dense_macs"] == 15 * 2 * (4 + 5) * 20
    assert c["neuron_updates"] == 15 * 2 * 5
    assert c["inputs_in"] == 15 * 2 * 9


@pytest.mark.parametrize("cls", [DeltaGRU, DeltaLSTM])
def test_counters_include_the_dense_product_of_a_bare_hidden_state(cls):
    """A bare h (nn.GRU/nn.LSTM style) starts the recurrent memory with one dense
    h @ W_hhᵀ: B x H x (gates x H) MACs that the same call from a returned state does not do."""
    x = seq((6, 2, 4), seed=3)
    gh = (3 if cls is DeltaGRU else 4) * 5
    h0 = torch.randn(2, 5)
    bare = h0 if cls is DeltaGRU else (h0, torch.zeros(2, 5))
    cell = cls(4, 5, threshold=0.1)
    with torch.no_grad():
        cell(x, bare)
    c = cell.op_counts()
    s = cell.delta_streams()
    nnz = int((s["input"].delta != 0).sum() + (s["hidden"].delta != 0).sum())
    assert c["macs"] + c["synops"] == nnz * gh + 2 * 5 * gh
    assert c["dense_macs"] == 6 * 2 * (4 + 5) * gh + 2 * 5 * gh


def test_bad_inputs_raise_clear_errors():
    cell = DeltaGRU(3, 4)
    with pytest.raises(ShapeError, match=r"\[T, B, 3\]"):
        cell(torch.ones(2, 1, 5))
    with pytest.raises(ShapeError, match="state h"):
        cell(torch.ones(2, 1, 3), torch.zeros(2, 4))
    with pytest.raises(ShapeError, match="DeltaGRUState"):
        cell(torch.ones(2, 1, 3), (torch.zeros(1, 4), torch.zeros(1, 4)))
    bad = DeltaGRUState(*(torch.zeros(1, n) for n in (4, 3, 4, 12, 11)))
    with pytest.raises(ShapeError, match="state.mh"):
        cell(torch.ones(2, 1, 3), bad)
    with pytest.raises(ShapeError, match="step input"):
        cell.step(torch.ones(2, 1, 3))
    with pytest.raises(ParameterError, match="hidden_size"):
        DeltaLSTM(3, 0)
    with pytest.raises(ParameterError, match="one-layer"):
        DeltaGRU.from_dense(torch.nn.GRU(3, 4, num_layers=2))
    with pytest.raises(ParameterError, match="GRU"):
        DeltaGRU.from_dense(torch.nn.LSTM(3, 4))
    assert DeltaLSTMState._fields == ("h", "c", "x_ref", "h_ref", "mx", "mh")
