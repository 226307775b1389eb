# %% [markdown]
# # Bring your own snnTorch or Norse model
#
# You have a spiking network written with snnTorch or Norse. `ns.interop` converts it
# into a neurosparse model with the same weights and the **same spikes**
# (SpikingJelly's multi-step nets convert the same way, `ns.interop.from_spikingjelly`);
# its linear layers can then run event-driven (`EventLinear`: work per input spike), the
# energy meter reports what it costs on neuromorphic hardware, and NIR carries it to
# hardware toolchains.
#
#     python examples/05_bring_your_model.py [--quick]
#         [--framework snntorch|snntorch-conv|norse|all]

# %%
import matplotlib

matplotlib.use("Agg")
import norse.torch as norse
import snntorch as snn
import torch
from _common import event_linear_class, parse_args, write_summary
from snntorch import utils as snn_utils
from torch import nn

import neurosparse as ns
from neurosparse import viz


def add_flags(p):
    p.add_argument("--framework", choices=["snntorch", "snntorch-conv", "norse", "all"],
                   default="all")
    p.add_argument("--hardware", default="loihi,speck,gpu-a100-fp16,cpu-45nm")


args = parse_args("05_bring_your_model", __doc__ or "BYO model", add_flags)
torch.manual_seed(args.seed)
hardware = args.hardware.split(",")

# %% [markdown]
# ## Data: DVS-like recordings, `[T, B, 2, 32, 32]`

# %%
to_spikes = ns.data.ToSpikeTensor(sensor_size=(32, 32, 2), dt_us=5000, n_time_bins=20,
                                  start_time=0)
n_train = 256 if args.quick else 2048
x_train, y_train = ns.data.pad_time(
    list(ns.data.SyntheticDVS(n_train, 8, seed=args.seed, transform=to_spikes)))
x_test, y_test = ns.data.pad_time(
    list(ns.data.SyntheticDVS(128, 8, seed=args.seed + 1, transform=to_spikes)))
T = x_train.shape[0]

# %% [markdown]
# ## Your models, written and trained the way each library does it
# snnTorch: `init_hidden=True` neurons in an `nn.Sequential`, stepped in a Python loop;
# an MLP, and the convolutional net of snnTorch's tutorial 7 (its N-MNIST CSNN; on our
# 32x32 sensor the feature maps are 5x5 after two conv + pool blocks, as on N-MNIST's
# 34x34; beta 0.9 instead of the tutorial's 0.5). Norse: a `SequentialState` that
# threads the neuron states, stepped the same way.

# %%
def snntorch_model():
    grad = snn.surrogate.fast_sigmoid(slope=10)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(2 * 32 * 32, 128),
        snn.Leaky(beta=0.9, spike_grad=grad, init_hidden=True),
        nn.Linear(128, 8),
        snn.Leaky(beta=0.9, spike_grad=grad, init_hidden=True, output=True),
    )


def snntorch_conv_model():
    grad = snn.surrogate.atan()
    return nn.Sequential(
        nn.Conv2d(2, 12, 5), nn.MaxPool2d(2),
        snn.Leaky(beta=0.9, spike_grad=grad, init_hidden=True),
        nn.Conv2d(12, 32, 5), nn.MaxPool2d(2),
        snn.Leaky(beta=0.9, spike_grad=grad, init_hidden=True),
        nn.Flatten(), nn.Linear(32 * 5 * 5, 8),
        snn.Leaky(beta=0.9, spike_grad=grad, init_hidden=True, output=True),
    )


def norse_model():
    return norse.SequentialState(
        nn.Flatten(), nn.Linear(2 * 32 * 32, 128), norse.LIFCell(),
        nn.Linear(128, 8), norse.LIFCell(),
    )


def run_snntorch(net, x):
    """Step an snnTorch net over x [T, B, ...]; output spikes [T, B, classes]."""
    snn_utils.reset(net)
    return torch.stack([net(x[t])[0] for t in range(x.shape[0])])


def run_norse(net, x):
    state, out = None, []
    for t in range(x.shape[0]):
        z, state = net(x[t], state)
        out.append(z)
    return torch.stack(out)


