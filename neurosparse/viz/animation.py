"""Event-frame animation: a recording as a sequence of ON-minus-OFF count images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_range
from ..errors import ParameterError
from ._common import axes


def event_frames(events: Any, frame_us: float, sensor_size=None) -> np.ndarray:
    """ON minus OFF event counts per pixel in consecutive windows: ``[F, H, W]`` int32.

    Windows of ``frame_us`` start at the first event; the last, partial one is kept, so
    every event is counted once (``np.abs(frames).sum()`` equals the event count when no
    pixel has both polarities in one window).
    """
    from ..data.events import sensor_size_of
    from ..data.transforms import ToFrame

    check_range("frame_us", frame_us, lo=1e-9)
    size = sensor_size_of(events, sensor_size)
    frames = ToFrame(sensor_size=size, time_window=frame_us, include_incomplete=True)(events)
    frames = frames.astype(np.int32)
    if frames.shape[1] == 1:  # polarities merged: counts only
        return frames[:, 0]
    return frames[:, 1] - frames[:, 0]


def _writer(path: Path, fps: int):
    from matplotlib import animation

    suffix = path.suffix.lower()
    if suffix == ".gif":
        return animation.PillowWriter(fps=fps)
    if suffix == ".mp4":
        if not animation.FFMpegWriter.isAvailable():
            raise ParameterError(
                f"cannot write {str(path)!r}: MP4 needs the ffmpeg program on PATH, which was "
                "not found; install ffmpeg or save as .gif"
            )
        return animation.FFMpegWriter(fps=fps)
    raise ParameterError(f"animation path must end in .gif or .mp4, got {str(path)!r}")


def save_animation(anim, path: str | Path, fps: int = 10) -> Path:
    """Write an animation as ``.gif`` (Pillow, always there) or ``.mp4`` (needs ffmpeg)."""
    path = Path(path)
    writer = _writer(path, fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    anim.save(str(path), writer=writer)
    return path


def event_animation(
    events: Any,
    frame_us: float = 10_000,
    sensor_size=None,
    ax=None,
    path: str | Path | None = None,
    fps: int = 10,
    title: str | None = None,
):
    """Animate a DVS recording as frames of ON (red) minus OFF (blue) events.

    Parameters
    ----------
    events
        Event array with fields t (µs), x, y, p, e.g. from
        :func:`~neurosparse.data.read_events` or a dataset.
    frame_us
        Length of each frame's time window in µs.
    sensor_size
        ``(W, H, P)``; default the array's own (readers attach it), else max + 1.
    ax
        Axes to draw on; a new figure when ``None``.
    path
        When given, the animation is also written there: ``.gif`` through matplotlib's
        ``PillowWriter``, ``.mp4`` through ``FFMpegWriter`` (needs ffmpeg).
    fps
        Frames per second of the saved file.
    title
        Title prefix (default ``"Events"``); the frame's time window is appended.

    Returns
    -------
    matplotlib.animation.FuncAnimation
        Keep a reference to it while it plays; in Jupyter, show it with
        ``IPython.display.HTML(anim.to_jshtml())``. Frame ``k`` shows
        :func:`event_frames` ``[k]``.
    """
    from matplotlib import animation

    if path is not None:
        _writer(Path(path), fps)  # fail on a bad path before building anything
    frames = event_frames(events, frame_us, sensor_size)
    fig, ax = axes(ax, (4, 4))
    lim = max(1, int(np.abs(frames).max(initial=0)))
    image = ax.imshow(frames[0], cmap="bwr", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xlabel("x (pixel)")
    ax.set_ylabel("y (pixel)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="ON - OFF events")
    head = title or "Events"

    def show(k: int):
        image.set_data(frames[k])
        ax.set_title(f"{head}: {k * frame_us / 1000:g}-{(k + 1) * frame_us / 1000:g} ms")
        return (image,)

    show(0)
    anim = animation.FuncAnimation(fig, show, frames=len(frames), interval=1000 / fps,
                                   blit=False, repeat=True)
    if path is not None:
        save_animation(anim, path, fps)
    return anim
