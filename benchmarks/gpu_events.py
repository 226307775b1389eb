"""Event layers on a GPU against cuBLAS / cuDNN (fp32, TF32, bf16) and SpikingJelly 2.0.

One run, round-robin (every variant timed once per round, rounds repeated), eager and
CUDA graph, medians with min-max:

1. ceilings of the card: device-to-device copy (HBM) and a copy that fits in L2;
2. the Linear op, 4096 -> 4096, rows 1 / 16 / 256, input rates 0.1 / 1 / 10 %: dense at
   each precision, the event kernel (fp32 and bf16 weights), ``EventLinear(mode="auto")``;
   each with its physical floor (bytes of the weight rows its events must read, over the
   HBM and L2 bandwidth measured in 1);
3. a 2-layer 4096-4096-4096 LIF net, streaming (one time step per call, batch 1 / 16,
   1 % Bernoulli input): per-step latency; and the whole 100-step sequence at batch 16;
4. a conv SNN on 2x128x128 DVS frames binned from a real recording (DVS128, 5 ms bins):
   per-step latency at batch 1 and the whole sequence.

``--small`` shrinks every size for a dry run (on the CPU too, where graphs are skipped
and a wall clock replaces CUDA events). Writes JSON to ``--out`` and prints a table.

    python3 benchmarks/gpu_events.py --frames .whl/dvs128_frames_1ms.npy --out $OUT/gpu_events.json
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cuda_graph, cuda_ms, hardware  # noqa: E402

import neurosparse as ns  # noqa: E402
from neurosparse.layers.event_linear import event_linear  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
GPU = DEV == "cuda"


# -- timing -----------------------------------------------------------------------------------
def per_call_us(fn, inner: int) -> float:
    """µs per call over ``inner`` back-to-back calls (CUDA events; host overhead shows)."""
    if not GPU:
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        return (time.perf_counter() - t0) / inner * 1e6
    return cuda_ms(fn, inner) * 1e3


def summary(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def round_robin(fns: dict, reps: int, inner: int) -> dict:
    """Every variant once per round, ``reps`` rounds, after a warm-up call each."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    errors = {}
    for k, fn in list(fns.items()):
        try:
            fn()
        except Exception as e:  # record and drop the variant, keep the run going
            errors[k] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
            del fns[k]
            del times[k]
    for _ in range(reps):
        for k, fn in fns.items():
            times[k].append(per_call_us(fn, inner))
    out = {k: summary(v) for k, v in times.items()}
    out.update({k: {"error": e} for k, e in errors.items()})
    return out


def add_graphs(fns: dict) -> dict:
    """Each eager variant plus its CUDA-graph replay (``<name> graph``)."""
    out = dict(fns)
    if not GPU:
        return out
    for k, fn in fns.items():
        try:
            out[f"{k} graph"] = cuda_graph(fn)
        except Exception as e:
            print(f"graph capture of {k} failed: {type(e).__name__}: {e}", flush=True)
            out[f"{k} graph"] = _raiser(f"{type(e).__name__}: {e}")
    return out


