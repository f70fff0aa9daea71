"""End-to-end training on real MNIST digits: outputs, resume, interruption, refusals, bad input."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import REPO, assert_one_line_error, differing_share, run_tool, snapshot, tiny_flags

from dcgan_tf.checkpoints import list_checkpoints, load_generator
from dcgan_tf.config import TrainConfig
from dcgan_tf.errors import DcganError
from dcgan_tf.runs import read_history
from dcgan_tf.training import fit

# Resumed and uninterrupted runs use the same seeds, noise, dropout masks, batch order and optimizer
# state, so they do the same arithmetic: at most this share of weights may differ by more than 1e-6
# (oneDNN summation order, see conftest.differing_share); usually none does.
RESUME_TOLERANCE = 1e-3


def copy_run(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def test_tiny_run_writes_every_output(trained_run):
    assert [(c.name, c.epoch, c.epoch_batches) for c in list_checkpoints(trained_run)] == [
        ("ckpt-4", 1, 0),
        ("ckpt-8", 2, 0),
    ]
    assert TrainConfig(**json.loads((trained_run / "config.json").read_text())).epochs == 2
    for epoch in (1, 2):
        grid = iio.imread(trained_run / f"image_at_epoch_{epoch:04d}.png")
        assert grid.ndim == 2 and grid.shape[0] == grid.shape[1] > 4 * 28  # a 4x4 grid, scaled up
    assert iio.imread(trained_run / "dcgan.gif", index=None).shape[0] == 2  # one frame per epoch
    with (trained_run / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert set(rows[0]) >= {"generator_loss", "discriminator_loss", "d_real", "d_fake", "seconds"}
    assert all(np.isfinite(float(r["generator_loss"])) for r in rows)
    assert iio.imread(trained_run / "losses.png").shape[-1] in (3, 4)


def test_more_epochs_resume_after_the_last_checkpoint(trained_run, mnist_path, tmp_path, capsys):
    run = copy_run(trained_run, tmp_path)
    before = snapshot(run)
    history = fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=4)))
    out = capsys.readouterr().out
    assert "resuming from" in out and "(epoch 2, batch 0)" in out
    assert "Epoch 1/4" not in out and "Epoch 3/4" in out  # only the new epochs were trained
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert [c.epoch for c in list_checkpoints(run)] == [1, 2, 3, 4]
    # After epoch 3, the time left at this session's pace (epoch 3's own seconds): one epoch to go.
    (line,) = [line for line in out.splitlines() if line.startswith("time left:")]
    assert f"for epochs 4-4 at {history[2]['seconds']:.1f}s an epoch" in line
    after = snapshot(run)
    for name in ("ckpt-4.index", "ckpt-8.index", "image_at_epoch_0001.png", "image_at_epoch_0002.png"):
        assert after[name] == before[name]  # earlier results are kept as they were
    assert iio.imread(run / "dcgan.gif", index=None).shape[0] == 4  # the GIF was rebuilt over all epochs


def test_large_grids_are_enlarged_less_and_the_gif_keeps_the_last_grids_size(tmp_path):
    from dcgan_tf.epoch_end import GIF_FILE, epoch_image_name, write_gif
    from dcgan_tf.visualize import GAP, MAX_PIXELS, SCALE, save_grid, tile

    side = lambda n: n * (28 + GAP) + GAP  # noqa: E731  (a grid of n tiles' side, unscaled)
    digits = np.zeros((900, 28, 28, 1), np.float32)
    assert tile(digits[:16], cols=4).shape == (side(4) * SCALE, side(4) * SCALE)  # small grids as before
    # 50 rows of 10 (a 50-cluster epoch grid): enlarged only as far as MAX_PIXELS allows, here not at all.
    assert tile(digits[:500], cols=10).shape == (side(50), side(10)) and side(50) * 2 > MAX_PIXELS
    assert tile(digits[:500], cols=10, scale=2).shape == (side(50) * 2, side(10) * 2)  # asked for, as given
    # A run resumed across the change drew 30 x 30 grids before, 30 x 10 since: the GIF starts at the new size.
    for epoch, cols in ((1, 30), (2, 30), (3, 10), (4, 10)):  # each a new shade (the GIF merges equal frames)
        save_grid(digits[: 30 * cols] + epoch / 4, tmp_path / epoch_image_name(epoch), cols)
    write_gif(tmp_path, last_epoch=4)
    frames = iio.imread(tmp_path / GIF_FILE, index=None)
    assert frames.shape[0] == 2 and frames.shape[1:3] == iio.imread(tmp_path / epoch_image_name(4)).shape


def test_time_left_is_at_the_runs_own_pace_and_says_when_max_minutes_stops_it():
    from dcgan_tf.training import time_left

    history = [{"epoch": 1, "seconds": 300.0}, {"epoch": 2, "seconds": 40.0}, {"epoch": 3, "seconds": 60.0}]
    # This session trained epochs 2 and 3 (50 s each on average): 97 epochs left are 81 min.
    assert time_left(TrainConfig(epochs=100), history, this_session=2) == (
        "time left: about 1 h 21 min for epochs 4-100 at 50.0s an epoch"
    )
    # 400 s spent of 20 minutes: 800 s more, 16 epochs at 50 s: it stops after epoch 19.
    assert time_left(TrainConfig(epochs=100, max_minutes=20), history, this_session=2).endswith(
        "; --max-minutes 20 stops it after epoch 19, in about 13 min"
    )
    assert "max-minutes" not in time_left(TrainConfig(epochs=10, max_minutes=600), history, this_session=2)


def interrupt_after(marker: str, argv: list[str], run: Path) -> str:
    """Run ``python -m dcgan_tf.train`` into ``run``, send SIGINT once a stdout line starts with ``marker``,
    and return its stderr after checking it exited like an interrupted run (status 130, no traceback)."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "dcgan_tf.train", *argv, f"--checkpoint-dir={run}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith(marker):
            proc.send_signal(signal.SIGINT)
            break
    proc.stdout.read()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, stderr
    assert "Traceback" not in stderr
    return stderr


