# %% [markdown]
# # Train an event-driven SNN on N-MNIST, then report its energy and latency
#
# A two-layer spiking network (`EventLinear` → LIF → `EventLinear` → LIF) learns digits
# from DVS recordings with surrogate gradients; `ns.energy.Meter` then counts what it
# really did on the test set and estimates energy and latency on neuromorphic chips,
# a GPU and a CPU.
#
# Data, picked by `--data` (default `auto`: the first that is there):
# - `nmnist`: the full N-MNIST at `--root` (the original `Train/`, `Test/` folders or
#   Tonic's `NMNIST/` layout; nothing is downloaded);
# - `shared`: the 10 + 4 real N-MNIST recordings in `../shared/data/dvs/nmnist` (enough to
#   run the pipeline on real events; far too few for a meaningful test accuracy);
# - `synthetic`: `SyntheticDVS` bars moving in 10 directions on the same 34x34 sensor.
#
#     python examples/02_nmnist_energy.py --data nmnist --root ~/data/NMNIST
#     python examples/02_nmnist_energy.py --data synthetic --quick

# %%
import time

import matplotlib

matplotlib.use("Agg")
import torch
from _common import SHARED_DVS, event_linear_class, parse_args, write_summary
from torch import nn

import neurosparse as ns
from neurosparse import viz


def add_flags(p):
    p.add_argument("--data", choices=["auto", "nmnist", "shared", "synthetic"], default="auto")
    p.add_argument("--root", default=None, help="N-MNIST folder (for --data nmnist)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--train-samples", type=int, default=None, help="N-MNIST subset size")
    p.add_argument("--hardware", default="loihi,speck,gpu-a100-fp16,cpu-45nm")


args = parse_args("02_nmnist_energy", __doc__ or "N-MNIST", add_flags)
torch.manual_seed(args.seed)
if args.data == "auto":
    args.data = ("nmnist" if args.root else
                 "shared" if (SHARED_DVS / "nmnist").is_dir() else "synthetic")
SENSOR = (34, 34, 2)

# %% [markdown]
# ## Data → spike tensors `[T, B, 2, 34, 34]`
# N-MNIST recordings last ~300 ms (three saccades): 30 bins of 10 ms. The synthetic bars
# last 100 ms: 20 bins of 5 ms. `pad_time` stacks samples time-first.

# %%
def as_tensors(dataset, n=None):
    n = len(dataset) if n is None else min(n, len(dataset))
    # an even stride over the dataset keeps all classes in a subset (folders are sorted)
    idx = torch.linspace(0, len(dataset) - 1, n).round().long().unique()
    x, y = ns.data.pad_time([dataset[int(i)] for i in idx])
    return x.bool(), y  # spikes are 0/1: a quarter of the memory; .float() per batch


if args.data == "synthetic":
    to_spikes = ns.data.ToSpikeTensor(sensor_size=SENSOR, dt_us=5000, n_time_bins=20,
                                      start_time=0)
    n_train, n_test = (320, 160) if args.quick else (3000, 1000)
    make = lambda n, seed: ns.data.SyntheticDVS(n, 10, SENSOR, 100_000, seed=seed,  # noqa: E731
                                                transform=to_spikes)
    x_train, y_train = as_tensors(make(n_train, args.seed))
    x_test, y_test = as_tensors(make(n_test, args.seed + 1000))
