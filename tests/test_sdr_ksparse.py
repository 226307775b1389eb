"""KSparseAutoencoder (Makhzani & Frey 2014): top-k codes, tied weights, k annealing, probes.

The gradients are held to a hand-written torch reference of the same equations
(``torch.topk`` mask, ``Wᵀ`` decoder); the annealing schedule to its formula; the
linear-probe comparison on scikit-learn's digits uses fixed seeds (numbers below).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurosparse.errors import DTypeError, ParameterError, ShapeError
from neurosparse.sdr import KSparseAutoencoder


def test_codes_have_exactly_k_nonzeros_and_alpha_k_at_test():
    torch.manual_seed(0)
    ae = KSparseAutoencoder(30, 50, k=6, alpha=2.5)
    x = torch.randn(40, 30)
    ae.train()
    assert ((ae.encode(x) != 0).sum(1) == 6).all()
    ae.eval()
    assert ae.k_test == 15
    assert ((ae.encode(x) != 0).sum(1) == 15).all()
    assert ((ae.encode(x, k=3) != 0).sum(1) == 3).all()
    # the kept entries are the largest pre-activations, unchanged
    h = ae.pre_activation(x)
    top = h.topk(15, dim=1)
    code = ae.encode(x)
    assert torch.equal(code.gather(1, top.indices), top.values)
    # leading dimensions are samples
    assert ((ae.encode(torch.randn(3, 4, 30)) != 0).sum(-1) == 15).all()
    assert KSparseAutoencoder(30, 50, k=40, alpha=2.0).k_test == 50  # capped at hidden


def _reference(x, W, b, b_dec, k):
    h = x @ W.T + b
    mask = torch.zeros_like(h).scatter_(1, h.topk(k, dim=1).indices, 1.0)
    return (h * mask) @ W + b_dec


def test_tied_decoder_and_gradients_match_a_hand_written_reference():
    torch.manual_seed(1)
    ae = KSparseAutoencoder(20, 35, k=5).double()
    x = torch.randn(16, 20, dtype=torch.float64)
    with torch.no_grad():
        ae.decoder_bias.normal_()
        ae.bias.normal_()
    W = ae.weight.detach().clone().requires_grad_(True)
    b = ae.bias.detach().clone().requires_grad_(True)
    bd = ae.decoder_bias.detach().clone().requires_grad_(True)
    ref = _reference(x, W, b, bd, 5)
    out = ae.train()(x)
    assert torch.allclose(out, ref, atol=1e-12)
    F.mse_loss(out, x).backward()
    F.mse_loss(ref, x).backward()
    assert torch.allclose(ae.weight.grad, W.grad, atol=1e-12)
    assert torch.allclose(ae.bias.grad, b.grad, atol=1e-12)
    assert torch.allclose(ae.decoder_bias.grad, bd.grad, atol=1e-12)
    # one weight matrix, used by both sides
    assert [n for n, _ in ae.named_parameters()] == ["weight", "bias", "decoder_bias"]
    h = ae.encode(x)
    assert torch.allclose(ae.decode(h), h @ ae.weight + ae.decoder_bias)


def test_k_schedule_follows_its_formula():
    ae = KSparseAutoencoder(10, 100, k=10, k_start=90, anneal_fraction=0.5)
    total = 200
    for t in range(total):
        expect = round(90 - 80 * min(1.0, t / 100))
        assert ae.k_schedule(t, total) == expect
    assert ae.k_schedule(0, total) == 90 and ae.k_schedule(100, total) == 10
    assert ae.k_schedule(199, total) == 10
    flat = KSparseAutoencoder(10, 100, k=10, anneal_fraction=0.0)
    assert flat.k_schedule(0, 50) == 10
    assert KSparseAutoencoder(10, 100, k=10).k_schedule(0, 50) == 100  # k_start = hidden


def test_fit_walks_k_down_the_schedule_and_lowers_the_loss():
    torch.manual_seed(2)
    ae = KSparseAutoencoder(16, 40, k=4, k_start=30, anneal_fraction=0.5)
    seen = []
    ae.register_forward_pre_hook(lambda m, inp: seen.append(m.k_train) if m.training else None)
    X = torch.rand(64, 16)
    history = ae.fit(X, epochs=4, batch_size=16, lr=1e-2, progress=False)
    steps = 4 * 4
    assert seen == [ae.k_schedule(t, steps) for t in range(steps)]
    assert seen[0] == 30 and seen[-1] == 4
    assert len(history) == 4 and not ae.training and ae.k_train == 4
    longer = KSparseAutoencoder(16, 40, k=4)
    hist = longer.fit(X, epochs=15, batch_size=16, lr=1e-2, progress=False)
    assert hist[-1] < 0.5 * hist[0]


def test_errors_name_the_problem():
    with pytest.raises(ParameterError, match="k must lie"):
        KSparseAutoencoder(8, 10, k=11)
    with pytest.raises(ParameterError, match="k_start"):
        KSparseAutoencoder(8, 10, k=5, k_start=3)
    with pytest.raises(ParameterError, match="alpha"):
        KSparseAutoencoder(8, 10, k=5, alpha=0.5)
    ae = KSparseAutoencoder(8, 10, k=5)
    with pytest.raises(ShapeError, match=r"\[\.\.\., 8\]"):
        ae(torch.zeros(3, 9))
    with pytest.raises(DTypeError, match="floating"):
        ae(torch.zeros(3, 8, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"\[n, 8\]"):
        ae.fit(torch.zeros(2, 3, 8), epochs=1, progress=False)
    with pytest.raises(ParameterError, match="k must lie"):
        ae.encode(torch.zeros(2, 8), k=0)


def _probe_accuracies(seed: int, k: int, epochs: int) -> float:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, random_state=seed, stratify=y)
    torch.manual_seed(seed)
    ae = KSparseAutoencoder(64, 256, k=k, alpha=3.0 if k < 256 else 1.0)
    ae.fit(torch.from_numpy(Xtr), epochs=epochs, batch_size=64, lr=1e-3, seed=seed, progress=False)
    with torch.no_grad():
        ztr, zte = (ae.encode(torch.from_numpy(a)).numpy() for a in (Xtr, Xte))
    return LogisticRegression(max_iter=3000).fit(ztr, ytr).score(zte, yte)


def test_linear_probe_on_ksparse_codes_vs_dense_autoencoder():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: threads only add overhead (and nondeterminism)
    try:
        sparse = [_probe_accuracies(s, 20, 50) for s in (0, 1, 2)]
        dense = [_probe_accuracies(s, 256, 50) for s in (0, 1, 2)]
    finally:
        torch.set_num_threads(threads)
    gap = np.mean(sparse) - np.mean(dense)
    # measured (899 test digits, 50 epochs): k-sparse (k = 20 of 256, alpha = 3) 0.966,
    # 0.978, 0.960; dense 0.962, 0.969, 0.953: +0.6 points on average. Seeds 3 and 4 give
    # -0.2 and 0.0 points, so the direction is not robust per seed on this small data
    # set: what holds is that a code with 8 % of its units active keeps the class
    # information of the dense code. Only that (non-inferiority) is asserted.
    assert min(sparse) > 0.94
    assert gap > -0.005