def net_step(layers, lifs, states, sx: torch.Tensor, tf32: bool) -> torch.Tensor:
    """One time step of a stack of (layer, ``ns.LIF``) pairs on the static input ``sx``;
    the LIF states are updated in place, so a CUDA graph of it replays the recurrence
    (SpikingJelly's graph below keeps no recurrence: its node reassigns ``self.v``)."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    h = sx
    with torch.no_grad():  # inference: out= refuses to overwrite what autograd would keep
        for lin, lif, st in zip(layers, lifs, states):
            # out=st: the new state goes into the static buffers (on CUDA the kernel
            # writes them: no copy), so each replay continues the recurrence
            h, _ = lif.step(lin(h), st, out=st)
    return h


def streaming(fn, sx, seq: torch.Tensor, counter: dict):
    """One streaming call: copy the next step of ``seq`` into the net's static input
    ``sx``, then run ``fn`` (one step of the net, or the replay of its CUDA graph)."""

    def call():
        counter["t"] = (counter["t"] + 1) % seq.shape[0]
        sx.copy_(seq[counter["t"]])
        return fn()

    return call


def _raiser(msg):
    def f():
        raise RuntimeError(msg)

    return f


# -- 1. ceilings ------------------------------------------------------------------------------
def ceilings(small: bool) -> dict:
    n_big = (1 << 20) if small else (1 << 29)  # 2 GiB of fp32 per side on the GPU
    src = torch.rand(n_big, device=DEV)
    dst = torch.empty_like(src)
    n_l2 = (1 << 16) if small else (1 << 21)  # 8 MiB: well inside a 50-60 MB L2
    s2, d2 = torch.rand(n_l2, device=DEV), torch.empty(n_l2, device=DEV)
    r = round_robin({"hbm": lambda: dst.copy_(src), "l2": lambda: d2.copy_(s2)}, 5, 20)
    out = {"hbm_GBps": 2 * n_big * 4 / r["hbm"]["median"] / 1e3,
           "l2_GBps": 2 * n_l2 * 4 / r["l2"]["median"] / 1e3, "raw": r}  # fmt: skip
    return out


def weight_floor_us(x: torch.Tensor, n_out: int, elem: int, bw_GBps: float) -> float:
    """Time to read, once, the weight rows of every input active in some row of ``x``."""
    distinct = int((x != 0).any(0).sum())
    return distinct * n_out * elem / bw_GBps / 1e3


# -- 2. the Linear op ------------------------------------------------------------------------
def linear_op(n: int, rows_list, rates, ceil: dict, reps: int) -> list[dict]:
    g = torch.Generator(device=DEV).manual_seed(0)
    w = torch.randn(n, n, device=DEV, generator=g) / math.sqrt(n)
    w_t = torch.empty(n, n, device=DEV).t()
    w_t.copy_(w)  # EventLinear's storage: Wᵀ contiguous
    wb, wb_t = w.bfloat16(), w_t.bfloat16()
    wb_t = torch.empty(n, n, device=DEV, dtype=torch.bfloat16).t()
    wb_t.copy_(wb)
    b = torch.zeros(n, device=DEV)
    bb = b.bfloat16()
    layer = ns.EventLinear(n, n, device=DEV)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.zero_()
    layer_ev = ns.EventLinear(n, n, mode="event", device=DEV)
    layer_ev.load_state_dict(layer.state_dict())
    rows_out = []
    for rows in rows_list:
        for rate in rates:
            x = (torch.rand(rows, n, device=DEV, generator=g) < rate).float()
            xb = x.bfloat16()

            def tf32(on):
                def f(x=x):
                    torch.backends.cuda.matmul.allow_tf32 = on
                    return F.linear(x, w, b)

                return f

            fns = {
                "dense fp32": tf32(False),
                "dense tf32": tf32(True),
                "dense bf16": lambda xb=xb: F.linear(xb, wb, bb),
                "event fp32": lambda x=x: event_linear(x, w_t, b, mode="event"),
                "event bf16": lambda xb=xb: event_linear(xb, wb_t, bb, mode="event"),
                "EventLinear auto": lambda x=x: layer(x),
                "EventLinear event": lambda x=x: layer_ev(x),
            }
            with torch.no_grad():
                res = round_robin(add_graphs(fns), reps, 20)
            torch.backends.cuda.matmul.allow_tf32 = False
            floors = {f"{p} {m}": weight_floor_us(x, n, e, ceil[f"{m}_GBps"])
                      for p, e in (("fp32", 4), ("bf16", 2)) for m in ("hbm", "l2")}  # fmt: skip
            rows_out.append({"rows": rows, "rate": rate, "n": n, "times_us": res,
                             "floor_us": floors, "auto_path": layer.last_path})  # fmt: skip
            print(f"linear {n} rows={rows} rate={rate}: " + ", ".join(
                f"{k}={v.get('median', float('nan')):.1f}" for k, v in res.items()), flush=True)
    return rows_out


# -- 3. 2-layer LIF net -----------------------------------------------------------------------
# weight scales over nn.Linear's default init: at 1 % input the hidden layer fires ~1 %
# (the "1 % activity") or ~13 % per step (measured and reported as hidden_rate)
NET_SCALES = (4.3, 20.0)


def static_state(shape, like: torch.Tensor):
    """A neuron state for a CUDA graph: the four fields as rows of one fp32 buffer (the
    layout the LIF kernel returns, so a step reads it without a stack)."""
    from neurosparse.neurons.functional import NeuronState

    # (the CPU dry run keeps the input's dtype: the reference step there would promote a
    # bf16 input to an fp32 state's dtype)
    dt = torch.float32 if like.is_cuda else like.dtype
    return NeuronState(*torch.zeros(4, *shape, device=like.device, dtype=dt).unbind(0))


def lif_net(n: int, batch_list, rate: float, steps: int, seq_t: int, seq_b: int,
            reps: int, scales=NET_SCALES) -> dict:  # fmt: skip
    out: dict = {"steps": {}, "sequence": {}, "hidden_rate": {}, "sequence_shape": None}
    for scale in scales:
        one = lif_net_at(n, batch_list, rate, steps, seq_t, seq_b, reps, scale)
        for key in ("steps", "hidden_rate"):
            out[key].update(one[key])
        out["sequence"][f"weights x{scale}"] = one["sequence"]
        out["sequence_shape"] = one["sequence_shape"]
    return out


def lif_net_at(n: int, batch_list, rate: float, steps: int, seq_t: int, seq_b: int,
               reps: int, scale: float) -> dict:  # fmt: skip
    from spikingjelly.activation_based import layer as sj_layer
    from spikingjelly.activation_based import neuron as sj_neuron

    torch.manual_seed(0)
    base = [nn.Linear(n, n, device=DEV) for _ in range(2)]
    with torch.no_grad():
        for lin in base:
            lin.weight.mul_(scale)
            lin.bias.zero_()
    out: dict = {"steps": {}, "sequence": {}, "hidden_rate": {}}

    def ns_layers(kind):
        if kind.startswith("event"):
            dt = torch.bfloat16 if kind.endswith("bf16") else torch.float32
            ls = [ns.EventLinear.from_dense(lin, mode="event").to(dt) for lin in base]
        else:
            dt = torch.bfloat16 if kind.endswith("bf16") else torch.float32
            ls = [nn.Linear(n, n, device=DEV, dtype=dt) for _ in base]
            with torch.no_grad():
                for a, s in zip(ls, base):
                    a.load_state_dict(s.state_dict())
        return ls, dt

    for batch in batch_list:
        xs = (torch.rand(steps, batch, n, device=DEV) < rate).float()
        fns = {}
        for kind in ("dense tf32", "dense bf16", "event fp32", "event bf16"):
            ls, dt = ns_layers(kind)
            lifs = [ns.LIF(0.9).to(DEV) for _ in ls]
            static_x = xs[0].to(dt).clone()
            states = [static_state((batch, n), static_x) for _ in lifs]
            tf32 = kind == "dense tf32"

            step = functools.partial(net_step, ls, lifs, states, static_x, tf32)
            fns[f"ns {kind}"] = (step, static_x, dt)
        for prec in ("tf32", "bf16"):
            dt = torch.bfloat16 if prec == "bf16" else torch.float32
            sj = nn.Sequential(sj_layer.Linear(n, n), sj_neuron.LIFNode(tau=10.0),
                               sj_layer.Linear(n, n), sj_neuron.LIFNode(tau=10.0)).to(DEV, dt)
            with torch.no_grad():
                sj[0].load_state_dict(base[0].state_dict())
                sj[2].load_state_dict(base[1].state_dict())
            static_x = xs[0].to(dt).clone()
            tf32 = prec == "tf32"

            def sj_step(sj=sj, static_x=static_x, tf32=tf32):
                torch.backends.cuda.matmul.allow_tf32 = tf32
                return sj(static_x)

            fns[f"spikingjelly {prec}"] = (sj_step, static_x, dt)
        # one "call" = copy the next input step in, run one step of the net
        calls = {}
        counter = {"t": 0}
        for name, (fn, sx, dt) in fns.items():
            calls[name] = streaming(fn, sx, xs.to(dt), counter)
        with torch.no_grad():
            graphs = {}
            if GPU:
                for name, (fn, sx, dt) in fns.items():
                    try:
                        graphs[f"{name} graph"] = streaming(cuda_graph(fn), sx, xs.to(dt),
                                                            counter)  # fmt: skip
                    except Exception as e:
                        graphs[f"{name} graph"] = _raiser(f"{type(e).__name__}: {e}")
                # the same event net through ns.GraphStream: its own input copy, replay,
                # output copy and counter bookkeeping per call
                ls, _ = ns_layers("event fp32")
                gnet = ns.Sequential(ls[0], ns.LIF(0.9), ls[1], ns.LIF(0.9)).to(DEV)
                for clone in (True, False):
                    gs = ns.GraphStream(gnet, xs[0], clone=clone)

                    def gs_call(gs=gs, c=counter):
                        c["t"] = (c["t"] + 1) % xs.shape[0]
                        return gs.step(xs[c["t"]])

                    graphs[f"ns event fp32 GraphStream{'' if clone else ' clone=False'}"] = gs_call
            res = round_robin({**calls, **graphs}, reps, steps)
            # hidden activity (first LIF layer) over the input steps, fp32 dense net
            lin0, lif0 = base[0], ns.LIF(0.9).to(DEV)
            z_seq, _ = lif0(lin0(xs))
            zs = [float(z_seq.mean())]
        out["steps"][f"batch {batch}, weights x{scale}"] = res
        out["hidden_rate"][f"batch {batch}, weights x{scale}"] = statistics.mean(zs)
        print(f"net step batch={batch} x{scale}: " + ", ".join(
            f"{k}={v.get('median', float('nan')):.1f}" for k, v in res.items()), flush=True)
    # the whole sequence at once (time-first [T, B, n])
    xseq = (torch.rand(seq_t, seq_b, n, device=DEV) < rate).float()
    seq = {}
    for kind in ("dense tf32", "dense bf16", "event fp32", "event bf16"):
        ls, dt = ns_layers(kind)
        lifs = [ns.LIF(0.9).to(DEV) for _ in ls]
        xd = xseq.to(dt)
        tf32 = kind == "dense tf32"

        def run(ls=ls, lifs=lifs, xd=xd, tf32=tf32):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            h = xd
            for lin, lif in zip(ls, lifs):
                h, _ = lif(lin(h))
            return h

        seq[f"ns {kind}"] = run
    for prec in ("tf32", "bf16"):
        dt = torch.bfloat16 if prec == "bf16" else torch.float32
        sj = nn.Sequential(sj_layer.Linear(n, n, step_mode="m"),
                           sj_neuron.LIFNode(tau=10.0, step_mode="m"),
                           sj_layer.Linear(n, n, step_mode="m"),
                           sj_neuron.LIFNode(tau=10.0, step_mode="m")).to(DEV, dt)  # fmt: skip
        xd = xseq.to(dt)
        tf32 = prec == "tf32"

        def run_sj(sj=sj, xd=xd, tf32=tf32):
            from spikingjelly.activation_based import functional as sjf

            torch.backends.cuda.matmul.allow_tf32 = tf32
            sjf.reset_net(sj)
            return sj(xd)

        seq[f"spikingjelly {prec}"] = run_sj
    with torch.no_grad():
        out["sequence"] = round_robin(seq, reps, 3)
    out["sequence_shape"] = [seq_t, seq_b, n]
    print("net sequence: " + ", ".join(
        f"{k}={v.get('median', float('nan')):.1f}" for k, v in out["sequence"].items()),
        flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    return out


# -- 4. conv SNN on DVS frames ---------------------------------------------------------------
def dvs_frames(path: str | None, bin_ms: int, small: bool) -> torch.Tensor:
    """``[T, 1, 2, 128, 128]`` binary frames: the packed 1 ms frames OR-ed over ``bin_ms``."""
    if path and Path(path).exists():
        fr = np.unpackbits(np.load(path), axis=-1)  # [T1, 2, 128, 128]
        t = fr.shape[0] // bin_ms
        fr = fr[: t * bin_ms].reshape(t, bin_ms, *fr.shape[1:]).max(1)
        x = torch.from_numpy(fr.astype(np.float32))[:, None]
    else:  # no recording given: random frames at a DVS-like rate (said in the JSON)
        x = (torch.rand(40, 1, 2, 128, 128) < 0.002).float()
    if small:
        x = x[:8, :, :, :32, :32].contiguous()
    return x.to(DEV)


def conv_net(frames: torch.Tensor, reps: int) -> dict:
    from spikingjelly.activation_based import layer as sj_layer
    from spikingjelly.activation_based import neuron as sj_neuron

    torch.manual_seed(0)
    t_steps, _, c, h, w = frames.shape
    convs = [nn.Conv2d(2, 16, 5, 2, 2, device=DEV), nn.Conv2d(16, 32, 3, 2, 1, device=DEV)]
    with torch.no_grad():
        for cv in convs:
            cv.weight.mul_(8)
    out: dict = {"frames": list(frames.shape),
                 "input_rate": float(frames.mean()), "steps": {}, "sequence": {}}  # fmt: skip

    def ns_net(kind):
        dt = torch.bfloat16 if kind.endswith("bf16") else torch.float32
        if kind.startswith("event"):
            ls = [ns.EventConv2d.from_dense(cv, mode="event") for cv in convs]
        else:
            ls = [nn.Conv2d(cv.in_channels, cv.out_channels, cv.kernel_size, cv.stride,
                            cv.padding, device=DEV, dtype=dt) for cv in convs]  # fmt: skip
            with torch.no_grad():
                for a, s in zip(ls, convs):
                    a.load_state_dict(s.state_dict())
        return ls, dt

    calls = {}
    counter = {"t": 0}
    for kind in ("dense tf32", "dense bf16", "event fp32"):
        try:
            ls, dt = ns_net(kind)
        except Exception as e:
            calls[f"ns {kind}"] = _raiser(f"{type(e).__name__}: {e}")
            continue
        lifs = [ns.LIF(0.9).to(DEV) for _ in ls]
        sx = frames[0].to(dt).clone()
        with torch.no_grad():
            shapes, hh = [], sx
            for lin in ls:
                hh = lin(hh)
                shapes.append(hh)
        states = [static_state(s.shape, s) for s in shapes]
        tf32 = kind == "dense tf32"
        fd = frames.to(dt)

        step = functools.partial(net_step, ls, lifs, states, sx, tf32)
        calls[f"ns {kind}"] = streaming(step, sx, fd, counter)
        if GPU:
            try:
                calls[f"ns {kind} graph"] = streaming(cuda_graph(step), sx, fd, counter)
            except Exception as e:
                calls[f"ns {kind} graph"] = _raiser(f"{type(e).__name__}: {e}")
    for prec in ("tf32", "bf16"):
        dt = torch.bfloat16 if prec == "bf16" else torch.float32
        sj = nn.Sequential(sj_layer.Conv2d(2, 16, 5, 2, 2), sj_neuron.LIFNode(tau=10.0),
                           sj_layer.Conv2d(16, 32, 3, 2, 1),
                           sj_neuron.LIFNode(tau=10.0)).to(DEV, dt)  # fmt: skip
        with torch.no_grad():
            sj[0].load_state_dict(convs[0].state_dict())
            sj[2].load_state_dict(convs[1].state_dict())
        sx = frames[0].to(dt).clone()
        fd = frames.to(dt)
        tf32 = prec == "tf32"

        def sj_call(sj=sj, sx=sx, fd=fd, tf32=tf32):
            torch.backends.cudnn.allow_tf32 = tf32
            counter["t"] = (counter["t"] + 1) % t_steps
            sx.copy_(fd[counter["t"]])
            return sj(sx)

        calls[f"spikingjelly {prec}"] = sj_call
    with torch.no_grad():
        out["steps"]["batch 1"] = round_robin(calls, reps, t_steps)
    print("conv step: " + ", ".join(
        f"{k}={v.get('median', float('nan')):.1f}" for k, v in out["steps"]["batch 1"].items()),
        flush=True)
    seq = {}
    for kind in ("dense tf32", "dense bf16", "event fp32"):
        ls, dt = ns_net(kind)
        lifs = [ns.LIF(0.9).to(DEV) for _ in ls]
        fd = frames.to(dt)
        tf32 = kind == "dense tf32"

        def run(ls=ls, lifs=lifs, fd=fd, tf32=tf32):
            torch.backends.cudnn.allow_tf32 = tf32
            hcur = fd
            for lin, lif in zip(ls, lifs):
                cur = lin(hcur.flatten(0, 1)).unflatten(0, hcur.shape[:2])
                hcur, _ = lif(cur)
            return hcur

        seq[f"ns {kind}"] = run
    for prec in ("tf32", "bf16"):
        dt = torch.bfloat16 if prec == "bf16" else torch.float32
        sj = nn.Sequential(sj_layer.Conv2d(2, 16, 5, 2, 2, step_mode="m"),
                           sj_neuron.LIFNode(tau=10.0, step_mode="m"),
                           sj_layer.Conv2d(16, 32, 3, 2, 1, step_mode="m"),
                           sj_neuron.LIFNode(tau=10.0, step_mode="m")).to(DEV, dt)  # fmt: skip
        with torch.no_grad():
            sj[0].load_state_dict(convs[0].state_dict())
            sj[2].load_state_dict(convs[1].state_dict())
        fd = frames.to(dt)
        tf32 = prec == "tf32"

        def run_sj(sj=sj, fd=fd, tf32=tf32):
            from spikingjelly.activation_based import functional as sjf

            torch.backends.cudnn.allow_tf32 = tf32
            sjf.reset_net(sj)
            return sj(fd)

        seq[f"spikingjelly {prec}"] = run_sj
    with torch.no_grad():
        out["sequence"] = round_robin(seq, reps, 3)
    print("conv sequence: " + ", ".join(
        f"{k}={v.get('median', float('nan')):.1f}" for k, v in out["sequence"].items()),
        flush=True)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    return out


def table(res: dict) -> str:
    lines = []
    for sec in ("linear",):
        for r in res.get(sec, []):
            t = r["times_us"]
            lines.append(f"linear {r['n']} rows={r['rows']} rate={r['rate']}")
            for k, v in t.items():
                if "median" in v:
                    fl = r["floor_us"]["bf16 hbm" if "bf16" in k else "fp32 hbm"]
                    lines.append(f"  {k:28s} {v['median']:9.1f} µs ({v['min']:.1f}-{v['max']:.1f})"
                                 f"  floor(HBM) {fl:.2f}")  # fmt: skip
                else:
                    lines.append(f"  {k:28s} {v['error'][:80]}")
    for sec in ("net", "conv"):
        for part in ("steps", "sequence"):
            blocks = res.get(sec, {}).get(part, {})
            nested = part == "steps" or (blocks and all(
                "median" not in v and "error" not in v for v in blocks.values()))  # fmt: skip
            items = blocks.items() if nested else [("", blocks)]
            for name, block in items:
                lines.append(f"{sec} {part} {name}")
                for k, v in block.items():
                    if "median" in v:
                        lines.append(f"  {k:28s} {v['median']:9.1f} µs ({v['min']:.1f}-"
                                     f"{v['max']:.1f})")  # fmt: skip
                    else:
                        lines.append(f"  {k:28s} {v['error'][:80]}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--frames", default=None, help="packed 1 ms DVS frames (.npy)")
    ap.add_argument("--out", default="gpu_events.json")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--sections", default="ceilings,linear,net,conv")
    args = ap.parse_args()
    small = args.small
    sections = args.sections.split(",")
    res: dict = {"hardware": hardware(), "small": small}
    try:
        import numba
        import spikingjelly

        res["hardware"].update(numba=numba.__version__,
                               spikingjelly=getattr(spikingjelly, "__version__", "2.0.0"))
    except ImportError:
        pass
    n = 256 if small else 4096
    res["ceilings"] = ceilings(small) if "ceilings" in sections else {"hbm_GBps": 4300.0,
                                                                      "l2_GBps": 8000.0}
    print("ceilings", {k: v for k, v in res["ceilings"].items() if k != "raw"}, flush=True)

    def save():
        Path(args.out).write_text(json.dumps(res, indent=1))

    for name, fn in (
        ("linear", lambda: linear_op(n, (1, 16, 256), (0.001, 0.01, 0.1), res["ceilings"],
                                     args.reps)),
        ("net", lambda: lif_net(n, (1, 16), 0.01, 8 if small else 64, 10 if small else 100,
                                4 if small else 16, args.reps)),
        ("conv", lambda: conv_net(dvs_frames(args.frames, 5, small), args.reps)),
    ):  # fmt: skip
        if name not in sections:
            continue
        try:
            res[name] = fn()
        except Exception as e:
            traceback.print_exc()
            res[name] = {"error": f"{type(e).__name__}: {e}"}
        save()
    print(table(res))
    save()


if __name__ == "__main__":
    main()
