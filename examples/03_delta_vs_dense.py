# %% [markdown]
# # Delta layers vs dense on a DVS-gesture-like task: sparsity and energy
#
# A recurrent classifier (Linear → ReLU → GRU → Linear) learns the direction of moving
# bars from DVS event frames (`SyntheticDVS`: a gesture-like motion task on a 32x32
# sensor). `to_delta` turns the trained network into delta layers (`DeltaLinear`,
# `DeltaGRU`): each layer sends only the changes of its input that exceed a threshold
# and updates its output from those deltas. A short refinement with the delta penalty
# (`refine_for_sparsity`) makes the deltas sparser at almost no cost in accuracy. The
# energy meter then compares what both networks really compute.
#
#     python examples/03_delta_vs_dense.py [--threshold 0.5] [--quick]

# %%
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from _common import parse_args, write_summary
from torch import nn

import neurosparse as ns
from neurosparse import viz

try:
    from neurosparse.layers import refine_for_sparsity, temporal_sparsity, to_delta
except ImportError:  # neurosparse.layers does not re-export them yet
    from neurosparse.layers.delta_penalty import temporal_sparsity
    from neurosparse.layers.delta_refine import refine_for_sparsity, to_delta


def add_flags(p):
    p.add_argument("--threshold", type=float, default=0.5, help="delta threshold θ")
    p.add_argument("--penalty", type=float, default=0.05, help="λ of the delta penalty")
    p.add_argument("--hardware", default="loihi,cpu-45nm:event,cpu-45nm:dense")


args = parse_args("03_delta_vs_dense", __doc__ or "Delta vs dense", add_flags)
torch.manual_seed(args.seed)
hardware = args.hardware.split(",")

# %% [markdown]
# ## Data: decaying event frames `[T, B, 2, 32, 32]`
# Event counts in 20 bins of 5 ms, each frame adding to the decayed previous one
# (`x_t = d·x_{t-1} + counts_t`): a graded picture of where the bar has recently been,
# like the accumulated frames and time surfaces gesture models take. It is mostly
# non-zero, so skipping zeros saves little, but it changes slowly, so deltas are rare.

# %%
frames = ns.data.ToSpikeTensor(sensor_size=(32, 32, 2), dt_us=5000, n_time_bins=20,
                               binary=False, start_time=0)


def decaying(x, d=0.8):
    out, acc = torch.empty_like(x), torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        acc = d * acc + x[t]
        out[t] = acc
    return out


def dataset(n, seed):
    x, y = ns.data.pad_time(list(ns.data.SyntheticDVS(n, 8, seed=seed, transform=frames)))
    return decaying(x), y


n_train, n_test = (512, 256) if args.quick else (3072, 1024)
x_train, y_train = dataset(n_train, args.seed)
x_test, y_test = dataset(n_test, args.seed + 1)
print(f"train {tuple(x_train.shape)}, test {tuple(x_test.shape)}; "
      f"{(x_train > 0).float().mean():.1%} of input entries non-zero")

# %% [markdown]
# ## The dense network, trained as usual

# %%
class GestureNet(nn.Module):
    """[T, B, 2, H, W] -> class logits per step [T, B, classes]."""

    def __init__(self, n_in=2 * 32 * 32, hidden=128, state=64, classes=8):
        super().__init__()
        self.fc = nn.Linear(n_in, hidden)
        self.act = nn.ReLU()
        self.rnn = nn.GRU(hidden, state)
        self.head = nn.Linear(state, classes)

    def forward(self, x):
        h = self.act(self.fc(x.flatten(2)))
        h, _ = self.rnn(h)
        return self.head(h)


def loss_fn(logits, y):
    return nn.functional.cross_entropy(logits.mean(0), y)


def batches(x, y, size=32, gen=None):
    order = torch.randperm(y.shape[0], generator=gen)
    return [(x[:, order[k:k + size]], y[order[k:k + size]]) for k in range(0, len(order), size)]


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return (model(x).mean(0).argmax(1) == y).float().mean().item()