else:
    root = args.root if args.data == "nmnist" else SHARED_DVS / "nmnist"
    to_spikes = ns.data.ToSpikeTensor(dt_us=10_000, n_time_bins=30)
    n_train = args.train_samples or (300 if args.quick else 3000)
    x_train, y_train = as_tensors(ns.data.NMNIST(root, True, transform=to_spikes), n_train)
    x_test, y_test = as_tensors(ns.data.NMNIST(root, False, transform=to_spikes), n_train // 3)
print(f"data: {args.data}; train {tuple(x_train.shape)}, test {tuple(x_test.shape)} "
      f"[T, B, C, H, W]; input spike rate {x_train.float().mean():.4f}")

# %% [markdown]
# ## The network
# `EventLinear` is `nn.Linear` whose cost follows the number of input spikes (it sums
# the weight columns of the inputs that spiked); the LIF neurons learn through a
# fast-sigmoid surrogate gradient.

# %%
Linear = event_linear_class()
hidden = 128
model = ns.Sequential(
    nn.Flatten(start_dim=2),
    Linear(2 * 34 * 34, hidden),
    ns.LIF(beta=0.9, threshold=1.0, surrogate=ns.surrogate.FastSigmoid(10.0)),
    Linear(hidden, 10),
    ns.LIF(beta=0.9, threshold=1.0, surrogate=ns.surrogate.FastSigmoid(10.0)),
)
print(model)

# %% [markdown]
# ## Training: cross-entropy on output spike counts
# The shared set has one recording per digit; random shifts of up to 3 pixels give the
# network more than ten pictures to learn from.

# %%
def shift(x, gen, max_px=3):
    dx, dy = torch.randint(-max_px, max_px + 1, (2,), generator=gen).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


@torch.no_grad()
def accuracy(x, y, batch=128):
    model.eval()
    hits = sum((model(x[:, k:k + batch].float())[0].sum(0).argmax(1) == y[k:k + batch]).sum().item()
               for k in range(0, y.shape[0], batch))
    return hits / y.shape[0]


epochs = args.epochs or {"synthetic": 4 if args.quick else 6, "shared": 30 if args.quick else 60,
                         "nmnist": 2 if args.quick else 5}[args.data]
batch = 16 if args.data == "shared" else 32
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
gen = torch.Generator().manual_seed(args.seed)
t0 = time.perf_counter()
for epoch in range(epochs):
    model.train()
    order = torch.randperm(y_train.shape[0], generator=gen)
    for k in range(0, len(order), batch):
        idx = order[k:k + batch]
        xb = x_train[:, idx].float()
        if args.data == "shared":
            xb = shift(xb, gen)
        out, _ = model(xb)
        loss = nn.functional.cross_entropy(out.sum(0), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    if epoch == epochs - 1 or epoch % max(1, epochs // 5) == 0:
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}")
train_s = time.perf_counter() - t0
train_acc, test_acc = accuracy(x_train, y_train), accuracy(x_test, y_test)
print(f"trained in {train_s:.0f} s; accuracy train {train_acc:.1%}, test {test_acc:.1%} "
      f"on {y_test.shape[0]} recordings (chance 10%)")
if args.data == "shared":
    print("(4 test recordings: the number says the pipeline runs, not how well it generalises; "
          "use --data nmnist --root PATH for the real benchmark)")

# %% [markdown]
# ## Energy and latency
# Inside `with ns.energy.Meter(model)` every layer records what it did: synaptic
# operations from the real input events, neuron updates, spikes, memory traffic. The
# report turns the counts into energy and latency per inference with each hardware
# profile's cited constants (see the hardware-profile pages of the docs).

# %%
n_meter = min(64, y_test.shape[0])
model.eval()
with ns.energy.Meter(model) as meter:
    _, spikes = viz.record_spikes(model, x_test[:, :n_meter].float())
report = meter.report(hardware=args.hardware.split(","))
print(report)
report.to_markdown(args.out / "energy.md")
report.to_json(args.out / "energy.json")
viz.energy_per_layer(report).figure.savefig(args.out / "energy_per_layer.png", dpi=100)
viz.sparsity_over_time(spikes).figure.savefig(args.out / "sparsity.png", dpi=100)
viz.raster(spikes["2"], title="Hidden layer spikes, test sample 0").figure.savefig(
    args.out / "hidden_raster.png", dpi=100)
best = min(report.hardware, key=lambda r: r.energy_j)
print(f"lowest energy: {best.name} {best.energy_j:.3g} J per inference, "
      f"latency {best.latency_s:.3g} s; written {args.out / 'energy.md'}")

# %% [markdown]
# `Report.plot` saves the energy bars and the sparsity over time side by side in one file.

# %%
report.plot(args.out / "energy_report.png")
write_summary(args.out, data=args.data, layer=Linear.__name__, epochs=epochs,
              train_samples=int(y_train.shape[0]), test_samples=int(y_test.shape[0]),
              train_accuracy=train_acc, test_accuracy=test_acc, train_seconds=train_s,
              activation_sparsity=report.activation_sparsity,
              energy_j={r.name: r.energy_j for r in report.hardware},
              latency_s={r.name: r.latency_s for r in report.hardware},
              report=str(args.out / "energy.md"))
chance = 0.1
# the results are written first: a check below that fails leaves them to look at
if args.data == "synthetic":
    # measured (synthetic, --quick, seeds 0-2): 0.67-0.87 test accuracy; full run higher
    assert test_acc > 3 * chance, f"test accuracy {test_acc:.2f} is near chance"
elif args.data == "shared":
    assert train_acc >= 0.5, f"the network did not learn the 10 shared recordings ({train_acc})"
elif test_acc <= 3 * chance:  # your own folder: how much it holds decides what is learnt
    print(f"note: test accuracy {test_acc:.2f} is near chance ({chance}) with "
          f"{int(y_train.shape[0])} training recordings and {epochs} epochs")
