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


# Another valid value of every identity field, for the walk below (a new identity field needs one here).
OTHER_VALUE = {
    "dataset": "fashion_mnist",
    "model": "dense",
    "loss": "hinge",
    "noise_dim": 64,
    "batch_size": 128,
    "recipe": "dcgan-paper",
    "learning_rate": 3e-4,
    "g_learning_rate": 3e-4,
    "d_learning_rate": 3e-4,
    "lr_schedule": "linear",
    "r1": 1.0,
    "spectral_norm": True,
    "augment": "cutout",
    "ema_half_life": 5000.0,
    "beta1": 0.5,
    "beta2": 0.99,
    "train_size": 1024,
    "seed": 7,
    "critic_steps": 2,
    "precision": "mixed_bfloat16",
    "epochs": 50,
    "ema_decay": 0.999,
    "top_k": 0.25,
    "top_k_decay": 0.9,
    "g_width": 2.0,
    "d_width": 2.0,
    "clusters": 12,
    "recluster_every": 2,
}


def test_every_flag_is_identity_a_free_change_or_a_branch_change_and_the_docs_say_which():
    """Walks every field of TrainConfig, so that the next flag cannot slip past the resume check."""
    from dcgan_tf.config import BRANCH_MAY_CHANGE, FREE_TO_CHANGE, IDENTITY_WHERE, RUN_IDENTITY

    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    groups = (set(RUN_IDENTITY), set(IDENTITY_WHERE), set(FREE_TO_CHANGE))
    for name in fields:
        assert sum(name in group for group in groups) == 1, f"{name} must be in exactly one group"
    assert set().union(*groups) == set(fields)
    assert set(BRANCH_MAY_CHANGE) <= set(RUN_IDENTITY)

    # A decaying schedule, top-k and self-conditioning: --epochs, --top-k-decay and the clustering are identity.
    base = {"lr_schedule": "cosine", "top_k": 0.5, "model": "self-conditioned"}
    saved = json.loads(TrainConfig(**base).to_json())
    for name in (*RUN_IDENTITY, *IDENTITY_WHERE):
        flags = {**base, name: OTHER_VALUE[name]}
        if name == "lr_schedule":
            flags["lr_schedule"] = "linear"
        changed = TrainConfig(**flags).conflicts_with(saved)
        assert any(c.startswith(f"{name}=") for c in changed), name
        branch = TrainConfig(**flags, checkpoint="ckpt-1").conflicts_with(saved)
        assert any(c.startswith(f"{name}=") for c in branch) == (name not in BRANCH_MAY_CHANGE), name
    # Where an IDENTITY_WHERE field does not apply, it is free.
    constant = json.loads(TrainConfig().to_json())
    assert TrainConfig(epochs=50).conflicts_with(constant) == []
    half_life = json.loads(TrainConfig(ema_half_life=5000.0).to_json())
    assert TrainConfig(ema_half_life=5000.0, ema_decay=0.999).conflicts_with(half_life) == []
    with pytest.raises(DcganError, match="--top-k-decay is for --top-k below 1"):  # it would change nothing
        TrainConfig(top_k_decay=0.5)
    free_values = {"data": "elsewhere.npz", "max_minutes": 5.0, "checkpoint_every": 3, "log_every": 2, "eval_every": 4,
                   "evaluator_dir": "e", "strategy": "mirrored", "jit_compile": True, "dry_run": True,
                   "fresh": True, "checkpoint": "ckpt-3", "checkpoint_dir": "c",
                   "output_dir": "o", "logdir": "l"}  # fmt: skip
    assert set(free_values) | {"mixed_precision"} == set(FREE_TO_CHANGE)
    # The shorthand is recorded as what it stands for, which is identity.
    assert TrainConfig(mixed_precision=True).conflicts_with(constant) == ["precision='float32' (now 'mixed_float16')"]
    for name, value in free_values.items():
        assert TrainConfig(**{name: value}).conflicts_with(constant) == [], name

    # docs/training.md's resume rules name every free flag, every conditional one and every branch change.
    docs = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    rules = docs[docs.index("### What a resume may change") :]
    rules = rules[: rules.index("\n## ")]
    for name in (*FREE_TO_CHANGE, *IDENTITY_WHERE, *BRANCH_MAY_CHANGE, *RUN_IDENTITY):
        assert f"--{name.replace('_', '-')}" in rules, name


def test_a_wrong_flag_gets_one_usage_line_the_error_and_see_help():
    import subprocess
    import sys

    for tool in ("train", "sample", "interpolate", "export", "evaluate", "compare", "diagrams"):
        result = subprocess.run(
            [sys.executable, "-m", f"dcgan_tf.{tool}", "--no-such-flag"], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, tool
        assert result.stderr.splitlines() == [
            f"usage: python -m dcgan_tf.{tool} [options]",
            f"error: unrecognized arguments: --no-such-flag (see python -m dcgan_tf.{tool} --help)",
        ], result.stderr


def test_tensorflows_start_up_notes_are_hidden_and_anything_else_shows(capfd, monkeypatch):
    import os

    from dcgan_tf.startup import quietly, verbose

    notes = (
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        b"I0000 00:00:17.95 4572 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
        b"E0000 00:00:17.96 4572 cuda_executor.cc:1309] INTERNAL: CUDA error: failed call to cuInit\n"
    )
    quietly(lambda: os.write(2, notes + b"E0000 something real went wrong\n"))
    assert capfd.readouterr().err == "E0000 something real went wrong\n"
    monkeypatch.setenv("DCGAN_TF_VERBOSE", "yes")
    with pytest.raises(DcganError, match="DCGAN_TF_VERBOSE='yes' is not 0 or 1"):
        verbose()
    monkeypatch.setenv("DCGAN_TF_VERBOSE", "1")
    assert verbose()
