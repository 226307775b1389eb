"""Where the real recordings are found, and how they are fetched and verified (offline:
the download path is exercised on a local ``file://`` mirror)."""

import hashlib
import shutil
from pathlib import Path

import pytest

from neurosparse.data import fetch_recordings as fr
from neurosparse.errors import EventFileError

REAL = fr.data_dir()


def test_manifest_matches_itself():
    items = fr.recordings()
    assert len(items) == 30 and len({r.path for r in items}) == 30
    assert sum(r.size for r in items) == 9_186_531  # PROVENANCE.md's total
    for r in items:
        assert len(r.sha256) == 64 and len(r.commit) == 40 and "/" in r.repo
        assert r.url.startswith("https://raw.githubusercontent.com/")


@pytest.mark.skipif(fr.missing_reason() is not None, reason=str(fr.missing_reason()))
def test_the_recordings_here_verify():
    assert fr.verify(REAL) == {}


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(fr.ENV, str(tmp_path))
    assert fr.data_dir() == tmp_path
    assert fr.missing_reason() is None
    reason = fr.missing_reason("nmnist")
    assert str(tmp_path / "nmnist") in reason and "fetch_recordings" in reason


def _mirror(tmp_path: Path, items) -> str:
    """A local copy laid out as raw.githubusercontent.com serves it."""
    for r in items:
        src = tmp_path / "mirror" / r.repo / r.commit / r.source_path
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(b"x" * 5)
    return (tmp_path / "mirror").as_uri()


def _item(name: str, data: bytes) -> fr.Recording:
    return fr.Recording(f"sub/{name}", len(data), hashlib.sha256(data).hexdigest(),
                        "owner/repo", "0" * 40, f"files/{name}.raw", "MIT")


def test_fetch_keeps_verified_downloads_and_rejects_altered_ones(tmp_path):
    good, bad = _item("good.bin", b"x" * 5), _item("bad.bin", b"y" * 5)
    base = _mirror(tmp_path, [good, bad])  # the mirror holds b"xxxxx" for both
    dest = tmp_path / "dest"
    with pytest.raises(EventFileError, match=r"1 of 2 recordings not fetched: sub/bad.bin"):
        fr.fetch(dest, [good, bad], base_url=base, log=lambda s: None)
    assert (dest / good.path).read_bytes() == b"x" * 5
    assert not (dest / bad.path).exists()  # neither under its name nor as a .part
    assert not list(dest.rglob("*.part"))
    assert fr.verify(dest, [good, bad]) == {bad.path: "missing"}
    # a second run downloads only what is missing or wrong
    assert fr.fetch(dest, [good], base_url=base, log=lambda s: None) == []


def test_verify_names_each_problem(tmp_path):
    a, b, c = _item("a", b"abc"), _item("b", b"def"), _item("c", b"ghi")
    (tmp_path / "sub").mkdir()
    (tmp_path / a.path).write_bytes(b"abc")
    (tmp_path / b.path).write_bytes(b"deff")
    (tmp_path / c.path).write_bytes(b"GHI")
    assert fr.verify(tmp_path, [a, b, c]) == {
        b.path: "size 4 bytes, expected 3", c.path: "SHA-256 differs from the listed one"}


@pytest.mark.skipif(fr.missing_reason("nmnist") is not None,
                    reason=str(fr.missing_reason("nmnist")))
def test_a_real_recording_with_one_byte_changed_fails(tmp_path):
    r = next(r for r in fr.recordings() if r.path.startswith("nmnist/"))
    copy = tmp_path / r.path
    copy.parent.mkdir(parents=True)
    shutil.copyfile(REAL / r.path, copy)
    assert fr.verify(tmp_path, [r]) == {}
    data = bytearray(copy.read_bytes())
    data[100] ^= 1
    copy.write_bytes(bytes(data))
    assert fr.verify(tmp_path, [r]) == {r.path: "SHA-256 differs from the listed one"}


def test_check_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(fr.ENV, str(tmp_path))
    assert fr.main(["--check"]) == 1
    assert "0 of 30 recordings verified" in capsys.readouterr().out
