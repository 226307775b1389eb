"""``neurosparse.data`` and ``neurosparse.train`` re-export their submodules' ``__all__``.

The packages hold no name list of their own, so these tests pin what that must keep: every
public name stays reachable from the package as the same object, the package ``__all__``
is sorted and has no repeats, and no name public before the lists were merged was lost.
"""

from __future__ import annotations

import importlib

import pytest

# Public before the packages re-exported their submodules' lists (the 2026-12-05 tree).
BEFORE = {
    "neurosparse.data": [
        "load_sample", "SyntheticDVS", "EVENT_DTYPE", "EventArray", "make_events", "FORMATS",
        "MAX_SIDE", "detect_format", "open_events", "read_events", "iter_events",
        "write_nmnist", "write_aedat2", "write_aedat3", "write_evt2", "write_evt3",
        "write_hdf5", "ToSpikeTensor", "ToFrame", "ToVoxelGrid", "ToTimeSurface", "Denoise",
        "Downsample", "Crop", "TimeWindow", "pad_time", "pack_time", "EventFolder", "NMNIST",
        "NCaltech101", "TonicDataset", "DVSGesture", "SHD", "CIFAR10DVS", "POKERDVS",
        "CachedDataset",
    ],
    "neurosparse.train": [
        "Config", "DataConfig", "ModelConfig", "OptimConfig", "load_config", "train",
        "Trainer", "TrainResult", "param_checksum", "build_model", "SpikingMLP", "ConvSNN",
        "atomic_save", "load_checkpoint",
    ],
}
SUBMODULES = {
    "neurosparse.data": ["collate", "datasets", "events", "io", "samples", "synthetic",
                         "transforms", "writers"],
    "neurosparse.train": ["checkpoint", "config", "loop", "models"],
}
# names taken out of a submodule's __all__ (helpers of the package itself): still importable
BY_NAME = {
    "neurosparse.data.transforms": ["spikes_reference"],
    "neurosparse.data.datasets": ["cache_key"],
    "neurosparse.train.checkpoint": ["safe_load", "to_plain", "from_plain", "FORMAT"],
    "neurosparse.train.config": ["config_from_dict", "apply_overrides", "validate"],
    "neurosparse.train.loop": ["write_json"],
    "neurosparse.train.models": ["per_step", "spike_count_loss"],
}


@pytest.mark.parametrize("package", sorted(SUBMODULES))
def test_every_submodule_name_is_reachable_from_the_package(package):
    pkg = importlib.import_module(package)
    for sub in SUBMODULES[package]:
        mod = importlib.import_module(f"{package}.{sub}")
        for name in mod.__all__:
            assert name in pkg.__all__, f"{package}.{sub}.{name} missing from {package}.__all__"
            assert getattr(pkg, name) is getattr(mod, name), f"{package}.{name} is another object"


@pytest.mark.parametrize("package", sorted(SUBMODULES))
def test_package_all_is_sorted_unique_and_resolves(package):
    pkg = importlib.import_module(package)
    names = list(pkg.__all__)
    assert names == sorted(set(names))
    assert not [n for n in names if not hasattr(pkg, n)]
    assert not set(BEFORE[package]) - set(names), "a public name was dropped"


def test_star_import_gives_exactly_all():
    space: dict = {}
    exec("from neurosparse.data import *", space)
    import neurosparse.data as data

    assert set(space) - {"__builtins__"} == set(data.__all__)


@pytest.mark.parametrize("module", sorted(BY_NAME))
def test_package_helpers_stay_importable_by_name(module):
    mod = importlib.import_module(module)
    for name in BY_NAME[module]:
        assert hasattr(mod, name), f"{module}.{name}"
