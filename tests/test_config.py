"""The configuration dataclass: defaults from the design card, validation, one flag per field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from dcgan_tf.config import TrainConfig, build_parser, parse_config
from dcgan_tf.errors import DcganError


def test_defaults_are_the_design_cards():
    config = parse_config([])
    assert (config.epochs, config.batch_size, config.learning_rate, config.noise_dim) == (100, 256, 1e-4, 100)
    assert (config.checkpoint_dir, config.checkpoint_every) == ("training_checkpoints", 15)
    assert config.output_dir == "training_checkpoints"  # outputs live beside the checkpoints by default
    assert config.data is None  # download with Keras


def test_every_field_is_a_documented_flag_and_back():
    help_text = build_parser().format_help()
    for f in dataclasses.fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in help_text
    config = parse_config(
        "--data x.npz --epochs 3 --batch-size 32 --learning-rate 0.001 --noise-dim 8 --train-size 64 --seed 5 "
        "--checkpoint-dir c --checkpoint-every 2 --output-dir o --fresh --dry-run".split()
    )
    assert config == TrainConfig(
        data="x.npz",
        epochs=3,
        batch_size=32,
        learning_rate=0.001,
        noise_dim=8,
        train_size=64,
        seed=5,
        checkpoint_dir="c",
        checkpoint_every=2,
        output_dir="o",
        fresh=True,
        dry_run=True,
    )
    assert json.loads(config.to_json())["noise_dim"] == 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 4


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--batch-size", "-1"], "--batch-size must be a positive integer"),
        (["--noise-dim", "0"], "--noise-dim must be a positive integer"),
        (["--checkpoint-every", "0"], "--checkpoint-every must be a positive integer"),
        (["--learning-rate", "0"], "--learning-rate must be a positive number"),
        (["--learning-rate", "nan"], "--learning-rate must be a positive number"),
        (["--train-size", "100", "--batch-size", "256"], "smaller than --batch-size"),
    ],
)
def test_impossible_values_are_refused(flags, message):
    with pytest.raises(DcganError, match=message):
        parse_config(flags)


def test_conflicts_name_the_identity_fields_that_changed():
    saved = json.loads(TrainConfig().to_json())
    assert TrainConfig(epochs=200, checkpoint_every=5).conflicts_with(saved) == []
    assert TrainConfig(noise_dim=64).conflicts_with(saved) == ["noise_dim=100 (now 64)"]


def test_data_is_recorded_as_an_absolute_path(tmp_path, monkeypatch):
    # config.json names the dataset so evaluate finds it from any working folder.
    monkeypatch.chdir(tmp_path)
    assert TrainConfig(data="mnist.npz").data == str(tmp_path / "mnist.npz")
    assert TrainConfig(data="~/m.npz").data == str(Path.home() / "m.npz")


def test_a_relative_xdg_cache_home_is_ignored_as_the_spec_says(monkeypatch, tmp_path):
    from dcgan_tf.evaluator import default_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", "cache")
    assert default_cache_dir() == Path.home() / ".cache" / "dcgan_tf"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "dcgan_tf"