def train(net, run, epochs):
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(epochs):
        for k in range(0, n_train, 32):
            out = run(net, x_train[:, k:k + 32])
            loss = nn.functional.cross_entropy(out.sum(0), y_train[k:k + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return (run(net, x_test).sum(0).argmax(1) == y_test).float().mean().item()


frameworks = (["snntorch", "snntorch-conv", "norse"] if args.framework == "all"
              else [args.framework])
build = {"snntorch": (snntorch_model, run_snntorch, ns.interop.from_snntorch),
         "snntorch-conv": (snntorch_conv_model, run_snntorch, ns.interop.from_snntorch),
         "norse": (norse_model, run_norse, ns.interop.from_norse)}
epochs = 1 if args.quick else 3
results = {}

# %% [markdown]
# ## Convert, check, run event-driven, meter, export
# 1. `from_snntorch` / `from_norse`: a `ns.Sequential` on `[T, B, ...]` sharing the weights;
# 2. the same spikes as stepping the original (checked below, every spike);
# 3. `EventLinear.from_dense` swaps each `nn.Linear` for its event-driven twin;
# 4. `ns.energy.Meter` counts the original (stepped, `layout="B"`) and the converted
#    model: the counts agree, and the report gives energy and latency per hardware;
# 5. `to_nir` / `from_nir`: a NIR graph for hardware toolchains, imported back unchanged
#    (the conv model stays out: NIR has no max pooling).
#
# Conv2d and pooling, which snnTorch applies to each step's `[B, C, H, W]`, are applied
# to all `T x B` samples at once after conversion (`PerStep` in the printed model).

# %%
EventLinear = event_linear_class()
for fw in frameworks:
    make, run, convert = build[fw]
    net = make()
    acc = train(net, run, epochs)
    with torch.no_grad():
        ref = run(net, x_test)
    ours = convert(net)
    with torch.no_grad():
        out, _ = ours(x_test)
    same = torch.equal(out, ref)
    print(f"{fw}: test accuracy {acc:.1%}; converted model gives the same spikes: {same}")
    assert same, f"{fw}: converted spikes differ"

    if EventLinear is not nn.Linear:
        for i, m in enumerate(ours):
            if isinstance(m, nn.Linear):
                ours[i] = EventLinear.from_dense(m)
        with torch.no_grad():
            agree = (ours(x_test)[0] == ref).float().mean().item()
        print(f"  event-driven ({EventLinear.__name__}): spikes agree on {agree:.4%} of entries")
    else:
        agree = None
        print("  EventLinear is not available in this neurosparse: linear layers stay dense")

    # the original, stepped as its library does: the meter sees one step per call
    with ns.energy.Meter(net, layout="B") as m_ref, torch.no_grad():
        run(net, x_test)
    with ns.energy.Meter(ours) as m_ours, torch.no_grad():
        _, spikes = viz.record_spikes(ours, x_test)
    rep_ref, report = m_ref.report(hardware=hardware), m_ours.report(hardware=hardware)
    syn_ref, syn_ours = rep_ref.totals["synops"], report.totals["synops"]
    print(f"  synaptic ops per inference: original {syn_ref:.4g}, converted {syn_ours:.4g}")
    assert abs(syn_ref - syn_ours) <= 1e-6 * max(syn_ref, 1.0), "meters disagree"
    print(report)
    report.to_markdown(args.out / f"{fw}_energy.md")
    viz.energy_per_layer(report, title=f"{fw} model: energy per layer").figure.savefig(
        args.out / f"{fw}_energy.png", dpi=100)
    viz.sparsity_over_time(spikes, title=f"{fw} model: sparsity").figure.savefig(
        args.out / f"{fw}_sparsity.png", dpi=100)

    if fw == "snntorch-conv":
        print(ours)
        results[fw] = {"test_accuracy": acc, "same_spikes": same, "event_agreement": agree,
                       "synops": syn_ours, "nir_roundtrip": None,
                       "energy_j": {r.name: r.energy_j for r in report.hardware},
                       "latency_s": {r.name: r.latency_s for r in report.hardware}}
        continue
    dense = ns.Sequential(*[m.to_dense() if hasattr(m, "to_dense") else m for m in ours])
    graph = ns.interop.to_nir(dense, sample_shape=tuple(x_test.shape[2:]))
    back = ns.interop.from_nir(graph)
    with torch.no_grad():
        nir_same = torch.equal(back(x_test)[0], ref)
    kinds = ", ".join(type(n).__name__ for n in graph.nodes.values())
    print(f"  NIR graph ({kinds}); imported back it gives the same spikes: {nir_same}")
    assert nir_same
    results[fw] = {"test_accuracy": acc, "same_spikes": same, "event_agreement": agree,
                   "synops": syn_ours, "nir_roundtrip": nir_same,
                   "energy_j": {r.name: r.energy_j for r in report.hardware},
                   "latency_s": {r.name: r.latency_s for r in report.hardware}}

# %%
write_summary(args.out, layer=EventLinear.__name__, frameworks=results)