def test_interrupted_then_resumed_equals_uninterrupted(mnist_path, tmp_path):
    flags = tiny_flags(mnist_path, tmp_path / "straight", train_size=512, batch_size=32, epochs=3)
    fit(TrainConfig(**flags))

    interrupted = tmp_path / "interrupted"
    argv = [f"--data={mnist_path}", "--train-size=512", "--batch-size=32", "--epochs=3", "--checkpoint-every=1"]
    # Interrupt as epoch 2 (16 batches, room for a slow signal) starts: a mid-epoch checkpoint, checked below.
    assert "interrupted: saved" in interrupt_after("Epoch 2/3", argv, interrupted)
    last = list_checkpoints(interrupted)[-1]
    assert last.epoch == 1 and 0 < last.epoch_batches < 16, f"not a mid-epoch checkpoint: {last.label}"

    fit(TrainConfig(**{**flags, "checkpoint_dir": str(interrupted)}))
    for which in ("raw", "ema"):  # the averaged generator is part of the exact resume too
        straight = load_generator(tmp_path / "straight", which=which).get_weights()
        resumed = load_generator(interrupted, which=which).get_weights()
        assert differing_share(straight, resumed) <= RESUME_TOLERANCE, which
    rows = read_history(interrupted / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    expected = read_history(tmp_path / "straight" / "history.csv")
    for got, want in zip(rows, expected):  # the interrupted epoch's running sums were carried over
        assert got["generator_loss"] == pytest.approx(want["generator_loss"], abs=1e-6)


def test_conflicting_settings_are_refused_without_touching_the_run(trained_run, mnist_path, tmp_path):
    run = copy_run(trained_run, tmp_path)
    before = snapshot(run)
    with pytest.raises(DcganError, match=r"noise_dim=100 \(now 64\).*--fresh"):
        fit(TrainConfig(**tiny_flags(mnist_path, run, noise_dim=64)))
    assert snapshot(run) == before


def test_fresh_moves_the_old_run_aside(trained_run, mnist_path, tmp_path):
    run = copy_run(trained_run, tmp_path)
    before = snapshot(run)
    fit(TrainConfig(**tiny_flags(mnist_path, run, noise_dim=64, epochs=1, fresh=True)))
    (archive,) = (run / "archive").iterdir()
    # Everything of the old run is still there, byte for byte; event files renamed out of TensorBoard's sight.
    assert {k.replace("archived-events", "tfevents"): v for k, v in snapshot(archive).items()} == before
    assert [c.epoch for c in list_checkpoints(run)] == [1]
    assert load_generator(run).input_shape == (None, 64)


def test_dry_run_writes_nothing(mnist_path, tmp_path):
    (result,) = fit(TrainConfig(**tiny_flags(mnist_path, tmp_path / "dry", dry_run=True)))
    assert np.isfinite(result["g_loss"])
    assert not (tmp_path / "dry").exists()


# --- the command line: bad input gets one line, a non-zero exit, and leaves files alone ---------


def test_impossible_flags_fail_fast():
    result = run_tool("dcgan_tf.train", "--epochs", "0")
    assert_one_line_error(result, "--epochs must be a positive integer")
    assert "Traceback" not in result.stderr


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _small_images_npz(path: Path) -> Path:
    small = np.zeros((4, 8, 8), np.uint8)
    np.savez(path, x_train=small, y_train=np.zeros(4, np.uint8), x_test=small, y_test=np.zeros(4, np.uint8))
    return path


@pytest.mark.parametrize(
    "setup, extra, fragments",
    [
        (lambda tmp: tmp / "nowhere.npz", [], ["does not exist", "--data"]),
        (lambda tmp: _write(tmp / "x.npz", b"garbage"), [], ["not a readable .npz"]),
        (lambda tmp: _small_images_npz(tmp / "s.npz"), [], ["expected (N, 28, 28)"]),
        (None, ["--noise-dim", "64"], ["noise_dim=100 (now 64)"]),
    ],
    ids=["missing-data", "corrupt-data", "wrong-shape", "conflicting-run"],
)
def test_bad_input_leaves_the_existing_run_untouched(trained_run, mnist_path, tmp_path, setup, extra, fragments):
    run = copy_run(trained_run, tmp_path)
    before = snapshot(run)
    data = setup(tmp_path) if setup else mnist_path
    argv = ["--data", str(data), "--train-size=256", "--batch-size=64", "--epochs=3", f"--checkpoint-dir={run}"]
    assert_one_line_error(run_tool("dcgan_tf.train", *argv, *extra), *fragments)
    assert snapshot(run) == before


def test_a_run_whose_newest_checkpoint_lost_a_file_is_refused_not_restarted(trained_run, mnist_path, tmp_path):
    run = copy_run(trained_run, tmp_path)
    (run / "ckpt-8.index").unlink()  # e.g. a copy that missed a file
    before = snapshot(run)
    argv = ["--data", str(mnist_path), "--train-size=256", "--batch-size=64", "--epochs=3", f"--checkpoint-dir={run}"]
    assert_one_line_error(run_tool("dcgan_tf.train", *argv), "ckpt-8 is damaged", "--checkpoint ckpt-4")
    assert snapshot(run) == before


def test_checkpoints_are_found_by_name_whatever_the_state_file_says(trained_run, tmp_path):
    # A run copied from elsewhere: TensorFlow's state file points to where it used to be.
    run = copy_run(trained_run, tmp_path)
    (run / "checkpoint").write_text(
        'model_checkpoint_path: "/gone/ckpt-8"\nall_model_checkpoint_paths: "/gone/ckpt-8"\n'
    )
    assert [(c.path, c.epoch) for c in list_checkpoints(run)] == [(str(run / "ckpt-4"), 1), (str(run / "ckpt-8"), 2)]
    (run / "checkpoint").unlink()
    assert [c.name for c in list_checkpoints(str(run) + "/")] == ["ckpt-4", "ckpt-8"]


def test_nan_losses_stop_with_an_error_and_save_nothing(mnist_path, tmp_path):
    argv = [f"--data={mnist_path}", "--train-size=256", "--batch-size=64", "--learning-rate=1e30"]
    result = run_tool("dcgan_tf.train", *argv, f"--checkpoint-dir={tmp_path / 'nan'}")
    assert_one_line_error(result, "NaN", "no checkpoint was saved yet", "smaller learning rates, --learning-rate 1e+29")
    assert list_checkpoints(tmp_path / "nan") == [] and not (tmp_path / "nan" / "config.json").exists()


def test_unwritable_output_folder_is_refused(mnist_path, tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    argv = [f"--data={mnist_path}", "--train-size=256", "--batch-size=64", f"--checkpoint-dir={tmp_path / 'ck'}"]
    result = run_tool("dcgan_tf.train", *argv, f"--output-dir={tmp_path / 'file' / 'out'}")
    assert_one_line_error(result, "cannot write to", "--output-dir")


def test_interrupt_at_an_epoch_boundary_saves_that_epoch(mnist_path, tmp_path):
    # One batch per epoch: every signal lands in an epoch's last batch, so the run stops after it.
    run = tmp_path / "boundary"
    argv = [f"--data={mnist_path}", "--train-size=64", "--batch-size=64", "--epochs=500", "--checkpoint-every=100"]
    assert "after epoch" in interrupt_after("epoch 1/500", argv, run)
    (last,) = list_checkpoints(run)
    assert last.epoch_batches == 0 and 1 <= last.epoch < 500  # a whole epoch, saved although not yet due
    assert len(read_history(run / "history.csv")) == last.epoch