gen = torch.Generator().manual_seed(args.seed)
dense = GestureNet()
opt = torch.optim.Adam(dense.parameters(), lr=2e-3)
epochs = 3 if args.quick else 8
t0 = time.perf_counter()
for _ in range(epochs):
    dense.train()
    for xb, yb in batches(x_train, y_train, gen=gen):
        loss = loss_fn(dense(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
acc_dense = accuracy(dense, x_test, y_test)
print(f"dense: test accuracy {acc_dense:.1%} after {epochs} epochs "
      f"({time.perf_counter() - t0:.0f} s); chance 12.5%")

# %% [markdown]
# ## To delta layers
# With θ = 0 every change is sent and the delta network computes the dense function
# (checked). With θ > 0 small changes wait until they add up past θ; refining with the
# delta penalty teaches the network to change its activations less often.

# %%
exact = to_delta(dense, threshold=0.0)
with torch.no_grad():
    gap = (exact(x_test[:, :64]) - dense(x_test[:, :64])).abs().max().item()
print(f"θ = 0: largest difference to the dense network {gap:.2e}")
assert gap < 1e-4

delta = to_delta(dense, threshold=args.threshold)
acc_before = accuracy(delta, x_test, y_test)
refine_epochs = 1 if args.quick else 3
history = refine_for_sparsity(delta, batches(x_train, y_train, gen=gen), loss_fn,
                              penalty=args.penalty, epochs=refine_epochs, lr=5e-4)
acc_delta = accuracy(delta, x_test, y_test)
print(f"θ = {args.threshold}: test accuracy {acc_before:.1%} before refinement, "
      f"{acc_delta:.1%} after {refine_epochs} epoch(s)")
with torch.no_grad():
    delta(x_test[:, :128])
sparsity = temporal_sparsity(delta)
print("temporal sparsity per layer (fraction of deltas not sent):",
      ", ".join(f"{k} {v:.1%}" for k, v in sparsity.items()))

# %% [markdown]
# ## What each network computes, and what it costs
# The delta layers count their own operations exactly (one multiply-accumulate per
# delta sent and output it drives); the dense layers are counted from their inputs.
# `cpu-45nm:event` charges only the operations an event-driven processor would do,
# `cpu-45nm:dense` every multiply-accumulate, `loihi` its own per-event costs.

# %%
reports = {}
for name, model in (("dense", dense), ("delta", delta)):
    model.eval()
    with ns.energy.Meter(model) as meter, torch.no_grad():
        model(x_test[:, :64])
    reports[name] = meter.report(hardware=hardware)
    reports[name].to_markdown(args.out / f"{name}_energy.md")
    print(f"--- {name}\n{reports[name]}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), layout="constrained")
viz.energy_per_layer(reports["dense"], ax=axes[0], title="Dense: energy per layer")
viz.energy_per_layer(reports["delta"], ax=axes[1], title="Delta: energy per layer")
axes[1].set_ylim(axes[0].get_ylim())
# per step: the zeros each dense layer could skip, and the deltas each delta layer did
# not send (the streams of the delta layers' last call); inputs of rnn.hidden = h_{t-1}
with torch.no_grad():
    _, acts = viz.record_spikes(dense, x_test[:, :64],
                                select=lambda m: isinstance(m, (nn.ReLU, nn.GRU)))
    delta(x_test[:, :64])
dense_inputs = {"fc.input": x_test[:, :64], "rnn.input": acts["act"],
                "rnn.hidden": acts["rnn"], "head.input": acts["rnn"]}
deltas = {f"{name}.{stream}": st.delta.detach() for name, m in delta.named_modules()
          if hasattr(m, "delta_streams") for stream, st in m.delta_streams().items()}
viz.sparsity_over_time(dense_inputs, ax=axes[2], label="dense, zeros")
viz.sparsity_over_time(deltas, ax=axes[2], label="delta, not sent")
streams = list(dense_inputs)
for line in axes[2].lines:  # one colour per stream, dashed for the dense network
    line.set_color(f"C{streams.index(line.get_label().split(': ')[-1]) % 10}")
    line.set_linestyle("--" if line.get_label().startswith("dense") else "-")
axes[2].set_title("Sparsity of each layer's input over time")
axes[2].legend(fontsize=6, ncol=2)
fig.savefig(args.out / "delta_vs_dense.png", dpi=100)

macs = {k: r.totals["macs"] + r.totals["synops"] for k, r in reports.items()}
dense_macs = reports["dense"].totals["dense_macs"]
energy = {k: {h.name: h.energy_j for h in r.hardware} for k, r in reports.items()}
print(f"operations per inference: dense network {dense_macs:.3g} MACs executed densely, "
      f"{macs['dense']:.3g} on non-zero inputs; delta network {macs['delta']:.3g} "
      f"({dense_macs / max(macs['delta'], 1):.1f}x fewer than dense)")
for hw in energy["dense"]:
    ratio = energy["dense"][hw] / energy["delta"][hw]
    print(f"  {hw}: dense {energy['dense'][hw]:.3g} J, delta {energy['delta'][hw]:.3g} J "
          f"({ratio:.2f}x)")

# %%
# measured (--quick, seed 0, 2 CPU cores): dense ~0.9, delta after refinement ~0.9
assert acc_dense > 0.5 and acc_delta > 0.5, (acc_dense, acc_delta)
assert macs["delta"] < dense_macs
write_summary(args.out, dense_accuracy=acc_dense, delta_accuracy_before=acc_before,
              delta_accuracy=acc_delta, threshold=args.threshold, penalty=args.penalty,
              temporal_sparsity=sparsity, refine_history=history, dense_macs=dense_macs,
              effective_ops=macs, energy_j=energy)
