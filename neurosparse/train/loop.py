"""The training loop: DDP, mixed precision, checkpoint/resume, metrics, throughput.

One function, :func:`train`, runs a whole configured job in this process. Under
``torchrun`` every process calls it; each one builds the same model (seeded with
``cfg.seed`` before any per-rank seeding), wraps it in ``DistributedDataParallel`` and
reads its own share of every global batch (:class:`GlobalBatchSampler`). Rank 0 writes
checkpoints and the metrics JSON and shows the progress bar.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from ..errors import CheckpointError, ParameterError
from ..ops import registry
from .checkpoint import FORMAT, atomic_save, load_checkpoint
from .config import Config
from .data import DataBundle, batch_to_device, build_data
from .distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_sum,
    init_distributed,
    rng_state,
    seed_process,
    set_rng_state,
    shutdown,
)
from .models import build_model, spike_count_loss
from .sampler import GlobalBatchSampler


@dataclass
class TrainResult:
    """What :func:`train` returns (on every rank)."""

    step: int
    epoch: int
    model: nn.Module  # the plain module (not DDP-wrapped, not compiled)
    metrics: dict[str, Any] = field(default_factory=dict)


def param_checksum(model: nn.Module) -> str:
    """SHA-256 of every parameter's bytes in name order: equal iff bit-identical."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class _Throughput:
    """Samples per second over the steps after warm-up, with checkpoint/eval time left out."""

    def __init__(self, warmup: int, samples_per_step: int, device: torch.device) -> None:
        self.warmup, self.samples_per_step, self.device = warmup, samples_per_step, device
        self.t0: float | None = None
        self.timed_steps = 0
        self.excluded = 0.0
        self._pause_t: float | None = None

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def mark(self, steps_this_run: int) -> None:
        """Call before the first step (0) and after every step (1, 2, ...)."""
        if steps_this_run == self.warmup:
            self.t0 = self._now()
        elif steps_this_run > self.warmup:
            self.timed_steps += 1

    @contextlib.contextmanager
    def paused(self):
        if self.t0 is None:
            yield
            return
        t = self._now()
        try:
            yield
        finally:
            self.excluded += self._now() - t

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"warmup_steps": self.warmup, "timed_steps": self.timed_steps,
                               "samples_per_step": self.samples_per_step}  # fmt: skip
        if self.t0 is None or self.timed_steps == 0:
            note = "no steps after warm-up: raise max_steps or lower warmup_steps"
            out.update(samples_per_s=None, seconds=0.0, note=note)
            return out
        seconds = self._now() - self.t0 - self.excluded
        out.update(
            seconds=seconds,
            samples_per_s=self.timed_steps * self.samples_per_step / seconds,
            step_ms=1000 * seconds / self.timed_steps,
        )
        return out


def _autocast(cfg: Config, device: torch.device):
    use = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use), use


def _optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    t = cfg.train
    if t.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum,
                               weight_decay=t.weight_decay)  # fmt: skip
    return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)


# Config keys that define the experiment: a checkpoint written under other values is
# refused on resume. Loading it would silently mix two runs (``opt.load_state_dict``
# brings back the old lr, weight decay and momentum while metrics.json records the new
# ones). Keys left out may change between a run and its resume: where files go, logging,
# length of the run (epochs, max_steps), device, threads, compile, workers, cache.
_RESUME_KEYS = (
    "seed",
    *(f"data.{k}" for k in ("kind", "n_train", "n_test", "n_classes", "sensor", "time_bins",
                            "dt_us", "spike_rate", "pool_size")),
    *(f"model.{k}" for k in ("arch", "layer", "hidden", "channels", "pool", "beta",
                             "threshold", "surrogate_slope")),
    *(f"train.{k}" for k in ("optimizer", "lr", "momentum", "weight_decay", "grad_clip")),
)  # fmt: skip


