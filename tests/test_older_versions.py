"""Runs saved by earlier versions of this project resume, sample and export, with checkpoints written the way
those versions wrote them (their object names, without the objects they did not have yet)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_flags

from dcgan_tf import export, sample
from dcgan_tf.checkpoints import CheckpointStore, list_checkpoints, load_generator
from dcgan_tf.config import TrainConfig
from dcgan_tf.errors import DcganError
from dcgan_tf.gan import build_gan
from dcgan_tf.training import fit

# What each version saved: checkpoint object names (the current name, or the old one where it was renamed),
# and the config.json fields it wrote.
FIRST = "generator discriminator generator_optimizer discriminator_optimizer dropout_state sample_noise epoch step sums"
FIRST_CONFIG = "data dataset model loss epochs batch_size learning_rate noise_dim train_size seed checkpoint_dir"
FIRST_CONFIG += " checkpoint_every output_dir fresh dry_run"
VERSIONS = {
    "2026-11-22 (no averaged generator, recipe or batch counter)": (FIRST.split(), FIRST_CONFIG.split()),
    "2026-11-26 (no batch counter)": (
        (FIRST + " generator_ema recipe").split(),
        (FIRST_CONFIG + " recipe ema_decay").split(),
    ),
}


def write_as(version: str, run: Path, folder: Path) -> Path:
    """``run``'s last checkpoint and config.json rewritten into ``folder`` as ``version`` saved them."""
    objects, config_fields = VERSIONS[version]
    config = json.loads((run / "config.json").read_text())
    gan = build_gan(TrainConfig(**config))
    last = list_checkpoints(run)[-1]
    CheckpointStore(run, **gan.checkpoint_objects()).restore(last.path)
    current = gan.checkpoint_objects()
    old = tf.train.Checkpoint(**{name: current["epoch_batches" if name == "step" else name] for name in objects})
    tf.train.CheckpointManager(old, str(folder), max_to_keep=None).save(checkpoint_number=last.number)
    (folder / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k in config_fields}))
    return folder


@pytest.mark.parametrize("version", list(VERSIONS))
def test_an_older_versions_run_continues_samples_and_exports(version, trained_run, mnist_path, tmp_path, capsys):
    old = write_as(version, trained_run, tmp_path / "old")
    (info,) = list_checkpoints(old)
    assert (info.name, info.epoch, info.epoch_batches) == ("ckpt-8", 2, 0)
    has_average = "generator_ema" in VERSIONS[version][0]
    # The tools: the averaged generator where the checkpoint has one, else the raw one it holds.
    want = load_generator(trained_run, which="ema" if has_average else "raw").get_weights()
    for got, expected in zip(load_generator(old).get_weights(), want):
        np.testing.assert_array_equal(got, expected)
    sample.main(["--checkpoint-dir", str(old), "--num", "4", "--out", str(tmp_path / "s.npz")])
    with np.load(tmp_path / "s.npz") as samples:
        assert samples["images"].shape == (4, 28, 28)
    export.main(["--checkpoint-dir", str(old), "--out", str(tmp_path / "g.keras")])
    assert (tmp_path / "g.keras").is_file()
    assert f"exported the {'averaged' if has_average else 'raw'} generator" in capsys.readouterr().out
    if not has_average:  # asked for by name, the average it does not hold is refused, not replaced
        with pytest.raises(DcganError, match="before the averaged generator existed"):
            load_generator(old, which="ema")

    # Training continues: the counter from the discriminator's 8 updates, the average from the generator.
    history = fit(TrainConfig(**tiny_flags(mnist_path, old, epochs=3)))
    out = capsys.readouterr().out
    assert "has no batch counter" in out and ("has no averaged generator" in out) != has_average
    assert [row["epoch"] for row in history][-1] == 3
    assert [(c.name, c.epoch, c.epoch_batches) for c in list_checkpoints(old)] == [("ckpt-8", 2, 0), ("ckpt-12", 3, 0)]
    reader = tf.train.load_checkpoint(str(old / "ckpt-12"))
    assert reader.get_tensor("batches/.ATTRIBUTES/VARIABLE_VALUE") == 12
    assert reader.has_tensor("epoch_batches/.ATTRIBUTES/VARIABLE_VALUE")  # saved under today's name
