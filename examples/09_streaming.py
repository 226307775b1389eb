# %% [markdown]
# # Streaming a DVS recording one millisecond at a time
#
# A camera delivers events as they happen; a network that reacts to them in real time
# runs one time step per call instead of one call per recording. This example bins a
# real DVS128 recording into 1 ms frames and streams them through a small convolutional
# spiking net with `ns.GraphStream`, which keeps each neuron's state between calls. On a
# GPU the step is captured once in a CUDA graph and replayed per frame (no Python per
# kernel); on the CPU the same steps run eagerly. The streamed spikes are checked
# against one sequence-mode call on the whole recording, and the per-step latency is
# compared with the frame time: below it, the net keeps up with the camera.
#
# Data: `--file` (any format `ns.data.read_events` knows), else the DVS128 recording of
# the project's small real recordings (`$NEUROSPARSE_DATA_DIR`, else `../shared/data/dvs`;
# `python -m neurosparse.data.fetch_recordings` downloads them), else a recording
# `ns.data.SyntheticDVS` generates.
#
#     python examples/09_streaming.py [--file REC.aedat] [--quick]

# %%
import statistics
import time

import matplotlib

matplotlib.use("Agg")  # files only; drop this line in a notebook to see figures inline
import matplotlib.pyplot as plt
import torch
from _common import SHARED_DVS, parse_args, recording_flags, write_summary

import neurosparse as ns

args = parse_args("09_streaming", __doc__ or "Streaming", recording_flags)
torch.manual_seed(args.seed)
device = "cuda" if torch.cuda.is_available() else "cpu"

# %% [markdown]
# ## 1. Events to 1 ms frames
# `ToSpikeTensor` bins the events into `[T, 2, H, W]` (OFF, ON), 1.0 where a pixel fired
# within a frame. A camera driver would hand over one such frame per millisecond.

# %%
sample = SHARED_DVS / "aedat2" / "DVS128-2017-03-21-short.aedat"
if args.file is not None:
    size = None if args.sensor_size is None else (*args.sensor_size, 2)
    events, source = ns.data.read_events(args.file, sensor_size=size), str(args.file)
elif sample.exists():
    events, source = ns.data.read_events(sample), f"DVS128 recording {sample.name}"
else:
    print(f"no {sample}: streaming a generated recording instead "
          "(python -m neurosparse.data.fetch_recordings downloads the real ones)")
    events = ns.data.SyntheticDVS(1, n_classes=8, sensor_size=(128, 128, 2),
                                  seed=args.seed).events(0)  # fmt: skip
    source = "SyntheticDVS (generated)"
if len(events) == 0:
    raise SystemExit(f"{source} holds no events: there is nothing to stream; pick a "
                     "recording with events (or leave --file out for the sample)")
if events.sensor_size is None:  # a size guessed from the events would shift the geometry
    raise SystemExit(f"{source} states no sensor size: pass it with --sensor-size W H "
                     "(N-MNIST: 34 34)")
frames = ns.data.ToSpikeTensor(dt_us=args.dt_us)(events)  # [T, 2, H, W]
H, W = frames.shape[-2:]
if args.quick:  # the busiest 300 frames
    busy = torch.cat([torch.zeros(1), frames.flatten(1).sum(1).cumsum(0)])
    start = int((busy[300:] - busy[:-300]).argmax()) if len(frames) > 300 else 0
    frames = frames[start:start + 300]
T = frames.shape[0]
print(f"{source}: {len(events)} events on a {W}x{H} sensor -> {T} frames of "
      f"{args.dt_us} µs, {frames.mean():.3%} of the pixel-polarity pairs active per frame")

# %% [markdown]
# ## 2. A convolutional spiking net
# Event layers compute only where inputs spiked. The weights are random (this example
# is about streaming, not accuracy); they are scaled so that every layer fires.
# `Flatten(-3)` flattens each frame's channels and pixels whether it sees one frame
# `[B, C, H, W]` (streaming) or a sequence `[T, B, C, H, W]` (sequence mode below).

