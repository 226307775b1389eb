"""The fused Numba sequence kernel equals the reference step loop: spikes, state, gradients."""

import itertools

import pytest
import torch

import neurosparse as ns
from neurosparse import _shared_tensors as shared_tensors
from neurosparse.neurons import surrogate as sg
from neurosparse.neurons.functional import NeuronState
from neurosparse.ops import lif_sequence, registry

T, B, N = 40, 3, 37  # odd sizes: blocks do not divide evenly


def _make(kind: str, reset: str, surrogate, learn: bool):
    if kind == "lif":
        return ns.LIF(0.8, 0.7, reset, surrogate, learn_beta=learn, learn_threshold=learn)
    if kind == "lif_now":
        return ns.LIF(0.8, 0.7, reset, surrogate, learn_beta=learn, learn_threshold=learn,
                      reset_delay=False)
    if kind == "if":
        return ns.IF(1.2, reset, surrogate, learn_threshold=learn)
    if kind == "alif":
        return ns.ALIF(0.85, 0.6, reset, surrogate, adapt=0.3, rho=0.9,
                       learn_beta=learn, learn_threshold=learn)
    if kind == "alif_now":
        return ns.ALIF(0.85, 0.6, reset, surrogate, adapt=0.3, rho=0.9, reset_delay=False,
                       learn_beta=learn, learn_threshold=learn)
    if kind == "refractory":
        return ns.LIF(0.8, 0.5, reset, surrogate, refractory=2, learn_beta=learn,
                      learn_threshold=learn)
    if kind == "cuba":
        return ns.CubaLIF(surrogate=surrogate, v_reset=0.1 if reset == "zero" else 0.0,
                          learn_threshold=learn)
    raise AssertionError(kind)


def _run(neuron, x, v0, w, wv, mode, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", mode)
    x = x.clone().requires_grad_()
    v0 = v0.clone().requires_grad_()
    st = neuron.initial_state(x[0])._replace(v=v0)
    z, out = neuron(x, st)
    loss = (z * w).sum() + (out.v * wv).sum() + (out.i * wv).sum()
    params = [p for p in neuron.parameters()]
    grads = torch.autograd.grad(loss, [x, v0, *params])
    return z.detach(), out, grads


KINDS = ["lif", "lif_now", "if", "alif", "alif_now", "refractory"]
SURROGATES = [sg.FastSigmoid(5.0), sg.ATan(2.0), sg.Triangle(0.8), sg.StraightThrough(),
              sg.SuperSpike(10.0), sg.Sigmoid(4.0)]


@pytest.mark.parametrize(
    "kind,reset", list(itertools.product(KINDS, ["subtract", "zero", "none"]))
    + [("cuba", "zero")]
)
@pytest.mark.parametrize("surrogate", SURROGATES, ids=lambda s: repr(s))
def test_kernel_matches_reference(kind, reset, surrogate, monkeypatch):
    torch.manual_seed(sum(map(ord, kind + reset + repr(surrogate))))
    learn = True
    neuron = _make(kind, reset, surrogate, learn)
    scale = 6.0 if kind == "cuba" else 0.9
    x = torch.rand(T, B, N) * scale - 0.1 * scale
    w = torch.randn(T, B, N)
    wv = torch.randn(B, N)
    v0 = torch.rand(B, N) * 0.5
    z_k, s_k, g_k = _run(neuron, x, v0, w, wv, "numba", monkeypatch)
    z_r, s_r, g_r = _run(neuron, x, v0, w, wv, "torch", monkeypatch)
    assert 0 < z_r.sum() < z_r.numel()  # some spikes, not all
    assert torch.equal(z_k, z_r)
    for a, b in zip(s_k, s_r):
        assert torch.allclose(a, b, atol=1e-6)
    assert len(g_k) >= 3
    for a, b in zip(g_k, g_r):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), (a - b).abs().max()


def test_registry_switch(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    assert registry.use_kernel("lif_sequence", "cpu")
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    assert not registry.use_kernel("lif_sequence", "cpu")
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    with pytest.raises(ns.errors.KernelUnavailableError, match="cuda"):
        registry.use_kernel("lif_sequence", "cuda")
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "fast")
    with pytest.raises(ns.errors.ParameterError, match="NEUROSPARSE_KERNELS"):
        registry.use_kernel("lif_sequence", "cpu")


def test_feature_maps_and_per_neuron_beta(monkeypatch):
    """[T, B, C, H, W] input with a per-channel beta broadcast over H, W."""
    torch.manual_seed(5)
    beta = torch.tensor([0.5, 0.9, 0.99]).view(3, 1, 1)
    neuron = ns.LIF(beta, 0.8)
    x = torch.rand(20, 2, 3, 4, 5)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    z_k, _ = neuron(x)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    z_r, _ = neuron(x)
    assert torch.equal(z_k, z_r)
    rates = z_r.mean(dim=(0, 1, 3, 4))
    assert rates[0] < rates[1] < rates[2]  # less leak, more spikes