def _config_mismatch(saved: dict[str, Any], cfg: Config, saved_world: int,
                     world: int) -> list[str]:  # fmt: skip
    """``key: checkpoint value != this run's value`` for every experiment key that differs.

    The batch is compared as the global batch (``data.batch_size`` x processes): a run
    may resume on another number of processes with the per-process batch scaled to match.
    """
    now = cfg.to_dict()
    out = []
    for key in _RESUME_KEYS:
        head, _, tail = key.rpartition(".")
        old = (saved.get(head, {}) if head else saved).get(tail)
        new = now[head][tail] if head else now[tail]
        if old != new:
            out.append(f"{key}: {old!r} != {new!r}")
    old_g = saved.get("data", {}).get("batch_size", 0) * saved_world
    if old_g != cfg.data.batch_size * world:
        out.append(f"global batch (data.batch_size x processes): {old_g} != "
                   f"{cfg.data.batch_size * world}")  # fmt: skip
    return out


def _loader_generator(seed: int, rank: int, epoch: int, split: int) -> torch.Generator:
    """A generator of its own for one DataLoader (``split`` 0 = train, 1 = test).

    Without one, every ``iter(DataLoader)`` draws its worker base seed from the global
    torch RNG, so a resumed run (which starts a fresh iterator part-way through an
    epoch) would leave the global stream one draw off the uninterrupted run's, and
    evaluation would shift the training stream.
    """
    state = np.random.SeedSequence([seed, rank, epoch, split]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _progress(total: int, initial: int, enabled: bool):
    from .._progress import progress_bar

    return progress_bar(total=total, enabled=enabled, initial=initial, desc="training")


def _set_threads(n: int) -> None:
    """Threads per process for torch (``n > 0``) and for the Numba CPU kernels.

    Numba's parallel kernels start one thread per core in every process; several
    processes on one host then fight over the cores (seen here: 2 gloo ranks on 2 cores
    ran several times slower). ``n = 0`` caps Numba at cores / local processes.
    """
    if n:
        torch.set_num_threads(n)
    else:
        n = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    try:
        import numba

        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    except (ImportError, ValueError):  # pragma: no cover - numba is a dependency
        pass


class Trainer:
    """State of one run in this process; :func:`train` is the way in."""

    def __init__(self, cfg: Config, info: DistInfo) -> None:
        self.cfg, self.info, self.device = cfg, info, info.device
        _set_threads(cfg.threads)
        self.data: DataBundle = build_data(cfg.data, cfg.seed)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank, any world size
        self.model = build_model(cfg.model, self.data.input_shape, self.data.n_classes)
        self.model.to(self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # input shapes are fixed for the whole run
        self.opt = _optimizer(cfg, self.model)
        self.autocast, self.amp = _autocast(cfg, self.device)
        self.batch = cfg.data.batch_size
        self.sampler = GlobalBatchSampler(self.data.train, info.world_size, info.rank,
                                          self.batch, shuffle=True, seed=cfg.seed)  # fmt: skip
        if self.sampler.steps_per_epoch() == 0:
            raise ParameterError(
                f"data.batch_size={self.batch} x {info.world_size} processes is more than the "
                f"{len(self.data.train)} training samples: lower data.batch_size"
            )
        self.step, self.epoch, self.consumed = 0, 0, 0
        self.resumed_from: str | None = None
        self.resumed_checksum: str | None = None
        self.history: list[dict[str, Any]] = []
        self.test_accuracy: float | None = None
        self.compile_note: str | None = None
        # (step, epoch, history length) of the last save: the epoch end and the final
        # evaluation change epoch, history and test accuracy without a step, so the step
        # alone would skip those saves and leave a stale last.pt
        self._saved_at: tuple[int, int, int] | None = None
        # train metrics since the last log entry (loss * n, correct; samples on the host),
        # kept in checkpoints so the first entry after a resume covers the same steps
        self._window = torch.zeros(2, dtype=torch.float64, device=self.device)
        self._window_n = 0
        if not self._resume():
            seed_process(cfg.seed, info.rank)
        self.net: nn.Module = self._maybe_compile(self.model) if cfg.compile else self.model
        self.compiled = self.net is not self.model
        if info.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DDP(self.net, device_ids=ids)

    # ------------------------------------------------------------------ resume / save
    def _resume(self) -> bool:
        cfg = self.cfg
        if cfg.resume == "never":
            return False
        path = cfg.checkpoint_path if cfg.resume == "auto" else Path(cfg.resume)
        if not path.exists():
            if cfg.resume == "auto":
                return False
            raise ParameterError(f"config key 'resume' names {str(path)!r}, which does not exist")
        ckpt = load_checkpoint(path)
        if "config" in ckpt:
            diff = _config_mismatch(ckpt["config"], cfg, ckpt["world_size"],
                                    self.info.world_size)  # fmt: skip
            if diff:
                raise CheckpointError(
                    f"checkpoint {str(path)!r} was written by another experiment ("
                    + "; ".join(diff) + "): use another output_dir / checkpoint_dir, "
                    "or resume = 'never' to start afresh"
                )
        try:
            self.model.load_state_dict(ckpt["model"])
            self.opt.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(
                f"checkpoint {str(path)!r} does not fit this model / optimizer: {e}"
            ) from None
        self.step, self.epoch, self.consumed = ckpt["step"], ckpt["epoch"], ckpt["consumed"]
        self.history = list(ckpt.get("history", []))
        self.test_accuracy = ckpt.get("test_accuracy")
        self.resumed_from = str(path)
        self.resumed_checksum = param_checksum(self.model)
        self._saved_at = (self.step, self.epoch, len(self.history))
        windows = ckpt.get("window")  # absent in checkpoints written before it was kept
        if ckpt["world_size"] == self.info.world_size:
            set_rng_state(ckpt["rng"][self.info.rank])
            if windows is not None:
                *w, self._window_n = windows[self.info.rank]
                self._window += torch.tensor(w, dtype=torch.float64, device=self.device)
        else:  # another number of processes: fresh per-rank streams, still repeatable
            seed_process(cfg.seed, self.info.rank, self.step)
            if windows is not None and self.info.is_main:  # only the sum over ranks counts
                *w, self._window_n = (sum(col) for col in zip(*windows))
                self._window += torch.tensor(w, dtype=torch.float64, device=self.device)
        return True

    def save(self) -> None:
        """Write ``last.pt`` (rank 0); every rank contributes its RNG state."""
        if self._saved_at == (self.step, self.epoch, len(self.history)):
            return
        self._saved_at = (self.step, self.epoch, len(self.history))
        rngs = all_gather_object(rng_state(), self.info)
        windows = all_gather_object([*self._window.tolist(), self._window_n], self.info)
        if self.info.is_main:
            atomic_save({
                "format": FORMAT, "step": self.step, "epoch": self.epoch,
                "consumed": self.consumed, "world_size": self.info.world_size,
                "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "rng": rngs, "window": windows, "history": self.history,
                "test_accuracy": self.test_accuracy, "config": self.cfg.to_dict(),
            }, self.cfg.checkpoint_path)  # fmt: skip

    # ------------------------------------------------------------------ compile
    def _maybe_compile(self, model: nn.Module) -> nn.Module:
        """``torch.compile(model)``, tried on one batch; eager with a warning if it fails.

        The trial runs before the DDP wrap, so a failure leaves no collective half done.
        """
        n = min(self.batch, len(self.data.train))
        x, y = batch_to_device(self.data.train,
                               self.data.collate([self.data.train[i] for i in range(n)]),
                               self.device)  # fmt: skip
        try:
            compiled = torch.compile(model, backend=self.cfg.compile_backend)
            with self.autocast:
                loss = spike_count_loss(compiled(x), y)
            loss.backward()
        except Exception as e:  # dynamo/inductor errors have no common base class
            self.compile_note = f"torch.compile failed, running eager: {type(e).__name__}: {e}"
            warnings.warn(self.compile_note[:500], RuntimeWarning, stacklevel=2)
            compiled = model
        model.zero_grad(set_to_none=True)
        return compiled

    # ------------------------------------------------------------------ steps
    def _loader(self, dataset, sampler, generator: torch.Generator) -> DataLoader:
        workers = self.cfg.data.num_workers
        return DataLoader(dataset, batch_size=self.batch, sampler=sampler, num_workers=workers,
                          collate_fn=self.data.collate, drop_last=False, generator=generator,
                          pin_memory=self.device.type == "cuda")  # fmt: skip

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.net.train()
        with self.autocast:
            out = self.net(x)
            loss = spike_count_loss(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.train.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.opt.step()
        correct = (out.detach().sum(0).argmax(1) == y).sum()
        return loss.detach() * y.shape[0], correct

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Test accuracy over the whole test set, every rank scoring its share."""
        test = self.data.test
        if test is None:
            return None
        sampler = GlobalBatchSampler(test, self.info.world_size, self.info.rank, None,
                                     shuffle=False)  # fmt: skip
        self.model.eval()
        tally = torch.zeros(2, dtype=torch.float64, device=self.device)
        gen = _loader_generator(self.cfg.seed, self.info.rank, 0, 1)
        for batch in self._loader(test, sampler, gen):
            x, y = batch_to_device(test, batch, self.device)
            with self.autocast:
                out = self.model(x)  # the plain module: ranks may run different batch counts
            tally[0] += (out.sum(0).argmax(1) == y).sum()
            tally[1] += y.shape[0]
        all_reduce_sum(tally, self.info)
        return float(tally[0] / tally[1])

    # ------------------------------------------------------------------ the loop
    def run(self, on_step: Callable[[int], None] | None = None) -> TrainResult:
        cfg, info, t = self.cfg, self.info, self.cfg.train
        g = self.sampler.global_batch
        max_steps = t.max_steps or math.inf
        per_epoch = self.sampler.steps_per_epoch()
        left_now = self.sampler.steps_per_epoch(self.consumed) if self.epoch < t.epochs else 0
        total = self.step + left_now + max(0, t.epochs - self.epoch - 1) * per_epoch
        total = int(min(total, max_steps))
        bar = _progress(total, self.step, cfg.progress and info.is_main)
        timer = _Throughput(t.warmup_steps, g, self.device)
        window = self._window  # loss * n, correct; samples in self._window_n (no sync per step)
        steps_this_run = 0
        timer.mark(0)
        while self.epoch < t.epochs and self.step < max_steps:
            self.sampler.set_epoch(self.epoch)
            self.sampler.set_start(self.consumed)
            gen = _loader_generator(cfg.seed, info.rank, self.epoch, 0)
            for batch in self._loader(self.data.train, self.sampler, gen):
                x, y = batch_to_device(self.data.train, batch, self.device)
                loss_sum, correct = self.train_step(x, y)
                window += torch.stack([loss_sum.double(), correct.double()])
                self._window_n += y.shape[0]
                self.step += 1
                self.consumed += g
                steps_this_run += 1
                timer.mark(steps_this_run)
                if bar is not None:
                    bar.update(1)
                if self.step % t.log_every == 0:
                    self._log(window, bar)
                if t.checkpoint_every and self.step % t.checkpoint_every == 0:
                    with timer.paused():
                        self.save()
                if on_step is not None:
                    on_step(self.step)
                if self.step >= max_steps:
                    break
            if len(self.data.train) - self.consumed < g:  # no whole global batch left
                self.epoch += 1
                self.consumed = 0
                with timer.paused():
                    if t.eval:
                        self.test_accuracy = self.evaluate()
                        self.history.append({"step": self.step, "epoch": self.epoch,
                                             "test_accuracy": self.test_accuracy})  # fmt: skip
                    self.save()
        if bar is not None:
            bar.close()
        if self._window_n:
            self._log(window, None)
        throughput = timer.result()
        if t.eval and not any(h.get("step") == self.step and "test_accuracy" in h
                              for h in self.history):  # fmt: skip
            # max_steps stopped the run inside an epoch: test_accuracy was the last epoch
            # end's, not that of the model this run returns and saves
            self.test_accuracy = self.evaluate()
            self.history.append({"step": self.step, "epoch": self.epoch,
                                 "test_accuracy": self.test_accuracy})  # fmt: skip
        self.save()
        return TrainResult(self.step, self.epoch, self.model, self._metrics(throughput))

    def _log(self, window: torch.Tensor, bar) -> None:
        n = torch.tensor([float(self._window_n)], dtype=torch.float64, device=self.device)
        totals = all_reduce_sum(torch.cat([window, n]), self.info).tolist()
        window.zero_()
        self._window_n = 0
        if totals[2] == 0:
            return
        entry = {"step": self.step, "epoch": self.epoch, "loss": totals[0] / totals[2],
                 "train_accuracy": totals[1] / totals[2]}  # fmt: skip
        self.history.append(entry)
        if not self.info.is_main:
            return
        if bar is not None and not bar.disable:
            bar.set_postfix(loss=f"{entry['loss']:.3f}", acc=f"{entry['train_accuracy']:.3f}")
        elif self.cfg.progress:
            print(f"step {self.step} loss {entry['loss']:.4f} "
                  f"acc {entry['train_accuracy']:.3f}", flush=True)  # fmt: skip

    def _metrics(self, throughput: dict[str, Any]) -> dict[str, Any]:
        info = self.info
        checksums = all_gather_object(param_checksum(self.model), info)
        last = next((h for h in reversed(self.history) if "loss" in h), {})
        return {
            "world_size": info.world_size,
            "backend": info.backend,
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device)
            if self.device.type == "cuda" else "cpu",
            "torch": torch.__version__,
            "amp": "bf16" if self.amp else "off",
            "compiled": self.compiled,
            "compile_note": self.compile_note,
            "step": self.step,
            "epoch": self.epoch,
            "resumed_from": self.resumed_from,
            "resumed_checksum": self.resumed_checksum,  # parameters as loaded
            "neuron_kernel": "numba" if registry.use_kernel("lif_sequence", self.device.type)
            else "torch reference",
            "train_loss": last.get("loss"),
            "train_accuracy": last.get("train_accuracy"),
            "test_accuracy": self.test_accuracy,
            "throughput": throughput,
            "param_checksums": checksums,
            "params_identical_on_all_ranks": len(set(checksums)) == 1,
            "checkpoint": str(self.cfg.checkpoint_path),
            "history": self.history,
            "config": self.cfg.to_dict(),
        }


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write JSON through a temporary file and ``os.replace`` (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def train(cfg: Config, on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Run the job ``cfg`` describes in this process (one rank under ``torchrun``).

    Parameters
    ----------
    cfg
        A validated :class:`~neurosparse.train.config.Config`.
    on_step
        Called with the global step number after every optimizer step (and after the
        checkpoint of that step, if one is due).

    Returns
    -------
    TrainResult
        Final step and epoch, the trained (unwrapped) model, and the metrics rank 0
        writes to ``cfg.metrics_path``.
    """
    info = init_distributed(cfg.device)
    try:
        result = Trainer(cfg, info).run(on_step)
        if info.is_main:
            write_json(result.metrics, cfg.metrics_path)
        return result
    finally:
        shutdown(info)


# public API (re-exported by neurosparse.train); write_json is the CLI's, imported by name
__all__ = ["train", "Trainer", "TrainResult", "param_checksum"]
