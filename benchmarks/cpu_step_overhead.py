"""Host cost of one streaming neuron step on the CPU: ``LIF.step`` against its bare math.

``python benchmarks/cpu_step_overhead.py [--rounds N] [--calls N] [--clock cpu|wall]
[--quick] [--out F.json] [--compare BEFORE.json]``

Per call, for ``x [1, 64]``, ``[1, 4096]`` and ``[32, 1024]`` (Bernoulli spikes at 10 %),
under ``torch.no_grad()`` with one torch thread:

* ``LIF.step(x)``: the state kept in the module (a streaming loop's usual call);
* ``LIF.step(x, s, out=s)``: an explicit state written in place;
* bare ``neuron_step(x, s, p, spec)``: the math alone, ``p = lif.params()`` made once;
* snnTorch ``snn.Leaky(beta=0.9)``: ``spk, mem = leaky(x, mem)`` (skipped, with a note,
  where snnTorch is not installed).

Each round times ``--calls`` back-to-back calls of every case in turn (interleaved, so a
slow stretch of a shared machine falls on all of them); the table gives the median over
rounds of the time per call, with the min-max. The clock is the process's CPU time by
default (``--clock cpu``: with one thread it is the work done, while wall time on a
shared VM also counts its neighbours' load); the JSON keeps both clocks. ``--compare``
adds the medians of an earlier run's JSON (e.g. the code before a change, run from a
``git archive`` of it with ``PYTHONPATH``) beside the new ones.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

# before torch loads libgomp (benchmarks/neurons.py says why)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from _timing import hardware, results_path  # noqa: E402  (benchmarks/, beside this)

import neurosparse as ns  # noqa: E402
from neurosparse.neurons.functional import neuron_step  # noqa: E402

warnings.filterwarnings("ignore")

SHAPES = ((1, 64), (1, 4096), (32, 1024))


def cases(shape: tuple[int, ...], rate: float = 0.1) -> dict:
    """The step functions timed for one input shape, each advancing its own stream."""
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(shape, generator=gen) < rate).float()
    kept = ns.LIF(beta=0.9)
    explicit = ns.LIF(beta=0.9)
    s = explicit.initial_state(x)
    bare = ns.LIF(beta=0.9)
    p, spec = bare.params(), bare.spec
    st = [bare.initial_state(x)]

    def step_bare():
        st[0] = neuron_step(x, st[0], p, spec)[1]

    out = {
        "LIF.step(x), kept state": lambda: kept.step(x),
        "LIF.step(x, s, out=s)": lambda: explicit.step(x, s, out=s),
        "bare neuron_step": step_bare,
    }
    try:
        import snntorch as snn
    except ImportError:
        print("snnTorch is not importable: its row is skipped")
        return out
    leaky = snn.Leaky(beta=0.9)
    mem = [leaky.init_leaky()]

    def step_snntorch():
        spk, mem[0] = leaky(x, mem[0])

    out["snnTorch Leaky(beta=0.9)"] = step_snntorch
    return out


def measure(rounds: int, calls: int, clock: str = "cpu") -> list[dict]:
    """Rows of µs per call (``us``: the chosen clock's rounds, ``cpu_us`` / ``wall_us``
    both) for every shape and case."""
    rows = []
    for shape in SHAPES:
        fns = cases(shape)
        with torch.no_grad():
            for fn in fns.values():  # warm-up
                for _ in range(max(calls // 10, 20)):
                    fn()
            cpu: dict[str, list[float]] = {k: [] for k in fns}
            wall: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(rounds):
                for name, fn in fns.items():
                    c0, t0 = time.process_time(), time.perf_counter()
                    for _ in range(calls):
                        fn()
                    cpu[name].append((time.process_time() - c0) / calls * 1e6)
                    wall[name].append((time.perf_counter() - t0) / calls * 1e6)
        for name in fns:
            ts = cpu[name] if clock == "cpu" else wall[name]
            rows.append({"shape": list(shape), "case": name, "us": ts, "cpu_us": cpu[name],
                         "wall_us": wall[name], "median_us": statistics.median(ts),
                         "min_us": min(ts), "max_us": max(ts)})  # fmt: skip
    return rows


def table(rows: list[dict], before: dict | None = None) -> str:
    head = "| x | case | µs per call, median (min-max) |"
    sep = "|---|---|---:|"
    old = {}
    if before:
        head += " before: median µs | change |"
        sep += "---:|---:|"
        old = {(tuple(r["shape"]), r["case"]): r for r in before["rows"]}
    lines = [head, sep]
    for r in rows:
        line = (f"| {list(r['shape'])} | {r['case']} | {r['median_us']:.1f} "
                f"({r['min_us']:.1f}-{r['max_us']:.1f}) |")  # fmt: skip
        if before:
            o = old.get((tuple(r["shape"]), r["case"]))
            if o:
                change = 100 * (r["median_us"] / o["median_us"] - 1)
                line += f" {o['median_us']:.1f} | {change:+.0f} % |"
            else:
                line += " - | - |"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9, help="rounds per case (>= 5)")
    ap.add_argument("--calls", type=int, default=2000, help="calls timed per round")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="the table's clock: process CPU time (default) or wall time")
    ap.add_argument("--quick", action="store_true", help="5 rounds of 200 calls")
    ap.add_argument("--out", help="JSON path (default benchmarks/results/cpu_step_overhead.json; "
                                  "quick/ for --quick)")  # fmt: skip
    ap.add_argument("--compare", help="JSON of an earlier run: its medians beside these")
    args = ap.parse_args(argv)
    rounds, calls = (5, 200) if args.quick else (max(args.rounds, 5), args.calls)
    torch.set_num_threads(1)
    out = Path(args.out or results_path("cpu_step_overhead.json", args.quick))
    rows = measure(rounds, calls, args.clock)
    before = json.loads(Path(args.compare).read_text()) if args.compare else None
    info = dict(hardware(), threads=torch.get_num_threads(), rounds=rounds, calls=calls,
                clock=args.clock, grad="torch.no_grad()", neurosparse=ns.__file__,
                command="python " + " ".join(sys.argv),
                time=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))  # fmt: skip
    print(f"CPU step host cost, {info['cpu']}, {info['cores']} cores, torch threads 1, "
          f"{rounds} rounds x {calls} calls, {args.clock} clock, torch.no_grad()")
    print(table(rows, before))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