def test_hand_computed_lif():
    """beta = 0.5, threshold 1, subtract, delayed reset (snnTorch convention)."""
    x = torch.tensor([0.6, 0.6, 0.6, 0.0, 0.0]).view(5, 1, 1)
    z, _ = ns.LIF(0.5, 1.0)(x)
    # U: 0.6, 0.9, 1.05 (spike), 0.525 - 1 = -0.475, -0.2375
    assert z.flatten().tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    lif = ns.LIF(0.5, 1.0)
    vs = [lif.step(x[t])[1].v.item() for t in range(5)]
    assert vs == pytest.approx([0.6, 0.9, 1.05, -0.475, -0.2375], abs=1e-6)


def test_refractory_blocks_spikes():
    x = torch.full((10, 1, 1), 2.0)
    z, _ = ns.LIF(0.9, 1.0, "zero", refractory=2)(x)
    assert z.flatten().tolist() == [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]


def test_alif_threshold_adapts():
    x = torch.full((200, 1, 1), 0.3)
    z_lif, _ = ns.LIF(0.9, 1.0)(x)
    z_alif, _ = ns.ALIF(0.9, 1.0, adapt=0.5, rho=0.95)(x)
    assert z_alif.sum() < z_lif.sum()
    assert z_alif.sum() > 0


def test_half_input_keeps_an_fp32_membrane(monkeypatch):
    # what autocast hands a neuron: the kernel integrates in fp32, spikes come back in
    # the input's dtype and equal the fp32 run's; a bf16 membrane (the reference loop
    # run in bf16) crosses the threshold at other steps, which is why none is offered
    torch.manual_seed(0)
    x = torch.rand(20, 4, 64).bfloat16()
    lif = ns.LIF(0.9)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    z, _ = lif(x)
    z32, _ = lif(x.float())
    assert z.dtype == torch.bfloat16
    assert torch.equal(z.float(), z32)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    z_bf16_membrane, _ = lif(x)
    assert not torch.equal(z_bf16_membrane.float(), z32)


def test_half_state_is_widened_for_the_kernel(monkeypatch):
    # a bf16 state (what a step loop under autocast keeps) used to reach the float32
    # kernel as bf16 and fail; it is widened, and the run equals the fp32 one
    torch.manual_seed(1)
    x = (torch.rand(12, 3, 16) * 1.5).bfloat16()
    lif = ns.LIF(0.85)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    st = lif.initial_state(x[0])._replace(v=(torch.rand(3, 16) * 0.5).bfloat16())
    z, out = lif(x, st)
    z32, out32 = lif(x.float(), NeuronState(*(s.float() for s in st)))
    assert out.v.dtype == torch.float32
    assert torch.equal(z.float(), z32)
    assert torch.equal(out.v, out32.v)


STEP_KINDS = ["lif", "lif_now", "if", "refractory", "cuba", "alif", "alif_now"]


@pytest.mark.parametrize("kind", STEP_KINDS)
@pytest.mark.parametrize("grad", [True, False], ids=["grad", "nograd"])
def test_step_through_the_kernel_matches_the_reference_step(kind, grad, monkeypatch):
    # the routing CUDA steps take (one fused kernel call per step, T = 1), run here on
    # the CPU kernel: a chain of steps gives the reference step's spikes, states and
    # gradients (through the membrane carried from step to step, the inputs, beta and
    # the threshold)
    monkeypatch.setattr(lif_sequence, "STEP_KERNEL_DEVICES", ("cpu", "cuda"))
    torch.manual_seed(sum(map(ord, kind)))
    neuron = _make(kind, "subtract" if kind != "cuba" else "zero", sg.ATan(2.0), learn=True)
    scale = 6.0 if kind == "cuba" else 0.9
    x = torch.rand(8, B, N) * scale - 0.1 * scale
    w = torch.randn(8, B, N)
    v0 = torch.rand(B, N) * 0.5
    calls = []
    real = lif_sequence._sequence_kernel
    monkeypatch.setattr(lif_sequence, "_sequence_kernel",
                        lambda *a: calls.append(1) or real(*a))  # fmt: skip

    def chain(mode):
        monkeypatch.setenv("NEUROSPARSE_KERNELS", mode)
        with torch.set_grad_enabled(grad):
            xs = x.clone().requires_grad_(grad)
            v = v0.clone().requires_grad_(grad)
            st = neuron.initial_state(x[0])._replace(v=v)
            loss, zs = 0.0, []
            for t in range(x.shape[0]):
                z, st = neuron.step(xs[t], st)
                zs.append(z.detach())
                loss = loss + (z * w[t]).sum()
            loss = loss + (st.v * w[0]).sum()
            g = torch.autograd.grad(loss, [xs, v, *neuron.parameters()]) if grad else ()
        return torch.stack(zs), st, g

    z_k, s_k, g_k = chain("numba")
    # adaptive neurons keep the reference step while autograd records (no kernel
    # gradient for the adaptation state)
    assert len(calls) == (0 if grad and kind.startswith("alif") else x.shape[0])
    z_r, s_r, g_r = chain("torch")
    assert 0 < z_r.sum() < z_r.numel()
    assert torch.equal(z_k, z_r)
    for a, b in zip(s_k, s_r):
        assert torch.allclose(a, b, atol=1e-6)
    for a, b in zip(g_k, g_r):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), (a - b).abs().max()


