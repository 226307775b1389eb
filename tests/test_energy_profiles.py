"""Hardware profiles: loading, validation errors, and energy/latency = counts × constants."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from neurosparse.energy import Meter, list_profiles, load_profile
from neurosparse.errors import UnknownHardwareError

REQUIRED = {"cpu-45nm", "loihi", "spinnaker2", "truenorth", "speck", "gpu-a100-fp16"}
PROVENANCE = {"cpu-45nm": "estimate", "loihi": "pre-silicon", "spinnaker2": "measured-quoted",
              "truenorth": "measured-quoted", "speck": "lower-bound",
              "gpu-a100-fp16": "lower-bound"}


def _custom(**over) -> dict:
    prof = {
        "name": "toy", "execution": "event",
        "energy": {"synop_pj": 1.0, "mac_pj": 2.0, "neuron_update_pj": 3.0, "spike_pj": 5.0,
                   "weight_byte_pj": 0.5, "state_byte_pj": 0.25, "activation_byte_pj": 0.125,
                   "static_mw": 2.0},
        "latency": {"model": "event", "synop_ns": 1.0, "mac_ns": 2.0, "neuron_update_ns": 4.0,
                    "sync_ns": 100.0, "min_timestep_ns": 0.0, "cores": 8,
                    "neurons_per_core": 4},
    }
    for k, v in over.items():
        prof[k] = v
    return prof


def test_builtin_profiles_are_complete_and_cited():
    assert REQUIRED <= set(list_profiles())
    for name in list_profiles():
        p = load_profile(name)
        constants = set(p.energy) | (set(p.latency) - {"model"}) | set(p.capacity)
        assert constants <= set(p.sources), f"{name}: constants without a citation"
        for key, rng in p.uncertain.items():
            if rng:
                assert rng[0] <= p.value(key) <= rng[1]
        assert p.provenance == PROVENANCE[name], name


def test_withdrawn_loihi2_says_why():
    with pytest.raises(UnknownHardwareError, match="no per-operation energy") as exc:
        load_profile("loihi2")
    assert "known profiles" in str(exc.value).lower() and "loihi" in str(exc.value)


def test_unknown_name_lists_known_profiles():
    with pytest.raises(UnknownHardwareError, match="cpu-45nm, gpu-a100-fp16, loihi") as exc:
        load_profile("loihi3")
    assert "known profiles" in str(exc.value)
    with pytest.raises(UnknownHardwareError, match="execution suffix"):
        load_profile("loihi:sparse")


@pytest.mark.parametrize("mutate,match", [
    (lambda p: p["energy"].update(foo_pj=1.0), r"unknown key\(s\) \['foo_pj'\] in \[energy\]"),
    (lambda p: p["energy"].pop("mac_pj"), r"missing key\(s\) \['mac_pj'\] in \[energy\]"),
    (lambda p: p["energy"].update(synop_pj=-1.0), r"energy.synop_pj must be >= 0"),
    (lambda p: p["latency"].update(cores=0), r"latency.cores must be >= 1"),
    (lambda p: p.update(colour="red"), r"unknown key\(s\) \['colour'\] in \[top level\]"),
    (lambda p: p.update(execution="sparse"), r"execution must be one of"),
    (lambda p: p["latency"].update(model="magic"), r"latency.model must be one of"),
    (lambda p: p.update(uncertain={"synop_pj": [2.0, 3.0]}), r"low <= value"),
    (lambda p: p.update(uncertain={"nothing": True}), r"unknown key 'nothing' in \[uncertain\]"),
    (lambda p: p["energy"].update(spike_pj="1"), r"energy.spike_pj must be a number"),
])
def test_validation_errors_name_the_key(mutate, match):
    prof = _custom()
    mutate(prof)
    with pytest.raises(UnknownHardwareError, match=match):
        load_profile(prof)


def test_profile_files_toml_json_yaml(tmp_path):
    prof = _custom()
    js = tmp_path / "toy.json"
    js.write_text(json.dumps(prof))
    assert load_profile(str(js)).energy == load_profile(prof).energy
    toml = tmp_path / "toy.toml"
    e = "\n".join(f"{k} = {v}" for k, v in prof["energy"].items())
    lat = "\n".join(f"{k} = {json.dumps(v)}" for k, v in prof["latency"].items())
    toml.write_text(f'name = "toy"\nexecution = "event"\n[energy]\n{e}\n[latency]\n{lat}\n')
    assert load_profile(toml).latency == load_profile(prof).latency
    yml = tmp_path / "toy.yaml"
    yml.write_text("name: toy\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        with pytest.raises(UnknownHardwareError, match="PyYAML"):
            load_profile(str(yml))
    else:
        with pytest.raises(UnknownHardwareError, match="missing key"):
            load_profile(str(yml))
    with pytest.raises(UnknownHardwareError, match="does not exist"):
        load_profile(str(tmp_path / "nope.toml"))


def _run_small():
    torch.manual_seed(0)
    fc = nn.Linear(5, 3, bias=False)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = fc
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.fc(x))

    net = Net()
    x = (torch.rand(4, 2, 5) < 0.5).float()  # T=4, B=2
    with Meter(net, layout="TB") as m:
        net(x)
    return m, {c.name: c for c in m.counts()}


def test_energy_is_counts_times_constants():
    m, c = _run_small()
    fc, act = c["fc"].totals, c["act"].totals
    per = 1 / 2  # two samples
    rep = m.report(hardware=[_custom(), "cpu-45nm"], execution="both")
    res = {r.name: r for r in rep.hardware}
    lat = res["toy:event"].latency_s
    event = per * 1e-12 * (
        fc["synops"] * 1.0 + fc["macs"] * 2.0 + act["neuron_updates"] * 3.0
        + act["spikes"] * 5.0 + fc["weight_bytes_read"] * 0.5
        + (fc["state_bytes_rw"] + act["state_bytes_rw"]) * 0.25)
    assert res["toy:event"].dynamic_j == pytest.approx(event, rel=1e-12)
    # fc + act form one stage; 3 neurons on 1 of the toy chip's 8 cores
    assert res["toy:event"].cores == 1
    assert res["toy:event"].static_j == pytest.approx(2.0e-3 / 8 * lat, rel=1e-12)
    assert res["toy:event"].energy_j == pytest.approx(event + 2.0e-3 / 8 * lat, rel=1e-12)
    whole = m.report(hardware=[_custom()], static="chip").hardware[0]
    assert whole.static_j == pytest.approx(2.0e-3 * lat, rel=1e-12)  # the whole chip
    assert whole.dynamic_j == res["toy:event"].dynamic_j
    dense = per * 1e-12 * (
        fc["dense_macs"] * 4.6 + act["neuron_updates"] * 5.5
        + fc["dense_weight_bytes_read"] * 2.5
        + (fc["activation_bytes"] + act["activation_bytes"]) * 2.5)
    assert res["cpu-45nm:dense"].energy_j == pytest.approx(dense, rel=1e-12)
    ev45 = per * 1e-12 * (fc["synops"] * 0.9 + act["neuron_updates"] * 5.5
                          + fc["weight_bytes_read"] * 2.5)
    assert res["cpu-45nm:event"].energy_j == pytest.approx(ev45, rel=1e-12)
    cmp = {r["hardware"]: r for r in rep.comparison()}
    assert cmp["cpu-45nm"]["dense_over_event"] == pytest.approx(dense / ev45)
    # a profile without uncertain constants has an exact range
    assert res["toy:event"].energy_low_j == res["toy:event"].energy_high_j


def test_uncertain_range_uses_the_bounds():
    m, c = _run_small()
    r = m.report(hardware=["loihi"]).hardware[0]
    assert r.energy_low_j < r.energy_j < r.energy_high_j
    p = load_profile("loihi")
    tot = {k: (c["fc"].totals[k] + c["act"].totals[k]) / 2 for k in c["fc"].totals}
    keys = {"synops": "synop_pj", "macs": "mac_pj", "neuron_updates": "neuron_update_pj",
            "spikes": "spike_pj"}
    low = sum(tot[k] * p.bounds(v)[0] for k, v in keys.items()) * 1e-12  # static low = 0
    assert r.energy_low_j == pytest.approx(low, rel=1e-12)
    high_dyn = sum(tot[k] * p.bounds(v)[1] for k, v in keys.items()) * 1e-12
    # static power for 1 of Loihi's 128 cores
    assert r.energy_high_j == pytest.approx(high_dyn + 0.104 / 128 * r.latency_high_s,
                                            rel=1e-12)


def test_event_latency_model_by_hand():
    m, c = _run_small()
    r = m.report(hardware=[_custom()]).hardware[0]
    expected = 0.0
    for t in range(4):
        fc = {k: v[t] / 2 for k, v in c["fc"].per_step.items()}
        act = {k: v[t] / 2 for k, v in c["act"].per_step.items()}
        # fc and act form one stage: 3 neurons -> 1 core (4 neurons per core)
        t_fc = (fc["synops"] * 1.0 + fc["macs"] * 2.0) / 1
        t_act = act["neuron_updates"] * 4.0 / 1
        expected += t_fc + t_act + 100.0
    assert r.latency_s == pytest.approx(expected * 1e-9, rel=1e-12)
    assert r.edp_js == pytest.approx(r.energy_j * r.latency_s, rel=1e-12)


def test_roofline_latency_by_hand():
    m, c = _run_small()
    gpu = load_profile("gpu-a100-fp16")
    r = m.report(hardware=["gpu-a100-fp16"]).hardware[0]
    lat = gpu.latency
    expected = 0.0
    for t in range(4):
        for name in ("fc", "act"):
            s = {k: v[t] / 2 for k, v in c[name].per_step.items()}
            ops = s["dense_macs"] + s["neuron_updates"]
            nb = s["dense_weight_bytes_read"] + s["state_bytes_rw"] + s["activation_bytes"]
            expected += max(ops / lat["macs_per_s"], nb / lat["bytes_per_s"]) + 5e-6
    assert r.latency_s == pytest.approx(expected, rel=1e-12)
    assert r.chips == 1 and math.isfinite(r.energy_high_j)


def test_stages_pipeline_on_their_own_cores():
    """Two stages (fc1+act1 on 2 cores, fc2+act2 on 1): per step the slower stage plus the
    barrier, then one pipeline-fill step; static power for the 3 occupied cores of 8."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(6, 7, bias=False), nn.ReLU(),
                        nn.Linear(7, 2, bias=False), nn.ReLU())
    x = (torch.rand(3, 1, 6) < 0.6).float()  # T=3, B=1
    with Meter(net, layout="TB") as m:
        net(x)
    c = {layer.name: layer.per_step for layer in m.counts()}
    r = m.report(hardware=[_custom()]).hardware[0]
    assert (r.stages, r.cores) == (2, 3)
    steps = []
    for t in range(3):
        s1 = (c["0"]["synops"][t] + 2 * c["0"]["macs"][t] + 4 * c["1"]["neuron_updates"][t]) / 2
        s2 = c["2"]["synops"][t] + 2 * c["2"]["macs"][t] + 4 * c["3"]["neuron_updates"][t]
        steps.append(max(s1, s2) + 100.0)
    expected = sum(steps) * (1 + 1 / 3)  # + (stages - 1) mean steps of pipeline fill
    assert r.latency_s == pytest.approx(expected * 1e-9, rel=1e-12)
    assert r.static_j == pytest.approx(2e-3 * 3 / 8 * r.latency_s, rel=1e-12)


