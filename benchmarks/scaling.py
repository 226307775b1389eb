"""Data-parallel scaling of ``neurosparse.train``: 1 vs 2 processes on the DVS conv SNN.

One script, one run (issue 15):

1. ``torchrun --nproc_per_node=1`` and ``--nproc_per_node=2`` of
   ``python -m neurosparse.train --config examples/configs/dvs_conv.toml --max-steps N``
   (NCCL on GPUs, NVLink multicast off; gloo on CPU in ``--cpu-smoke``);
2. samples/s after warm-up from each run's metrics JSON, and the scaling efficiency
   ``eff = sps(2) / (2 * sps(1))`` -- the comparison is with perfect linear scaling;
   the 1-process baseline is plain single-device training (no DDP wrapper, no
   process group), so DDP's own overhead counts against the efficiency;
3. the parameters of both ranks at the end are bit-identical (SHA-256 per rank);
4. the 2-process run's checkpoint resumes in 1 process: the parameters loaded equal
   the ones saved, and training goes on for ``--resume-steps`` more steps.

Results (table on stdout) go to ``--out`` as JSON: ``$OUT/scaling.json`` when ``$OUT``
is set, else ``benchmarks/results/scaling.json`` (``scaling_cpu_smoke.json`` for the
smoke mode). The exit status is 0 only when every check passed.

    python benchmarks/scaling.py                  # on a 2-GPU machine
    python benchmarks/scaling.py --cpu-smoke      # tiny sizes, gloo, anywhere (~1-2 min)

On the device machine the project must be importable as installed
(``pip install --no-deps --no-build-isolation -e .``: ``neurosparse.kernels`` is mapped
from ``kernels/`` at install time) and numba-cuda must import (see shared/GPU.md),
else the LIF op runs its torch reference; ``neuron_kernel`` in the JSON says which ran.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "configs" / "dvs_conv.toml"

# Tiny version of the same workload, for a CPU check before spending GPU time.
SMOKE = ["--device", "cpu", "--data.sensor", "32,32,2", "--data.time_bins", "8",
         "--data.batch_size", "4", "--data.n_train", "256", "--data.pool_size", "22",
         "--model.channels", "4,8", "--model.pool", "4", "--threads", "1"]  # fmt: skip

# NVLink multicast must stay off on the shared GPU hosts (device notes, KINDS.md).
SAFE_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
            "NVSHMEM_DISABLE_NVLS": "1"}  # fmt: skip


def launch(nproc: int, run_dir: Path, flags: list[str], timeout: int) -> dict:
    """One torchrun job; returns its metrics JSON plus the command and wall time."""
    metrics = run_dir / "metrics.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "neurosparse.train", "--config", str(CONFIG),
           "--output-dir", str(run_dir), "--metrics-out", str(metrics), "--progress", "false",
           *flags]  # fmt: skip
    env = {**os.environ, **SAFE_ENV, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    shown = " ".join(["torchrun"] + cmd[3:]).replace(str(ROOT) + "/", "")
    print(f"$ {shown}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    out = {"command": shown, "nproc": nproc, "wall_s": time.perf_counter() - t0,
           "returncode": proc.returncode}  # fmt: skip
    if proc.returncode != 0 or not metrics.exists():
        out["error"] = (proc.stdout[-2000:] + "\n" + proc.stderr[-4000:]).strip()
        print(out["error"], flush=True)
        return out
    m = json.loads(metrics.read_text())
    m.pop("history", None)
    m.pop("config", None)
    out["metrics"] = m
    return out


def sps(run: dict) -> float | None:
    return run.get("metrics", {}).get("throughput", {}).get("samples_per_s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON path (default $OUT/scaling.json, else benchmarks/results/"
                    "scaling.json; scaling_cpu_smoke.json with --cpu-smoke)")  # fmt: skip
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes, gloo on the CPU")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per run")
    ap.add_argument("--warmup", type=int, default=None, help="steps left out of the timing")
    ap.add_argument("--resume-steps", type=int, default=None, help="steps after resuming")
    ap.add_argument("--workdir", type=Path, default=None, help="run folders (default: temp)")
    ap.add_argument("--timeout", type=int, default=540, help="seconds per torchrun job")
    args = ap.parse_args()
    smoke = args.cpu_smoke
    name = "scaling_cpu_smoke.json" if smoke else "scaling.json"
    out_path = args.out or (Path(os.environ["OUT"]) / name if os.environ.get("OUT")
                            else ROOT / "benchmarks" / "results" / name)  # fmt: skip
    steps = args.steps or (8 if smoke else 110)
    warmup = args.warmup if args.warmup is not None else (3 if smoke else 10)
    more = args.resume_steps or (2 if smoke else 10)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ns_scaling_"))
    common = [*(SMOKE if smoke else []), "--max-steps", str(steps), "--warmup-steps",
              str(warmup), "--train.epochs", "1000", "--resume", "never"]  # fmt: skip

    result: dict = {
        "benchmark": "neurosparse.train data-parallel scaling (issue 15)",
        "mode": "cpu-smoke (gloo, tiny sizes: only checks the plumbing)" if smoke
        else "gpu (nccl)",
        "config": str(CONFIG.relative_to(ROOT)),
        "workload": "ConvSNN (2->32 5x5/2, 32->64 3x3/2, pool 8, ->11) on 128x128x2, T=100, "
        "B=32 per process, bf16 autocast" if not smoke else "tiny ConvSNN: 32x32x2, T=8, B=4",
        "steps": steps, "warmup_steps": warmup,
        "host": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                 "machine": platform.machine()},
        "env": SAFE_ENV,
    }  # fmt: skip
    runs = {}
    for n in (1, 2):
        runs[n] = launch(n, work / f"np{n}", common, args.timeout)
    ckpt = work / "np2" / "checkpoints" / "last.pt"
    resume_flags = [*(SMOKE if smoke else []), "--max-steps", str(steps + more), "--warmup-steps",
                    "0", "--train.epochs", "1000", "--resume", str(ckpt)]  # fmt: skip
    runs["resume"] = launch(1, work / "resume", resume_flags, args.timeout)
    result["runs"] = {str(k): v for k, v in runs.items()}

    s1, s2 = sps(runs[1]), sps(runs[2])
    m1, m2, mr = (runs[k].get("metrics", {}) for k in (1, 2, "resume"))
    result["device"] = m2.get("device_name") or m1.get("device_name")
    result["samples_per_s"] = {"1": s1, "2": s2}
    result["scaling_efficiency"] = s2 / (2 * s1) if s1 and s2 else None
    result["target_efficiency"] = 0.85  # issue 8 / 15; reported, not a pass/fail check
    result["meets_target"] = bool(result["scaling_efficiency"] and result["scaling_efficiency"]
                                  >= result["target_efficiency"])  # fmt: skip
    result["params_identical_on_both_ranks"] = bool(
        len(m2.get("param_checksums", [])) == 2 and m2.get("params_identical_on_all_ranks")
    )
    loss = mr.get("train_loss")
    result["resume_2_to_1"] = {
        "checkpoint": str(ckpt),
        "loaded_equals_saved": bool(mr) and mr.get("resumed_checksum") == (
            m2.get("param_checksums") or [None])[0],
        "steps_after_resume": (mr.get("step") or 0) - steps,
        "train_loss_after_resume": loss,
        "ok": bool(mr) and mr.get("step") == steps + more and loss is not None
        and math.isfinite(loss),
    }  # fmt: skip
    result["ok"] = bool(result["scaling_efficiency"] and result["params_identical_on_both_ranks"]
                        and result["resume_2_to_1"]["loaded_equals_saved"]
                        and result["resume_2_to_1"]["ok"])  # fmt: skip

    print()
    print(f"device: {result['device']}   mode: {result['mode']}")
    head = ("processes", "samples/s", "step ms", "neuron kernel")
    print("{:>9} | {:>10} | {:>8} | {:>15} | backend".format(*head))
    for n, m in ((1, m1), (2, m2)):
        tp = m.get("throughput", {})
        print(f"{n:>9} | {tp.get('samples_per_s') or float('nan'):>10.1f} | "
              f"{tp.get('step_ms') or float('nan'):>8.1f} | {m.get('neuron_kernel', '?'):>15} | "
              f"{m.get('backend')}")  # fmt: skip
    eff = result["scaling_efficiency"]
    print(f"scaling efficiency 2 vs 1: {eff:.1%}" if eff else "scaling efficiency: n/a")
    print(f"parameters identical on both ranks: {result['params_identical_on_both_ranks']}")
    print(f"2-process checkpoint resumes on 1 process: {result['resume_2_to_1']}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2))
    print(f"wrote {out_path}")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