def test_a_state_in_one_buffer_is_read_in_place_and_in_order():
    # the kernel's own [4, K] state (and a static buffer.unbind(0)) is read without a
    # stack; fields that are not its consecutive rows, or that autograd tracks, are
    # stacked, in (v, i, a, c) order
    x = torch.rand(2, 5)
    buf = torch.rand(4, 2, 5)
    packed = lif_sequence._pack_state(NeuronState(*buf.unbind(0)), 0.0, 2, (5,), 5, x, False)
    assert packed.data_ptr() == buf.data_ptr() and torch.equal(packed, buf.view(4, 10))
    shuffled = NeuronState(*buf[[0, 2, 1, 3]].unbind(0))
    packed = lif_sequence._pack_state(shuffled, 0.0, 2, (5,), 5, x, False)
    assert torch.equal(packed, buf[[0, 2, 1, 3]].reshape(4, 10))
    packed = lif_sequence._pack_state(NeuronState(*buf.unbind(0)), 0.0, 2, (5,), 5, x, True)
    assert packed.data_ptr() != buf.data_ptr() and torch.equal(packed, buf.view(4, 10))
    tracked = NeuronState(*buf.clone().requires_grad_().unbind(0))
    packed = lif_sequence._pack_state(tracked, 0.0, 2, (5,), 5, x, False)
    assert packed.data_ptr() != buf.data_ptr() and torch.equal(packed, buf.view(4, 10))


def test_placeholders_made_under_inference_mode_are_not_kept(monkeypatch):
    # the kernel's unused-trace placeholders are saved for the backward: one made under
    # inference_mode and kept would make the next training call fail
    monkeypatch.setattr(shared_tensors, "_KEPT", {})  # nothing kept yet in this process
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    lif = ns.LIF(0.9, learn_beta=True)
    x = torch.rand(3, 2, 4) * 2
    with torch.inference_mode():
        z_inf, _ = lif(x)
    z, _ = lif(x.clone().requires_grad_())
    z.sum().backward()
    assert torch.equal(z.detach(), z_inf) and lif.beta.grad is not None


def test_constants_made_under_inference_mode_are_not_kept():
    # an inference tensor kept for later would make a training step fail ("inference
    # tensors cannot be saved for backward"); float64 gives this test its own key
    lif = ns.LIF(0.9, learn_beta=True).double()
    x = torch.rand(3, 2, 4, dtype=torch.float64) * 2
    with torch.inference_mode():
        z_inf, _ = lif(x)
    xg = x.clone().requires_grad_()
    z, _ = lif(xg)
    z.sum().backward()
    assert torch.equal(z.detach(), z_inf)
    assert xg.grad is not None and lif.beta.grad is not None


@pytest.mark.parametrize("grad", [True, False], ids=["grad", "nograd"])
def test_parameter_edits_between_calls_are_seen(grad, monkeypatch):
    # the kernels' [8, P] parameter block is built from the parameters on every call:
    # an in-place edit (also through ``.data``, which no version counter sees), a new
    # tensor, or an edited learnable parameter each give the spikes of a neuron built
    # with the new values
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    x = torch.rand(20, 2, 16) * 0.6

    def spikes(neuron):
        with torch.set_grad_enabled(grad):
            return neuron(x)[0]

    lif = ns.LIF(0.95, 1.0)
    first = spikes(lif)
    assert torch.equal(first, spikes(lif))
    assert torch.equal(first, spikes(ns.LIF(0.95, 1.0)))
    with torch.no_grad():
        lif.beta.fill_(0.5)
    assert torch.equal(spikes(lif), spikes(ns.LIF(0.5, 1.0)))
    assert not torch.equal(spikes(lif), first)
    lif.beta.data.fill_(0.7)
    assert torch.equal(spikes(lif), spikes(ns.LIF(0.7, 1.0)))
    lif.threshold = torch.tensor(0.3)
    assert torch.equal(spikes(lif), spikes(ns.LIF(0.7, 0.3)))
    learn = ns.LIF(0.95, 1.0, learn_threshold=True)
    assert torch.equal(spikes(learn), first)
    learn.threshold.data.fill_(0.3)
    assert torch.equal(spikes(learn), spikes(ns.LIF(0.95, 0.3)))


