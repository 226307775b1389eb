"""neurosparse.train config: TOML + flags, and errors that name the offending key."""

from pathlib import Path

import pytest

from neurosparse.errors import ParameterError
from neurosparse.train.__main__ import main
from neurosparse.train.config import Config, load_config

CONFIGS = Path(__file__).resolve().parent.parent / "examples" / "configs"


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("name", ["synthetic", "nmnist", "dvs_conv"])
def test_example_configs_load(name):
    cfg = load_config(CONFIGS / f"{name}.toml", ["--data.root", "x"])
    assert isinstance(cfg, Config)
    assert cfg.data.kind == {"synthetic": "synthetic", "nmnist": "nmnist",
                             "dvs_conv": "random"}[name]  # fmt: skip


def test_dvs_conv_config_is_the_issue_workload():
    cfg = load_config(CONFIGS / "dvs_conv.toml")
    assert cfg.data.sensor == [128, 128, 2]
    assert (cfg.data.time_bins, cfg.data.batch_size, cfg.model.arch) == (100, 32, "conv")


def test_file_values_and_flag_overrides(tmp_path):
    p = write(tmp_path, 'seed = 3\n[data]\nbatch_size = 7\nsensor = [16, 12, 2]\n'
                        '[train]\nlr = 1\n')  # fmt: skip
    cfg = load_config(p, ["--max-steps", "9", "--data.sensor", "8,8,2", "--compile",
                          "--train.lr=0.5", "--resume", "never", "--num-workers", "3"])  # fmt: skip
    assert cfg.seed == 3 and cfg.data.batch_size == 7
    assert cfg.train.max_steps == 9 and cfg.data.sensor == [8, 8, 2]
    assert cfg.compile is True and cfg.resume == "never" and cfg.data.num_workers == 3
    assert cfg.train.lr == 0.5 and isinstance(cfg.train.lr, float)  # int 1 was accepted too


@pytest.mark.parametrize(
    "text, key",
    [
        ("sed = 1\n", "sed"),
        ("[data]\nbatchsize = 4\n", "data.batchsize"),
        ("[modle]\nhidden = 4\n", "modle"),
        ("[model]\nhidden = '4'\n", "model.hidden"),
        ("[model]\nhidden = 4.0\n", "model.hidden"),
        ("[train]\nlr = true\n", "train.lr"),
        ("[data]\nbatch_size = true\n", "data.batch_size"),
        ("compile = 1\n", "compile"),
        ("[data]\nsensor = [32, 32.5, 2]\n", "data.sensor"),
        ("[data]\nkind = 'mnist'\n", "data.kind"),
        ("[data]\nbatch_size = 0\n", "data.batch_size"),
        ("[model]\nbeta = 1.5\n", "model.beta"),
        ("[data]\nsensor = [32, 32]\n", "data.sensor"),
        ("model = 3\n", "model"),
        # NaN passes every range check (comparisons with it are false); inf is no rate
        ("[train]\nlr = nan\n", "train.lr"),
        ("[model]\nbeta = nan\n", "model.beta"),
        ("[train]\nlr = inf\n", "train.lr"),
        ("[data]\nspike_rate = -nan\n", "data.spike_rate"),
        ("seed = -1\n", "seed"),
    ],
)
def test_bad_file_raises_parameter_error_naming_key(tmp_path, text, key):
    with pytest.raises(ParameterError, match=repr(key).replace("[", r"\[")):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    "flags, name",
    [
        (["--max-stepz", "3"], "max_stepz"),
        (["--data.bogus", "1"], "data.bogus"),
        (["--max-steps", "three"], "train.max_steps"),
        (["--compile", "maybe"], "compile"),
        (["--data.sensor", "a,b"], "data.sensor"),
        (["--train.lr"], "train.lr"),
        (["--model.beta", "nan"], "model.beta"),
        (["--grad-clip", "inf"], "train.grad_clip"),
    ],
)
def test_bad_flag_raises_parameter_error_naming_key(flags, name):
    with pytest.raises(ParameterError, match=name):
        load_config(None, flags)


def test_unknown_key_suggests_the_close_one(tmp_path):
    with pytest.raises(ParameterError, match="did you mean 'data.batch_size'"):
        load_config(write(tmp_path, "[data]\nbatch_sise = 4\n"))


def test_cli_reports_config_error_and_exits_2(tmp_path, capsys):
    rc = main(["--config", str(write(tmp_path, "[train]\nepochs = 'x'\n"))])
    assert rc == 2
    assert "train.epochs" in capsys.readouterr().err
