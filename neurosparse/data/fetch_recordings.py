"""The small real event-camera recordings that the tests and examples read: where they
are, and how to download and verify them.

    python -m neurosparse.data.fetch_recordings [--dest DIR] [--check]

30 files, 9.2 MB: N-MNIST and N-Caltech101 samples, AEDAT 2/4, Prophesee DAT / EVT 2 /
EVT 3, Event Stream, HDF5 and a spiking-audio recording, each copied byte for byte out
of a public GitHub repository at a fixed commit (``recordings.json`` beside this file
names the repository, commit, path, licence, size and SHA-256 of every file). They are
not part of the package: their licences are their repositories' (GPL-2.0, GPL-3.0, MIT,
two unstated).

Where they are found (:func:`data_dir`): the folder in ``NEUROSPARSE_DATA_DIR`` when
that is set; otherwise ``../shared/data/dvs`` beside the source tree when that folder
exists; otherwise ``~/.cache/neurosparse/dvs``, where this script puts them by default.
Without them the tests that read them skip, saying so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import EventFileError

ENV = "NEUROSPARSE_DATA_DIR"
RAW_URL = "https://raw.githubusercontent.com"
_SOURCE_TREE = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "neurosparse" / "dvs"


@dataclass(frozen=True)
class Recording:
    path: str  # relative to the data folder
    size: int
    sha256: str
    repo: str
    commit: str
    source_path: str
    license: str

    @property
    def url(self) -> str:
        return f"{RAW_URL}/{self.repo}/{self.commit}/{self.source_path}"


def recordings() -> list[Recording]:
    """Every recording, as listed in ``recordings.json``."""
    doc = json.loads((Path(__file__).with_name("recordings.json")).read_text())
    return [Recording(**r) for r in doc["recordings"]]


def data_dir() -> Path:
    """The folder the recordings are read from (see the module docstring)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    beside = _SOURCE_TREE.parent / "shared" / "data" / "dvs"
    return beside if beside.is_dir() else CACHE


def missing_reason(sub: str = "") -> str | None:
    """``None`` when ``data_dir() / sub`` exists, else a skip reason saying how to get it."""
    where = data_dir() / sub
    if where.exists():
        return None
    return (f"real recordings not found at {where}: run `python -m "
            f"neurosparse.data.fetch_recordings` or set {ENV}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(root: Path, items: list[Recording] | None = None) -> dict[str, str]:
    """Check every recording under ``root``; returns ``{path: problem}`` (empty if all
    are present with the listed size and SHA-256)."""
    problems = {}
    for r in items if items is not None else recordings():
        p = Path(root) / r.path
        if not p.is_file():
            problems[r.path] = "missing"
        elif p.stat().st_size != r.size:
            problems[r.path] = f"size {p.stat().st_size} bytes, expected {r.size}"
        elif sha256(p) != r.sha256:
            problems[r.path] = "SHA-256 differs from the listed one"
    return problems


def fetch(dest: Path, items: list[Recording] | None = None, base_url: str = RAW_URL,
          log=print) -> list[str]:  # fmt: skip
    """Download the recordings missing or wrong under ``dest`` and verify each.

    A download is written to a temporary name and renamed only when its SHA-256 matches,
    so a failed or altered download never stands in for a recording. Returns the paths
    fetched; raises :class:`~neurosparse.errors.EventFileError` naming every file that
    could not be fetched or did not verify.
    """
    dest = Path(dest)
    items = items if items is not None else recordings()
    todo = [r for r in items if r.path in verify(dest, items)]
    failed, done = {}, []
    for r in todo:
        target = dest / r.path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        url = f"{base_url}/{r.repo}/{r.commit}/{r.source_path}"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as f:
                f.write(resp.read())
        except OSError as exc:
            failed[r.path] = f"download from {url} failed: {exc}"
            tmp.unlink(missing_ok=True)
            continue
        if tmp.stat().st_size != r.size or sha256(tmp) != r.sha256:
            failed[r.path] = f"{url} does not match the listed size / SHA-256; not kept"
            tmp.unlink()
            continue
        tmp.replace(target)
        done.append(r.path)
        log(f"fetched {r.path} ({r.size:,} bytes, {r.license})")
    if failed:
        raise EventFileError(f"{len(failed)} of {len(items)} recordings not fetched: " + "; ".join(
            f"{k}: {v}" for k, v in failed.items()))
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m neurosparse.data.fetch_recordings",
                                description=__doc__.splitlines()[0])
    p.add_argument("--dest", type=Path, default=None,
                   help=f"where to put them (default: ${ENV}, else {CACHE})")
    p.add_argument("--check", action="store_true",
                   help="only verify what is there (sizes and SHA-256); download nothing")
    args = p.parse_args(argv)
    dest = args.dest or (Path(os.environ[ENV]) if os.environ.get(ENV) else
                         (data_dir() if args.check else CACHE))
    if args.check:
        problems = verify(dest)
        for k, v in problems.items():
            print(f"{k}: {v}")
        print(f"{dest}: {len(recordings()) - len(problems)} of {len(recordings())} recordings "
              "verified")
        return 1 if problems else 0
    try:
        done = fetch(dest)
    except EventFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{dest}: {len(done)} fetched, all {len(recordings())} verified")
    if dest != data_dir():
        print(f"set {ENV}={dest} so that the tests and examples find them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