# %%
def conv_out(n: int) -> int:  # the conv's output size (kernel 5, stride 4, padding 2)
    return (n + 2 * 2 - 5) // 4 + 1  # ceil(n / 4): a 346-pixel DAVIS row gives 87


net = ns.Sequential(
    ns.EventConv2d(2, 8, 5, stride=4, padding=2), ns.LIF(0.9),
    torch.nn.Flatten(-3),  # [..., C, H, W] -> [..., C*H*W]: one frame or a sequence alike
    ns.EventLinear(8 * conv_out(H) * conv_out(W), 64), ns.LIF(0.9),
)  # fmt: skip
with torch.no_grad():
    net[0].weight.uniform_(0.0, 0.5)
    net[3].weight.normal_(0.0, 0.03)
    net[0].bias.zero_()
    net[3].bias.zero_()
net = net.to(device).eval()
x = frames[:, None].to(device)  # [T, B=1, 2, H, W]

# %% [markdown]
# ## 3. Stream it
# `GraphStream(net, example)` takes one frame's shape. Each `stream.step(frame)` runs the
# net on that frame and returns its output; the neurons' states carry over between
# calls until `stream.reset()`. On the CPU a step is bound by Python's per-layer work
# (1-2 ms on a 2-core VM, slower than the 1 ms frames); on an H100 a 2-layer
# 4096-4096-4096 event net steps in about 40 µs through `GraphStream`
# (`benchmarks/RESULTS.md`).

# %%
stream = ns.GraphStream(net, x[0])
out, step_ms = [], []
for t in range(T):
    t0 = time.perf_counter()
    out.append(stream.step(x[t]))
    if device == "cuda":
        torch.cuda.synchronize()  # the latency a caller that reads the spikes sees
    step_ms.append((time.perf_counter() - t0) * 1e3)
streamed = torch.stack(out)  # [T, 1, 64]
mode = "CUDA graph" if stream.graphed else "eager"
warm = step_ms[5:] or step_ms  # the first steps compile and warm caches
median_ms = statistics.median(warm)
p90_ms = sorted(warm)[int(0.9 * (len(warm) - 1))]
frame_ms = args.dt_us / 1000
print(f"{mode} on {device}: {median_ms:.3f} ms per step (median; 90 % of steps within "
      f"{p90_ms:.3f} ms) for {frame_ms:g} ms frames: "
      f"{'keeps up with' if median_ms < frame_ms else 'slower than'} the camera")

# %% [markdown]
# ## 4. The same spikes as one call on the whole recording
# Sequence mode (`net(x)` on `[T, B, ...]`) runs each neuron's fused kernel over all
# steps at once. Streaming must not change a single spike.

# %%
with torch.no_grad():
    whole, _ = net(x)
mismatches = int((whole != streamed).sum())
assert mismatches == 0, f"{mismatches} spikes differ between streaming and sequence mode"
print(f"streamed spikes equal the sequence-mode spikes: {int(streamed.sum())} output spikes "
      f"over {T} steps")

# %%
fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
tt, nn_ = streamed[:, 0].nonzero(as_tuple=True)
ax0.scatter(tt.cpu(), nn_.cpu(), s=2, color="black")
ax0.set_ylabel("output neuron")
ax0.set_title(f"streamed output spikes ({source})")
ax1.plot(step_ms, lw=0.8)
ax1.axhline(frame_ms, color="red", ls="--", label=f"frame time {frame_ms:g} ms")
ax1.set_xlabel("time step (frame)")
ax1.set_ylabel(f"ms per step ({mode})")
ax1.set_yscale("log")
ax1.legend()
fig.tight_layout()
fig.savefig(args.out / "streaming.png", dpi=100)
print(f"wrote {args.out / 'streaming.png'}")

# %%
write_summary(args.out, source=source, events=len(events), steps=T, device=device, mode=mode,
              median_step_ms=median_ms, p90_step_ms=p90_ms, frame_ms=frame_ms,
              output_spikes=int(streamed.sum()), mismatches=mismatches,
              files=sorted(p.name for p in args.out.iterdir()))
