"""The averaged generator (EMA), choosing a checkpoint's generator, and damaged checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_tool, snapshot, tiny_flags

from dcgan_tf.averaging import WeightAverage, decay_at
from dcgan_tf.checkpoints import list_checkpoints, load_generator
from dcgan_tf.config import TrainConfig
from dcgan_tf.errors import DcganError
from dcgan_tf.models import make_generator
from dcgan_tf.training import fit


def test_decay_warms_up_then_stays_at_the_configured_value():
    assert float(decay_at(0.999, 0)) == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    assert float(decay_at(0.999, 90)) == pytest.approx(91 / 100)
    assert float(decay_at(0.99, 10_000)) == pytest.approx(0.99)
    assert float(decay_at(0.0, 5)) == 0.0


def test_update_is_the_exponential_moving_average_and_copies_batchnorm_statistics():
    source, average = make_generator(8), make_generator(8)
    ema = WeightAverage(source, average, decay=0.99)
    ema.reset()
    before = [v.numpy().copy() for v in average.trainable_variables]
    for v in source.variables:  # move every source weight and statistic
        v.assign(v + 1.0)
    ema.update(100)
    d = min(0.99, 101 / 110)
    for old, new, src in zip(before, average.trainable_variables, source.trainable_variables):
        np.testing.assert_allclose(new.numpy(), d * old + (1 - d) * src.numpy(), rtol=1e-6, atol=1e-6)
    for new, src in zip(average.non_trainable_variables, source.non_trainable_variables):
        np.testing.assert_array_equal(new.numpy(), src.numpy())  # BatchNorm moving mean/variance copied


def test_averaged_weights_differ_from_raw_after_training(trained_run):
    raw = load_generator(trained_run, which="raw").get_weights()
    averaged = load_generator(trained_run).get_weights()  # "ema" is the default
    assert len(raw) == len(averaged)
    # 8 steps of Adam(1e-4) move a weight by <= 8e-4; the average lags behind by a share of that,
    # far above float32 rounding (~1e-8 for these weights).
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(raw, averaged)) > 1e-5


def test_decay_zero_makes_the_average_the_raw_generator(mnist_path, tmp_path):
    fit(TrainConfig(**tiny_flags(mnist_path, tmp_path / "run", epochs=1, ema_decay=0.0)))
    raw = load_generator(tmp_path / "run", which="raw").get_weights()
    averaged = load_generator(tmp_path / "run", which="ema").get_weights()
    for a, b in zip(raw, averaged):
        np.testing.assert_array_equal(a, b)


def test_impossible_decay_is_refused():
    for decay in (1.0, -0.1, float("nan")):
        with pytest.raises(DcganError, match="--ema-decay"):
            TrainConfig(ema_decay=decay)
    with pytest.raises(DcganError, match="--generator"):
        load_generator("anywhere", which="mean")


def test_raw_and_averaged_generators_give_different_digits_from_one_seed(trained_run, tmp_path):
    arrays = {}
    for which in ("ema", "raw"):
        out = tmp_path / f"{which}.npz"
        result = run_tool("dcgan_tf.sample", f"--checkpoint-dir={trained_run}", f"--generator={which}", f"--out={out}")
        assert result.returncode == 0, result.stderr
        with np.load(out) as f:
            arrays[which] = f["images"]
    assert arrays["ema"].shape == arrays["raw"].shape == (16, 28, 28)
    assert np.mean(arrays["ema"] != arrays["raw"]) > 0.05
    bad = run_tool("dcgan_tf.sample", f"--checkpoint-dir={trained_run}", "--generator=both")
    assert bad.returncode != 0 and "invalid choice" in bad.stderr


def damaged_copy(run: Path, tmp_path: Path) -> tuple[Path, str, str]:
    """A copy of ``run`` whose latest checkpoint's data file is truncated; returns it, that name and the one before."""
    copy = Path(shutil.copytree(run, tmp_path / "damaged"))
    *_, intact, latest = list_checkpoints(copy)
    data = next(copy.glob(f"{latest.name}.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    return copy, latest.name, intact.name


def test_a_damaged_latest_checkpoint_names_the_newest_intact_one(trained_run, mnist_path, tmp_path):
    run, damaged, intact = damaged_copy(trained_run, tmp_path)
    before = snapshot(run)
    train = ["dcgan_tf.train", f"--data={mnist_path}", "--train-size=256", "--batch-size=64", "--checkpoint-every=1"]
    for args in (
        [*train, "--epochs=3", f"--checkpoint-dir={run}"],
        ["dcgan_tf.sample", f"--checkpoint-dir={run}", f"--out={tmp_path / 'x.png'}"],
    ):
        result = run_tool(*args)
        assert_one_line_error(result, f"{damaged} is damaged", f"--checkpoint {intact}")
        assert snapshot(run) == before  # nothing deleted, nothing written
    assert not (tmp_path / "x.png").exists()

    # Resuming from the intact checkpoint retrains the damaged one's epoch; the damaged files are
    # moved to archive/ before a checkpoint of the same number is written, never overwritten.
    result = run_tool(*train, "--epochs=2", f"--checkpoint-dir={run}", f"--checkpoint={intact}")
    assert result.returncode == 0, result.stderr
    assert f"resuming from {run / intact}" in result.stdout
    archived = list((run / "archive").glob(f"*/{damaged}.data-*"))
    assert len(archived) == 1 and archived[0].stat().st_size < (trained_run / archived[0].name).stat().st_size
    assert [c.name for c in list_checkpoints(run)][-1] == damaged
    np.testing.assert_allclose(  # the retrained epoch is the same epoch: the run is deterministic
        np.concatenate([w.ravel() for w in load_generator(run).get_weights()]),
        np.concatenate([w.ravel() for w in load_generator(trained_run).get_weights()]),
        atol=1e-4,
    )