@pytest.mark.parametrize("route", ["kernel", "reference"])
@pytest.mark.parametrize("layout", ["one buffer", "separate"])
@pytest.mark.parametrize("shape", [(2, 33), (2, 3, 5, 4)], ids=["dense", "feature maps"])
def test_step_out_writes_the_new_state_in_place(route, layout, shape, monkeypatch):
    # out=state replays a recurrence on static buffers (what a CUDA graph needs): the
    # chain equals the chain of returned states, and out's tensors are the ones written
    if route == "kernel":
        monkeypatch.setattr(lif_sequence, "STEP_KERNEL_DEVICES", ("cpu", "cuda"))
    torch.manual_seed(3)
    lif = ns.LIF(0.85, 0.7, alpha=0.6)  # synaptic: two fields evolve
    xs = torch.rand(9, *shape) * 1.2
    if layout == "one buffer":
        static = NeuronState(*torch.zeros(4, *shape).unbind(0))
    else:
        static = NeuronState(*(torch.zeros(shape) for _ in range(4)))
    ptrs = [s.data_ptr() for s in static]
    ref = lif.initial_state(xs[0])
    fired = 0.0
    with torch.no_grad():
        for t in range(xs.shape[0]):
            z, got = lif.step(xs[t], static, out=static)
            z_ref, ref = lif.step(xs[t], ref)
            assert got is static
            assert torch.equal(z, z_ref)
            for a, b in zip(static, ref):
                assert torch.equal(a, b)
            fired += float(z_ref.sum())
    assert [s.data_ptr() for s in static] == ptrs
    assert 0 < float(static.i.abs().sum()) and 0 < fired < xs.numel()


def test_step_out_refuses_autograd():
    lif = ns.LIF(0.9)
    x = torch.rand(2, 5, requires_grad=True)
    st = lif.initial_state(x.detach())
    with pytest.raises(ns.errors.ParameterError, match="no_grad"):
        lif.step(x, st, out=st)
    with torch.no_grad():
        z, got = lif.step(x, st, out=st)
    assert got is st and not z.requires_grad


@pytest.mark.parametrize("mode", ["sequence", "step"])
def test_gradient_reaches_a_state_that_alone_requires_it(mode, monkeypatch):
    # input and parameters need no gradient, the initial membrane does: the kernel call
    # must still record for autograd (an untracked fast path would drop this gradient)
    monkeypatch.setattr(lif_sequence, "STEP_KERNEL_DEVICES", ("cpu", "cuda"))
    torch.manual_seed(5)
    lif = ns.LIF(0.8, 0.7)
    x = torch.rand(6, 2, 9) * 0.9

    def grad_v0(kernels):
        monkeypatch.setenv("NEUROSPARSE_KERNELS", kernels)
        v0 = (torch.rand(2, 9) * 0.5).requires_grad_()
        st = lif.initial_state(x[0])._replace(v=v0)
        if mode == "sequence":
            z, st = lif(x, st)
        else:
            zs = []
            for t in range(x.shape[0]):
                z, st = lif.step(x[t], st)
                zs.append(z)
            z = torch.stack(zs)
        ((z * torch.linspace(-1, 1, z.numel()).view_as(z)).sum() + st.v.sum()).backward()
        return v0.grad

    torch.manual_seed(6)
    g_k = grad_v0("numba")
    torch.manual_seed(6)
    g_r = grad_v0("torch")
    assert g_k is not None and g_k.abs().sum() > 0
    assert torch.allclose(g_k, g_r, atol=1e-6)


@pytest.mark.parametrize("state_dtype", [torch.bfloat16, torch.float32])
def test_half_precision_steps_on_the_cpu_match_the_sequence(state_dtype, monkeypatch):
    # a bf16 step loop on the CPU (reference step) integrates in fp32 like the kernels:
    # its spikes equal sequence mode's, come back in bf16, and the state is fp32,
    # whichever dtype the state it started from had
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "auto")
    torch.manual_seed(7)
    lif = ns.LIF(0.9)
    x = (torch.rand(30, 2, 64) * 0.4).bfloat16()
    z_seq, s_seq = lif(x)
    st = NeuronState(*(s.to(state_dtype) for s in lif.initial_state(x[0])))
    zs = []
    for t in range(x.shape[0]):
        z, st = lif.step(x[t], st)
        zs.append(z)
    z_steps = torch.stack(zs)
    assert z_steps.dtype == torch.bfloat16 and st.v.dtype == torch.float32
    assert 0 < float(z_seq.float().sum()) < z_seq.numel()
    assert torch.equal(z_steps, z_seq)
    assert torch.allclose(st.v, s_seq.v, atol=1e-6)
