"""The host-time shortcuts of a streaming step change nothing a user can observe.

``SpikingNeuron.step`` reuses its ``params()`` tuple between steps on the CPU and checks
finiteness with one reduction read on the host, and ``neuron_step`` skips the
surrogate's autograd Function where nothing is differentiated and writes its
comparisons as floats in one kernel. Each test compares against the step as it was
written before those shortcuts (``_reference_step`` below, ``params()`` made anew every
step) bit for bit, or checks that an edit, a move or a bad input is seen exactly as
before.
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

import neurosparse as ns
from neurosparse import _shared_tensors
from neurosparse._checks import check_finite
from neurosparse.errors import DeviceError, InputValueError, ShapeError
from neurosparse.neurons.functional import NeuronParams, NeuronSpec, NeuronState, neuron_step
from neurosparse.neurons.surrogate import FastSigmoid

T, B, N = 50, 3, 16


def _reference_step(
    x: torch.Tensor, state: NeuronState, p: NeuronParams, spec: NeuronSpec
) -> tuple[torch.Tensor, NeuronState]:
    """``neuron_step`` as written before its shortcuts: every term, the surrogate's
    Function, ``(h > 0).to(dtype)`` comparisons."""
    v, i, a, c = state
    if spec.synaptic:
        j = i + x
        d = j
        i_new = j + p.alpha * j if spec.euler else p.alpha * j
    else:
        d, i_new = x, i
    if spec.reset_delay:
        r = (v - (p.threshold + p.adapt * a) > 0).to(x.dtype)
        a_new = p.rho * a + r if spec.adaptive else a
        th = p.threshold + p.adapt * a_new if spec.adaptive else p.threshold
        vb = (1 - r) * v if spec.reset == "zero" else v
        u = vb + p.gain * ((p.leak - vb) + d) if spec.euler else p.beta * vb + p.gain * d + p.leak
        v_new = u - r * p.threshold if spec.reset == "subtract" else u
        z = spec.surrogate(v_new - th)
        return z, NeuronState(v_new, i_new, a_new, c)
    th = p.threshold + p.adapt * a if spec.adaptive else p.threshold
    if spec.refractory > 0:
        free = (c <= 0).to(x.dtype)
        d = d * free
    u = v + p.gain * ((p.leak - v) + d) if spec.euler else p.beta * v + p.gain * d + p.leak
    z = spec.surrogate(u - th)
    if spec.refractory > 0:
        z = z * free
        fired = z.detach() > 0
        c_new = torch.where(fired, torch.full_like(c, spec.refractory), (c - 1).clamp(min=0))
    else:
        c_new = c
    zr = z.detach() if spec.detach_reset else z
    if spec.reset == "subtract":
        v_new = u - zr * p.threshold
    elif spec.reset == "zero":
        v_new = (1 - zr) * u + zr * p.v_reset
    else:
        v_new = u
    a_new = p.rho * a + z.detach() if spec.adaptive else a
    return z, NeuronState(v_new, i_new, a_new, c_new)


VARIANTS = {
    "lif": lambda: ns.LIF(beta=0.9),
    "lif_zero": lambda: ns.LIF(beta=0.8, reset="zero"),
    "lif_none": lambda: ns.LIF(beta=0.8, reset="none", threshold=2.0),
    "lif_same_step": lambda: ns.LIF(beta=0.9, reset_delay=False),
    "lif_refractory": lambda: ns.LIF(beta=0.9, refractory=2),
    "lif_synaptic": lambda: ns.LIF(beta=0.9, alpha=0.7),
    "lif_per_neuron": lambda: ns.LIF(beta=torch.linspace(0.5, 0.95, N),
                                     threshold=torch.linspace(0.5, 1.5, N)),
    "lif_learnable": lambda: ns.LIF(beta=0.9, learn_beta=True, learn_threshold=True),
    "lif_snntorch": lambda: ns.LIF.snntorch(beta=0.9),
    "if": lambda: ns.IF(threshold=1.5),
    "alif": lambda: ns.ALIF(beta=0.9, adapt=0.3, rho=0.9),
    "alif_same_step": lambda: ns.ALIF(beta=0.9, reset_delay=False, refractory=1),
    "cuba_norse": lambda: ns.CubaLIF(),
    "cuba_norse_learnable": lambda: ns.CubaLIF(v_leak=0.1, v_reset=-0.2, learn_threshold=True),
}  # fmt: skip


def _inputs(dtype=torch.float32, scale: float = 1.5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, N, generator=gen) * scale
    x[x.abs() < 0.1] = 0.0
    x[:, 0, :3] = -0.0  # signed zeros: a skipped ``+ 0.0`` would show in the state's bits
    return x.to(dtype)


def _bits(t: torch.Tensor) -> torch.Tensor:
    ints = {2: torch.int16, 4: torch.int32, 8: torch.int64}
    return t.detach().contiguous().view(ints[t.element_size()])


def _assert_same_bits(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape, what
    assert torch.equal(_bits(a), _bits(b)), what


def _reference_run(neuron, xs) -> tuple[list[torch.Tensor], list[NeuronState]]:
    st = neuron.initial_state(xs[0])
    zs, states = [], []
    for x in xs:
        z, st = _reference_step(x, st, neuron.params(), neuron.spec)
        zs.append(z)
        states.append(st)
    return zs, states


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kept_state_steps_match_the_reference_bit_for_bit(name, dtype):
    neuron = VARIANTS[name]().to(dtype)
    xs = _inputs(dtype)
    with torch.no_grad():
        zs, states = _reference_run(neuron, xs)
        spikes = 0
        for t, x in enumerate(xs):
            z, st = neuron.step(x)
            assert neuron.state is st
            _assert_same_bits(z, zs[t], f"spikes, step {t}")
            for f, a, b in zip(NeuronState._fields, st, states[t]):
                _assert_same_bits(a, b, f"state.{f}, step {t}")
            spikes += int(z.sum())
    assert 0 < spikes < T * B * N  # the loop fires, and not everywhere


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_explicit_and_out_states_match_the_reference(name):
    neuron = VARIANTS[name]()
    xs = _inputs()
    with torch.no_grad():
        zs, states = _reference_run(neuron, xs)
        s_given = neuron.initial_state(xs[0])
        buf = torch.zeros(4, B, N)
        s_out = NeuronState(*buf.unbind(0))
        s_out.v.fill_(neuron.v_init)
        for t, x in enumerate(xs):
            z1, s_given = neuron.step(x, s_given)
            z2, s2 = neuron.step(x, s_out, out=s_out)
            assert s2 is s_out
            for z in (z1, z2):
                _assert_same_bits(z, zs[t], f"spikes, step {t}")
            for f, a, b, c in zip(NeuronState._fields, s_given, s_out, states[t]):
                _assert_same_bits(a, c, f"state.{f}, step {t}")
                _assert_same_bits(b, c, f"out state.{f}, step {t}")
    assert neuron.state is None  # explicit states leave the kept one alone


GAINS = {"module": None, "half": torch.tensor(0.5), "one per neuron": torch.ones(N),
         "one, float64": torch.tensor(1.0, dtype=torch.float64)}  # fmt: skip


@pytest.mark.parametrize("gain", sorted(GAINS))
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_bare_neuron_step_matches_the_reference(name, gain):
    neuron = VARIANTS[name]()
    xs = _inputs()
    p, spec = neuron.params(), neuron.spec
    if GAINS[gain] is not None:
        p = p._replace(gain=GAINS[gain])
    with torch.no_grad():
        st_ref = st = neuron.initial_state(xs[0])
        st.v[0, :3] = -0.0  # with the -0.0 inputs: a skipped ``+ leak`` would keep a -0.0
        for x in xs:
            z_ref, st_ref = _reference_step(x, st_ref, p, spec)
            z, st = neuron_step(x, st, p, spec)
            _assert_same_bits(z, z_ref, "spikes")
            for a, b in zip(st, st_ref):
                _assert_same_bits(a, b, "state")


@pytest.mark.parametrize("kernels", ["torch", "auto"])
def test_half_precision_steps_match_the_reference(kernels, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", kernels)
    neuron = ns.LIF(beta=0.9, threshold=0.3)  # 0.3 is not a half: rounding would show
    xs = _inputs(torch.float16, scale=0.5)
    with torch.no_grad():
        # "torch": the reference in half precision; otherwise an fp32 membrane
        wide = kernels != "torch"
        st = neuron.initial_state(xs[0].float() if wide else xs[0])
        for t, x in enumerate(xs):
            z_ref, st = _reference_step(x.float() if wide else x, st, neuron.params(), neuron.spec)
            z, kept = neuron.step(x)
            _assert_same_bits(z, z_ref.to(x.dtype), f"spikes, step {t}")
            for a, b in zip(kept, st):
                _assert_same_bits(a, b, f"state, step {t}")


@pytest.mark.parametrize("name", ["lif_learnable", "lif_per_neuron", "cuba_norse_learnable",
                                  "alif"])  # fmt: skip
def test_gradients_through_a_step_loop_match_the_reference(name):
    torch.manual_seed(0)
    ours, ref = VARIANTS[name](), VARIANTS[name]()
    xs = _inputs()
    w = torch.randn(T, B, N)
    x1, x2 = xs.clone().requires_grad_(), xs.clone().requires_grad_()
    loss = sum((ours.step(x1[t])[0] * w[t]).sum() for t in range(T))
    loss.backward()
    st = ref.initial_state(xs[0])
    loss_ref = 0
    for t in range(T):
        z, st = _reference_step(x2[t], st, ref.params(), ref.spec)
        loss_ref = loss_ref + (z * w[t]).sum()
    loss_ref.backward()
    _assert_same_bits(x1.grad, x2.grad, "input gradient")
    assert x1.grad.abs().sum() > 0
    for (n, a), (_, b) in zip(ours.named_parameters(), ref.named_parameters()):
        assert a.grad is not None and b.grad is not None, n
        _assert_same_bits(a.grad, b.grad, f"{n}.grad")


def test_learnable_beta_is_clamped_in_the_graph_on_every_step():
    lif = ns.LIF(beta=0.9, learn_beta=True)
    x = _inputs()[:20]
    for t in range(20):
        z, _ = lif.step(x[t])
        assert z.requires_grad  # the beta of this very step is in the graph
    z.sum().backward()
    assert lif.beta.grad is not None and lif.beta.grad != 0
    with torch.no_grad():
        lif.beta.fill_(1.7)  # out of range: the clamp must hold on the next step
    lif.reset()
    with torch.no_grad():
        z, st = lif.step(torch.full((1, 4), 0.3))
        z, st = lif.step(torch.full((1, 4), 0.3))
    assert torch.allclose(st.v, torch.full((1, 4), 0.6))  # beta 1, not 1.7


def _continue_like_fresh(lif, make_fresh, x_next):
    """The next step of ``lif`` equals a fresh module's from ``lif``'s kept state."""
    kept = NeuronState(*(s.clone() for s in lif.state))
    fresh = make_fresh()
    with torch.no_grad():
        z, st = lif.step(x_next)
        z_f, st_f = fresh.step(x_next, kept)
    _assert_same_bits(z, z_f, "spikes")
    for a, b in zip(st, st_f):
        _assert_same_bits(a, b, "state")
    return z


def _warm(lif, steps: int = 5):
    xs = _inputs()
    with torch.no_grad():
        for t in range(steps):
            lif.step(xs[t].to(lif.threshold.dtype))
    return xs[steps]


@pytest.mark.parametrize("learn", [False, True])
def test_in_place_parameter_edits_are_seen_by_the_next_step(learn):
    lif = ns.LIF(beta=0.9, threshold=1.0, learn_beta=learn, learn_threshold=learn)
    x = _warm(lif)
    with torch.no_grad():
        lif.beta.fill_(0.5)
        lif.threshold.fill_(0.4)
    z = _continue_like_fresh(lif, lambda: ns.LIF(beta=0.5, threshold=0.4), x)
    assert z.sum() > 0


@pytest.mark.parametrize("learn", [False, True])
def test_edits_through_data_are_seen_by_the_next_step(learn):
    # ``.data`` edits bump no version counter: nothing derived may be kept across steps
    lif = ns.LIF(beta=0.9, learn_beta=learn, learn_threshold=learn)
    x = _warm(lif)
    lif.beta.data.fill_(0.25)
    lif.threshold.data = torch.tensor(0.3)
    _continue_like_fresh(lif, lambda: ns.LIF(beta=0.25, threshold=0.3), x)


def test_threshold_data_of_another_dtype_is_seen():
    lif = ns.LIF(beta=0.9, learn_threshold=True)
    x = _warm(lif)
    lif.threshold.data = torch.tensor(0.7, dtype=torch.float64)  # same object, new dtype
    p = lif._step_params()
    assert p.gain.dtype == p.leak.dtype == torch.float64  # constants made like it again
    fresh = lif.params()
    for a, b in zip(p, fresh):
        assert a.dtype == b.dtype and torch.equal(a, b)
    _continue_like_fresh(
        lif, lambda: _with_threshold(ns.LIF(beta=0.9, learn_threshold=True),
                                     torch.tensor(0.7, dtype=torch.float64)), x)  # fmt: skip


def _with_threshold(lif, thr):
    lif.threshold.data = thr
    return lif


def test_assigned_and_reregistered_tensors_are_seen():
    lif = ns.LIF(beta=0.9)
    x = _warm(lif)
    lif.threshold = torch.tensor(0.35)  # a new buffer object
    _continue_like_fresh(lif, lambda: ns.LIF(beta=0.9, threshold=0.35), x)
    lif.beta = torch.nn.Parameter(torch.tensor(0.6))  # a buffer turned parameter
    _continue_like_fresh(lif, lambda: ns.LIF(beta=0.6, threshold=0.35, learn_beta=True), x)


def test_a_field_held_as_a_plain_attribute_is_seen():
    # ``del lif.beta; lif.beta = t`` leaves beta in the instance dict, which Python reads
    # before the parameter and buffer dicts the cache compares
    lif = ns.LIF(beta=0.9)
    del lif.beta
    lif.beta = torch.tensor(0.9)
    x = _warm(lif)
    lif.beta = torch.tensor(0.0)
    _continue_like_fresh(lif, lambda: ns.LIF(beta=0.0), x)


def test_a_plain_tensor_in_parameters_is_not_clamped_on_later_steps():
    # torch.func.functional_call puts plain tensors into _parameters; params() clamps a
    # beta only when it is an nn.Parameter, and the reused tuple must follow that rule
    lif = ns.LIF(beta=0.9, learn_beta=True)
    lif._parameters["beta"] = torch.tensor(1.5)
    _warm(lif)
    for _ in range(2):
        assert torch.equal(lif._step_params().beta, lif.params().beta)
    assert float(lif._step_params().beta) == 1.5


def test_to_dtype_is_seen():
    lif = ns.LIF(beta=0.9, threshold=0.8)
    _warm(lif)
    lif.double()
    assert lif.state.v.dtype == torch.float64
    x = _inputs(torch.float64)[7]
    _continue_like_fresh(lif, lambda: ns.LIF(beta=0.9, threshold=0.8).double(), x)
    assert lif._step_params().gain.dtype == torch.float64


@pytest.mark.parametrize("assign", [False, True])
def test_load_state_dict_is_seen(assign):
    lif = ns.ALIF(beta=0.9, adapt=0.2, rho=0.95, learn_beta=True)
    x = _warm(lif)
    other = ns.ALIF(beta=0.5, threshold=0.6, adapt=0.7, rho=0.5, learn_beta=True)
    lif.load_state_dict(other.state_dict(), assign=assign)
    _continue_like_fresh(
        lif, lambda: ns.ALIF(beta=0.5, threshold=0.6, adapt=0.7, rho=0.5, learn_beta=True), x)


def test_optimizer_steps_are_seen():
    lif = ns.LIF(beta=0.9, learn_beta=True, learn_threshold=True)
    opt = torch.optim.SGD(lif.parameters(), lr=0.5)
    xs = _inputs()
    for _ in range(2):
        lif.reset()
        loss = sum(lif.step(xs[t])[0].sum() for t in range(10))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(lif.beta.detach()) != pytest.approx(0.9)
    x = _warm(lif)

    def fresh():
        new = ns.LIF(learn_beta=True, learn_threshold=True)
        new.load_state_dict(lif.state_dict())
        return new

    _continue_like_fresh(lif, fresh, x)


def test_cuba_gain_edit_is_seen():
    cuba = ns.CubaLIF()
    x = _warm(cuba)
    cuba.gain.data.fill_(0.3)  # beta = 1 - gain is derived: made anew each step
    assert torch.equal(cuba._step_params().beta, cuba.params().beta)
    kept = NeuronState(*(s.clone() for s in cuba.state))
    with torch.no_grad():
        z, st = cuba.step(x)
        z_ref, st_ref = _reference_step(x, kept, cuba.params(), cuba.spec)
    _assert_same_bits(st.v, st_ref.v, "membrane")


def test_copies_and_pickles_step_like_the_original():
    lif = ns.ALIF(beta=0.9)
    x = _warm(lif)
    for clone in (copy.deepcopy(lif), pickle.loads(pickle.dumps(lif))):
        assert "_params_memo" not in clone.__dict__
        with torch.no_grad():
            clone.beta.fill_(0.3)  # the copy's own tensors
        kept = NeuronState(*(s.clone() for s in clone.state))
        with torch.no_grad():
            z, st = clone.step(x)
            z_ref, st_ref = _reference_step(x, kept, clone.params(), clone.spec)
        _assert_same_bits(st.v, st_ref.v, "membrane")
    assert float(lif.beta) == pytest.approx(0.9)


def test_a_params_override_is_honoured():
    class Leakier(ns.LIF):
        def params(self):
            return super().params()._replace(beta=self.beta * 0.5)

    lif = Leakier(beta=0.8)
    assert lif._step_params() is not lif._step_params()  # never reused
    with torch.no_grad():
        _, st = lif.step(torch.ones(1, 2) * 0.5)
        _, st = lif.step(torch.zeros(1, 2))
    assert torch.allclose(st.v, torch.full((1, 2), 0.2))  # beta 0.4
    plain = ns.LIF(beta=0.8)
    plain.params = lambda: ns.LIF.params(plain)._replace(beta=torch.tensor(0.0))
    with torch.no_grad():
        plain.step(torch.ones(1, 2) * 0.5)
        _, st = plain.step(torch.zeros(1, 2))
    assert torch.equal(st.v, torch.zeros(1, 2))


def test_a_parametrized_tensor_is_read_anew_each_step():
    from torch.nn.utils import parametrize

    class Doubled(torch.nn.Module):
        def forward(self, t):
            return 2 * t

    lif = ns.LIF(beta=0.9, threshold=0.5, learn_threshold=True)
    parametrize.register_parametrization(lif, "threshold", Doubled())  # a property now
    x = _warm(lif)
    with torch.no_grad():
        lif.parametrizations.threshold.original.fill_(0.2)
    _continue_like_fresh(lif, lambda: ns.LIF(beta=0.9, threshold=0.4), x)


def test_params_made_in_inference_mode_stay_there(monkeypatch):
    # constants made under inference mode are inference tensors (never shared): a tuple
    # holding them must not leave inference mode
    monkeypatch.setattr(_shared_tensors, "_KEPT", {})
    lif = ns.LIF(beta=0.9, learn_beta=True)
    with torch.inference_mode():
        lif.step(torch.rand(2, 4))
        assert lif._step_params().gain.is_inference()
    lif.reset()
    assert not any(q.is_inference() for q in lif._step_params())
    x = torch.rand(2, 4, requires_grad=True)
    lif.step(x)[0].sum().backward()
    assert lif.beta.grad is not None


def test_reused_params_equal_fresh_ones():
    for name, make in VARIANTS.items():
        neuron = make()
        first = neuron._step_params()
        again = neuron._step_params()
        fresh = neuron.params()
        for f, a, b in zip(NeuronParams._fields, again, fresh):
            assert a.dtype == b.dtype and torch.equal(a, b), (name, f)
        # module tensors and constants are the same objects; derived fields are new
        assert again.threshold is first.threshold, name


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_still_raises(bad):
    lif = ns.LIF()
    x = torch.rand(2, 8)
    lif.step(x)
    x[1, 3] = bad
    with pytest.raises(InputValueError, match=r"^input contains NaN or infinite values$"):
        lif.step(x)
    with pytest.raises(InputValueError, match="NaN or infinite"):
        lif.step(x.double())
    with pytest.raises(InputValueError, match="NaN or infinite"):
        lif(x[None])


@pytest.mark.parametrize("dtype, big", [(torch.float32, 3e38), (torch.float16, 6e4),
                                        (torch.bfloat16, 3e38)])  # fmt: skip
def test_a_sum_that_overflows_is_not_taken_for_inf(dtype, big):
    x = torch.full((2, 8), big, dtype=dtype)
    assert not torch.isfinite(x.sum())
    check_finite("input", x)  # every element is finite
    ns.LIF().step(x)
    x[0, 0] = float("nan")
    with pytest.raises(InputValueError, match="NaN or infinite"):
        check_finite("input", x)


def test_allow_inf_refuses_nan_only():
    x = torch.tensor([1.0, float("inf"), -float("inf")])  # a NaN sum without a NaN
    check_finite("x", x, allow_inf=True)
    with pytest.raises(InputValueError, match=r"^x contains NaN values$"):
        check_finite("x", torch.tensor([1.0, float("nan")]), allow_inf=True)
    check_finite("x", torch.tensor([1, 2, 3]))  # integers: always finite


def test_shape_and_device_errors_are_unchanged():
    lif = ns.LIF()
    lif.step(torch.rand(2, 8))
    with pytest.raises(ShapeError, match=r"state\.v has shape \(2, 8\).*reset\(\)"):
        lif.step(torch.rand(3, 8))
    lif.state = NeuronState(*(s.to("meta") for s in lif.state))
    with pytest.raises(DeviceError, match="state.v is on meta but the input is on cpu"):
        lif.step(torch.rand(2, 8))
    lif.state = (torch.zeros(2, 8),) * 4  # a plain 4-tuple is taken as a NeuronState
    z, st = lif.step(torch.rand(2, 8))
    assert isinstance(st, NeuronState)
    lif.state = (torch.zeros(2, 8), None, None, None)
    with pytest.raises(AttributeError):
        lif.step(torch.rand(2, 8))
    with pytest.raises(ShapeError, match="state must be a NeuronState"):
        lif.step(torch.rand(2, 8), [torch.zeros(2, 8)])
    with pytest.raises(DeviceError, match="LIF is on cpu but its input is on meta"):
        ns.LIF().step(torch.rand(2, 8, device="meta"))
    with pytest.raises(ShapeError, match="one time step"):
        ns.LIF().step(torch.rand(()))
    lif.reset()
    assert lif.state is None
    assert lif.step(torch.rand(5, 8))[0].shape == (5, 8)


def test_reset_and_kept_state_attribute():
    lif = ns.LIF()
    z, st = lif.step(torch.rand(2, 8))
    assert lif.state is st and "state" in lif.__dict__
    lif.reset()
    assert lif.state is None
    assert "state" not in lif._buffers and "state" not in lif._parameters


def test_a_surrogate_with_its_own_call_is_used_without_grad():
    class Doubled(FastSigmoid):
        def __call__(self, x):
            return 2 * super().__call__(x)

    lif = ns.LIF(beta=0.9, surrogate=Doubled(), reset="none")
    with torch.no_grad():
        z, _ = lif.step(torch.full((1, 3), 2.0))
    assert torch.equal(z, torch.full((1, 3), 2.0))


def test_transforms_still_meet_the_surrogate_function():
    # forward-mode AD and functorch transforms reach the autograd Function, which refuses
    # them, as before (the direct Heaviside is only for plain or no-grad calls)
    lif = ns.LIF()
    x = torch.rand(2, 4) * 2
    s, p = lif.initial_state(x), lif.params()
    import torch.autograd.forward_ad as fwad

    with torch.no_grad(), fwad.dual_level():
        with pytest.raises(NotImplementedError, match="jvp"):
            neuron_step(fwad.make_dual(x, torch.ones_like(x)), s, p, lif.spec)
    with torch.no_grad(), pytest.raises(RuntimeError, match="setup_context"):
        row = NeuronState(*(t[0] for t in s))
        torch.func.vmap(lambda xx: neuron_step(xx, row, p, lif.spec)[0])(x)
