"""One device rule for every module: an input on another device than the module raises
DeviceError (as torch's layers refuse), and step-mode state follows .to() like a buffer.

This machine has no GPU: the ``meta`` device stands in for a second device (a module
moved there and a CPU input, or the reverse, is exactly the .cuda()-module / CPU-input
mismatch), and dtype conversions stand in for moves of the kept state."""

import pytest
import torch

import neurosparse as ns
from neurosparse.errors import DeviceError
from neurosparse.layers import sparse_event_linear
from neurosparse.sdr import DendriticLinear, KWinners


def _modules():
    return {
        "LIF": (lambda: ns.LIF(), (4, 2, 6)),
        "ALIF": (lambda: ns.ALIF(), (4, 2, 6)),
        "CubaLIF": (lambda: ns.CubaLIF(), (4, 2, 6)),
        "EventLinear": (lambda: ns.EventLinear(6, 3), (4, 2, 6)),
        "SparseEventLinear": (lambda: ns.SparseEventLinear(6, 3, density=0.5), (4, 2, 6)),
        "EventConv2d": (lambda: ns.EventConv2d(1, 2, 3, padding=1), (4, 2, 1, 5, 5)),
        "DeltaEncoder": (lambda: ns.DeltaEncoder(0.1), (4, 2, 6)),
        "DeltaLinear": (lambda: ns.DeltaLinear(6, 3), (4, 2, 6)),
        "DeltaConv2d": (lambda: ns.DeltaConv2d(1, 2, 3, padding=1), (4, 2, 1, 5, 5)),
        "DeltaGRU": (lambda: ns.DeltaGRU(6, 3), (4, 2, 6)),
        "DeltaLSTM": (lambda: ns.DeltaLSTM(6, 3), (4, 2, 6)),
        "KWinners": (lambda: KWinners(6, k=2), (4, 2, 6)),
    }


@pytest.mark.parametrize("name", sorted(_modules()))
@pytest.mark.parametrize("where", ["module_moved", "input_moved"])
def test_input_on_another_device_raises_device_error(name, where):
    make, shape = _modules()[name]
    module, x = make(), torch.rand(shape)
    if where == "module_moved":
        module = module.to("meta")
    else:
        x = x.to("meta")
    with pytest.raises(DeviceError, match="meta"):
        module(x)


def test_dendritic_linear_and_step_modes_check_devices_too():
    d = DendriticLinear(6, 3, num_segments=2, context_dim=4).to("meta")
    with pytest.raises(DeviceError):
        d(torch.rand(2, 6), torch.rand(2, 4))
    for module, x in [(ns.LIF().to("meta"), torch.rand(2, 6)),
                      (ns.DeltaLinear(6, 3).to("meta"), torch.rand(2, 6))]:  # fmt: skip
        with pytest.raises(DeviceError):
            module.step(x)
    lif = ns.LIF()
    st = lif.initial_state(torch.rand(2, 6))
    with pytest.raises(DeviceError, match="state.v"):
        lif.step(torch.rand(2, 6), st._replace(v=st.v.to("meta")))


def test_functional_sparse_event_linear_refuses_mixed_devices():
    layer = ns.SparseEventLinear(6, 3, density=0.5)
    with pytest.raises(DeviceError, match="input"):
        sparse_event_linear(
            torch.rand(2, 6, device="meta"), layer.indices, layer.values, None, 6)


@pytest.mark.parametrize("name", ["LIF", "ALIF", "CubaLIF", "DeltaEncoder", "DeltaLinear",
                                  "DeltaConv2d", "DeltaGRU", "DeltaLSTM"])  # fmt: skip
def test_step_state_follows_to(name):
    make, shape = _modules()[name]
    torch.manual_seed(0)
    m32, xs = make(), torch.rand(shape) * 2
    m64 = make()
    m64.load_state_dict(m32.state_dict())
    m32.step(xs[0])
    m32.double()  # the kept state must follow, as a buffer would
    state = m32.state
    tensors = [t for t in (state if isinstance(state, tuple) else [state])
               if isinstance(t, torch.Tensor)]  # fmt: skip
    assert tensors and all(t.dtype == torch.float64 for t in tensors)
    out = m32.step(xs[1].double())  # no dtype clash between the input and the kept state
    out = out[0] if isinstance(out, tuple) else out
    # the same two steps of a float64 copy from the start (float32 first step, rounded)
    m64.step(xs[0])
    m64.double()
    ref = m64.step(xs[1].double())
    ref = ref[0] if isinstance(ref, tuple) else ref
    assert out.dtype == torch.float64 and torch.equal(out, ref)
    m32.to("meta")
    assert all(t.is_meta for t in m32.state if isinstance(t, torch.Tensor))
    m32.reset()
    assert m32.state is None
