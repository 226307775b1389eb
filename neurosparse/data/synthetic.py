"""``SyntheticDVS``: labelled DVS-like recordings the package generates itself.

Each sample is a bar sweeping across the sensor in one of ``n_classes`` directions
(class ``k`` moves at angle ``2 pi k / n_classes``, image y pointing down). The bar is
brighter or darker than the background at random, so the ON/OFF order of its edges
does not give the direction away in a single frame: a classifier has to integrate the
motion over time.
Events come from brightness change the way a DVS pixel makes them (Lichtsteiner et
al. 2008; the ESIM / v2e idea, simplified): every pixel keeps a reference log
intensity and emits an ON (OFF) event each time the log intensity rises (falls) by
its contrast threshold, which jitters from pixel to pixel; then uniform background
activity is added. The data is deterministic in ``(seed, index)``, so a dataset can be
rebuilt anywhere, in any worker, without files.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._checks import check_range
from ..errors import ParameterError
from .events import EVENT_DTYPE, EventArray

_DIRECTION_NAMES = {
    2: ["right", "left"],
    4: ["right", "down", "left", "up"],
    8: ["right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right"],
}


class SyntheticDVS(torch.utils.data.Dataset):
    """A dataset of moving-bar DVS recordings, ``(events, label)`` per item.

    Parameters
    ----------
    n_samples : int
        Number of recordings.
    n_classes : int
        Number of motion directions (>= 2).
    sensor_size : (W, H, P)
        Tonic-style sensor size; P must be 2 (ON/OFF).
    duration_us : int
        Length of each recording in microseconds.
    contrast : float
        Mean contrast threshold in log-intensity units (DVS pixels: ~0.15).
    noise_rate_hz : float
        Background-activity rate per pixel.
    seed : int
        Base seed; item ``i`` uses ``(seed, i)``.
    transform, target_transform : callable, optional
        Applied to the events / label, as in Tonic.
    """

    def __init__(
        self,
        n_samples: int = 512,
        n_classes: int = 4,
        sensor_size: tuple[int, int, int] = (32, 32, 2),
        duration_us: int = 100_000,
        contrast: float = 0.15,
        noise_rate_hz: float = 2.0,
        seed: int = 0,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
    ) -> None:
        check_range("n_samples", n_samples, lo=1)
        check_range("n_classes", n_classes, lo=2)
        check_range("duration_us", duration_us, lo=1000)
        check_range("contrast", contrast, lo=1e-3)
        check_range("noise_rate_hz", noise_rate_hz, lo=0.0)
        if len(sensor_size) != 3 or sensor_size[2] != 2 or min(sensor_size[:2]) < 4:
            raise ParameterError(
                f"sensor_size must be (W, H, 2) with W, H >= 4, got {tuple(sensor_size)}"
            )
        self.n_samples = int(n_samples)
        self.n_classes = int(n_classes)
        self.sensor_size = tuple(int(s) for s in sensor_size)
        self.duration_us = int(duration_us)
        self.contrast = float(contrast)
        self.noise_rate_hz = float(noise_rate_hz)
        self.seed = int(seed)
        self.transform = transform
        self.target_transform = target_transform
        self.classes = _DIRECTION_NAMES.get(
            self.n_classes, [f"{360 * k / self.n_classes:g}deg" for k in range(self.n_classes)]
        )

    def __len__(self) -> int:
        return self.n_samples

    def label(self, index: int) -> int:
        return index % self.n_classes

    def events(self, index: int) -> EventArray:
        """The recording of item ``index`` (before ``transform``)."""
        if not 0 <= index < self.n_samples:
            raise IndexError(f"index {index} out of range for {self.n_samples} samples")
        rng = np.random.default_rng([self.seed, index])
        return _render_bar(rng, self.label(index), self.n_classes, self.sensor_size,
                           self.duration_us, self.contrast, self.noise_rate_hz)  # fmt: skip

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        ev, label = self.events(index), self.label(index)
        if self.transform is not None:
            ev = self.transform(ev)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return ev, label


def _render_bar(
    rng: np.random.Generator,
    label: int,
    n_classes: int,
    sensor_size: tuple[int, int, int],
    duration_us: int,
    contrast: float,
    noise_rate_hz: float,
    frame_us: int = 1000,
) -> EventArray:
    W, H, _ = sensor_size
    angle = 2 * math.pi * label / n_classes + rng.normal(0, 0.15)
    ux, uy = math.cos(angle), math.sin(angle)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    s = (xs - (W - 1) / 2) * ux + (ys - (H - 1) / 2) * uy  # coordinate along the motion
    half = 0.5 * math.hypot(W, H)
    n_frames = max(2, duration_us // frame_us)
    speed = rng.uniform(0.6, 1.0) * 2 * half / n_frames  # pixels per frame
    start = rng.uniform(-half - 2, -half + 0.3 * half)
    width = rng.uniform(1.5, 3.0)
    bg, amp = 0.15, rng.uniform(0.6, 0.85)
    if rng.random() < 0.5:  # dark bar on a bright background
        bg, amp = bg + amp, -amp
    theta = np.clip(rng.normal(contrast, 0.03 * contrast / 0.15, size=(H, W)), contrast / 3, None)

    def log_image(f: int) -> np.ndarray:
        return np.log(bg + amp * np.exp(-(((s - start - speed * f) / width) ** 2)))

    ref = log_image(0)
    chunks_t, chunks_x, chunks_y, chunks_p = [], [], [], []
    for f in range(1, n_frames):
        diff = log_image(f) - ref
        n = np.floor(np.abs(diff) / theta).astype(np.int64)
        if not n.any():
            continue
        iy, ix = np.nonzero(n)
        counts = n[iy, ix]
        ref[iy, ix] += np.sign(diff[iy, ix]) * counts * theta[iy, ix]
        rep_y, rep_x = np.repeat(iy, counts), np.repeat(ix, counts)
        pol = (diff[rep_y, rep_x] > 0).astype(np.int8)
        t0 = (f - 1) * frame_us
        chunks_t.append(t0 + rng.integers(0, frame_us, size=rep_x.size))
        chunks_x.append(rep_x)
        chunks_y.append(rep_y)
        chunks_p.append(pol)
    n_noise = rng.poisson(noise_rate_hz * W * H * duration_us * 1e-6)
    chunks_t.append(rng.integers(0, duration_us, size=n_noise))
    chunks_x.append(rng.integers(0, W, size=n_noise))
    chunks_y.append(rng.integers(0, H, size=n_noise))
    chunks_p.append(rng.integers(0, 2, size=n_noise).astype(np.int8))

    t = np.concatenate(chunks_t)
    order = np.argsort(t, kind="stable")
    ev = np.empty(t.size, dtype=EVENT_DTYPE)
    ev["t"] = t[order]
    ev["x"] = np.concatenate(chunks_x)[order]
    ev["y"] = np.concatenate(chunks_y)[order]
    ev["p"] = np.concatenate(chunks_p)[order]
    return EventArray(ev, sensor_size, {"format": "synthetic", "label": label})


__all__ = ["SyntheticDVS"]