def _counts(name, kind, units, steps, **per_step):
    """LayerCounts with the same counts (over all samples) in each of ``steps`` steps."""
    from neurosparse.energy.counts import STEP_FIELDS, LayerCounts

    layer = LayerCounts(name=name, type="X", kind=kind, units=units)
    for key, v in per_step.items():
        layer.totals[key] = v * steps
        if key in STEP_FIELDS:
            layer.per_step[key] = [float(v)] * steps
    return layer


def test_chip_profiles_by_hand_and_bad_counts_refused():
    """4 samples, 10 steps; per step over the 4 samples: 400 synops, 40 MACs, 40 neuron
    updates, 8 spikes. Per inference that is 1000 synops, 100 MACs, 100 updates, 20 spikes."""
    from neurosparse.energy import estimate
    from neurosparse.errors import InputValueError

    fc = _counts("fc", "synaptic", 0, 10, synops=400, macs=40)
    lif = _counts("lif", "neuron", 10, 10, neuron_updates=40, spikes=8)
    tn = estimate([fc, lif], 4, 10, load_profile("truenorth"))
    assert tn.dynamic_j == pytest.approx(1100 * 26.0e-12, rel=1e-12)  # synops + MACs
    assert tn.latency_s == pytest.approx(10 * 1e-3, rel=1e-12)  # 1 kHz tick
    # high end: 21.7..26 pJ -> 26 pJ, plus all 63 mW for 1 of 4096 cores over 10 ms
    assert tn.energy_high_j == pytest.approx(1100 * 26e-12 + 63e-3 / 4096 * 10e-3, rel=1e-12)
    sp2 = estimate([fc, lif], 4, 10, load_profile("spinnaker2"))
    assert sp2.dynamic_j == pytest.approx((1100 * 450 + 100 * 2190) * 1e-12, rel=1e-12)
    loihi = estimate([fc, lif], 4, 10, load_profile("loihi"))
    # per step: (100 + 10) ops x 3.5 ns + 10 updates x 8.4 ns + 113 ns barrier
    assert loihi.latency_s == pytest.approx(10 * (110 * 3.5 + 10 * 8.4 + 113) * 1e-9,
                                            rel=1e-12)
    # zero samples used to be read as one: the run's totals printed as "per inference"
    with pytest.raises(InputValueError, match="samples must be an integer >= 1"):
        estimate([fc, lif], 0, 10, load_profile("loihi"))
    # a NaN count made every energy NaN, a negative one cancelled real work, silently
    for bad in (float("nan"), -5.0, float("inf")):
        broken = _counts("fc", "synaptic", 0, 10, synops=400, macs=40)
        broken.per_step["synops"][3] = bad
        with pytest.raises(InputValueError, match=r"layer 'fc': count 'synops'"):
            estimate([broken, lif], 4, 10, load_profile("loihi"))
    broken.totals["macs"] = -1
    broken.per_step["synops"][3] = 400.0
    with pytest.raises(InputValueError, match=r"count 'macs' = -1 must be a finite number"):
        estimate([broken, lif], 4, 10, load_profile("cpu-45nm"))
