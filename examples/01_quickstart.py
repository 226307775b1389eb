# %% [markdown]
# # Quickstart: events from a file → raster / animation → spike tensor
#
# Read a DVS recording, look at it (event raster, event-frame animation), bin it into a
# time-first spike tensor and drive a layer of LIF neurons with it.
#
# Data: a file you name with `--file` (any format `ns.data.read_events` knows), else a
# real N-MNIST recording from `../shared/data/dvs` when that folder exists, else a
# recording `ns.data.SyntheticDVS` generates.
#
#     python examples/01_quickstart.py [--file REC.bin] [--quick]

# %%
import matplotlib

matplotlib.use("Agg")  # files only; drop this line in a notebook to see figures inline
import torch
from _common import SHARED_DVS, parse_args, recording_flags, write_summary

import neurosparse as ns
from neurosparse import viz

args = parse_args("01_quickstart", __doc__ or "Quickstart", recording_flags)
torch.manual_seed(args.seed)

# %% [markdown]
# ## 1. Read the events
# Readers return an `EventArray`: a NumPy structured array with fields `t` (µs), `x`,
# `y`, `p` (Tonic's layout, so Tonic's transforms work on it) and the sensor size.

# %%
sample = SHARED_DVS / "nmnist" / "Test" / "0" / "00004.bin"
if args.file is not None:
    size = None if args.sensor_size is None else (*args.sensor_size, 2)
    events, source = ns.data.read_events(args.file, sensor_size=size), str(args.file)
elif sample.exists():
    # N-MNIST files carry no header: the sensor size is the dataset's
    events = ns.data.read_events(sample, sensor_size=(34, 34, 2))
    source = f"N-MNIST test recording {sample.name}"
else:
    events = ns.data.SyntheticDVS(1, n_classes=8, sensor_size=(34, 34, 2), seed=args.seed).events(0)
    source = "SyntheticDVS (generated)"
if len(events) == 0:
    raise SystemExit(f"{source} holds no events: pick a recording with events "
                     "(or leave --file out for the sample)")
if events.sensor_size is None:  # a headerless file: the extent of the events
    print(f"{source} states no sensor size: using the extent of its events (pass "
          "--sensor-size W H for the real one)")
    events.sensor_size = (int(events["x"].max()) + 1, int(events["y"].max()) + 1, 2)
if args.quick and len(events):  # the busiest 500 ms (an N-MNIST sample is ~300 ms)
    t = events["t"].astype("int64")
    ends = t.searchsorted(t + 500_000)
    first = int((ends - range(len(t))).argmax())
    events = events[first:ends[first]]
W, H, P = events.sensor_size
span_ms = (int(events["t"][-1]) - int(events["t"][0])) / 1000
print(f"{source}: {len(events)} events on a {W}x{H} sensor over {span_ms:.1f} ms, "
      f"{(events['p'] > 0).mean():.0%} ON")

# %% [markdown]
# ## 2. Look at them
# An event raster (time against pixel index, ON red / OFF blue) and an animation of
# event frames (ON minus OFF counts per window), saved as a GIF.

# %%
ax = viz.raster(events)
ax.figure.savefig(args.out / "events_raster.png", dpi=100)
frame_us = 20_000 if args.quick else 10_000
anim = viz.event_animation(events, frame_us=frame_us, path=args.out / "events.gif", fps=8)
n_frames = len(viz.event_frames(events, frame_us))
print(f"wrote {args.out / 'events_raster.png'} and {args.out / 'events.gif'} ({n_frames} frames)")

# %% [markdown]
# ## 3. Bin them into a spike tensor
# `ToSpikeTensor` gives `[T, C, H, W]` (C = OFF, ON). `binary=False` keeps event counts,
# so nothing is lost: the counts add up to the number of events.

# %%
counts = ns.data.ToSpikeTensor(dt_us=args.dt_us, binary=False)(events)
spikes = ns.data.ToSpikeTensor(dt_us=args.dt_us)(events)  # 1.0 where a pixel fired in a bin
assert int(counts.sum()) == len(events), "every event lands in exactly one bin"
print(f"spike tensor {tuple(spikes.shape)} [T, C, H, W]; {int(spikes.sum())} spikes "
      f"({spikes.mean():.2%} of entries), from {int(counts.sum())} events")

# %% [markdown]
# ## 4. Drive spiking neurons with it
# A batch axis makes it `[T, B, C, H, W]`; a random projection feeds 32 LIF neurons.
# `record_membrane` steps the neuron and keeps its membrane potential.

# %%
x = spikes[:, None]  # [T, 1, 2, H, W]
proj = torch.nn.Linear(2 * H * W, 32)
with torch.no_grad():
    # excitatory, so the neurons fire; scaled down where a bin holds many spikes (a
    # large sensor), so that they fire rather than saturate at one spike every step
    per_bin = float(x.sum()) / max(1, x.shape[0])
    proj.weight.uniform_(0, min(0.02, 0.5 / max(per_bin, 1.0)))
    current = proj(x.flatten(2))
lif = ns.LIF(beta=0.95, threshold=1.0)
out, v = viz.record_membrane(lif, current)
fig_ax = viz.membrane_traces(v, out, threshold=1.0, neurons=4)
fig_ax.figure.savefig(args.out / "membrane.png", dpi=100)
ax = viz.raster(out, title="LIF output spikes")
ax.figure.savefig(args.out / "lif_raster.png", dpi=100)
rate = out.mean().item()
print(f"32 LIF neurons: {int(out.sum())} spikes, {rate:.3f} spikes per neuron per step")

# %%
write_summary(args.out, source=source, events=len(events), sensor_size=[W, H, P],
              spike_tensor_shape=list(spikes.shape), count_sum=int(counts.sum()),
              spikes=int(spikes.sum()), gif_frames=n_frames, lif_rate=rate,
              files=sorted(p.name for p in args.out.iterdir()))
