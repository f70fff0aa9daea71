"""TensorBoard: the event files training writes, read back; resuming does not repeat steps; the real server."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import tiny_flags

from dcgan_tf.config import TrainConfig
from dcgan_tf.training import fit

STEP_TAGS = {
    "steps/generator_loss",
    "steps/discriminator_loss",
    "steps/d_real",
    "steps/d_fake",
    "steps/generator_learning_rate",
    "steps/discriminator_learning_rate",
}


def read_events(logdir: Path, pattern: str = "events.out.tfevents.*") -> dict[str, list[tuple[int, object]]]:
    """Every summary value in ``logdir``'s event files named like ``pattern``: tag -> [(step, value)]."""
    import tensorflow as tf

    found = defaultdict(list)
    for path in sorted(logdir.glob(pattern)):
        events = tf.compat.v1.train.summary_iterator(str(path))
        while True:
            try:
                event = next(events)
            except (StopIteration, tf.errors.DataLossError):  # the end, or a record torn by a crash
                break
            for value in event.summary.value:
                found[value.tag].append((event.step, value))
    return found


@pytest.mark.usefixtures("quick_evals")
def test_events_hold_losses_images_and_metrics_and_a_resume_repeats_no_step(
    small_data, evaluator_dir, reference, tmp_path
):
    run = tmp_path / "run"
    # 256 images / batch 64 = 4 batches an epoch; losses every 2 batches; evaluated at epoch 3.
    flags = tiny_flags(small_data, run, epochs=3, checkpoint_every=2, log_every=2, eval_every=3)
    fit(TrainConfig(**flags, evaluator_dir=str(evaluator_dir)))
    first = read_events(run / "logs")
    assert STEP_TAGS <= set(first)
    assert [step for step, _ in first["steps/generator_loss"]] == [2, 4, 6, 8, 10, 12]
    for name in ("averaged_generator", "raw_generator"):  # one image per epoch, at the epoch's last batch
        assert [step for step, _ in first[f"epoch/{name}"]] == [4, 8, 12]
        assert first[f"epoch/{name}"][0][1].metadata.plugin_data.plugin_name == "images"
    assert [step for step, _ in first["epoch/images_per_second"]] == [4, 8, 12]
    assert [step for step, _ in first["epoch/fid"]] == [12] and "epoch/raw_fid" in first
    assert "_hparams_/session_start_info" in first  # the HParams plugin's record of the run's settings

    # A crash after the step-8 checkpoint: its later checkpoint is lost, the events past step 8 remain,
    # and the event file ends in a record torn in the middle of its write.
    for file in run.glob("ckpt-12.*"):
        file.unlink()
    (events,) = (run / "logs").glob("events.out.tfevents.*")
    with events.open("ab") as f:
        f.write(b"\x20\x00\x00\x00\x00\x00\x00\x00torn")  # a length header, then too few bytes
    fit(TrainConfig(**flags, evaluator_dir=str(evaluator_dir)))
    resumed = read_events(run / "logs")
    import tensorflow as tf

    for path in (run / "logs").glob("events.out.tfevents.*"):
        assert sum(1 for _ in tf.data.TFRecordDataset(str(path))) > 0  # whole records only: the torn one is gone
    for tag in STEP_TAGS | {"epoch/averaged_generator", "epoch/images_per_second"}:
        steps = [step for step, _ in resumed[tag]]
        assert steps == sorted(set(steps)), tag  # each step once, in order: one continuous curve
    assert [step for step, _ in resumed["steps/generator_loss"]] == [2, 4, 6, 8, 10, 12]
    assert [step for step, _ in resumed["epoch/raw_generator"]] == [4, 8, 12]
    assert len(resumed["_hparams_/session_start_info"]) == 1  # once per run, not once per session
    archived = list((run / "archive").rglob("events.out.archived-events.*"))
    assert len(archived) == 1  # the original file was moved aside, not deleted
    before_crash = read_events(archived[0].parent, "events.out.archived-events.*")  # readable as it was
    assert [step for step, _ in before_crash["steps/d_real"]] == [2, 4, 6, 8, 10, 12]
    # ...but `tensorboard --logdir` on the parent folder shows only the run itself, not the archive.
    from tensorboard.backend.event_processing import io_wrapper

    assert [Path(d) for d in io_wrapper.GetLogdirSubdirectories(str(tmp_path))] == [run / "logs"]

    # --fresh archives the whole run, event files included, out of TensorBoard's sight too.
    fit(TrainConfig(**{**flags, "eval_every": None, "epochs": 1, "fresh": True}))
    assert [Path(d) for d in io_wrapper.GetLogdirSubdirectories(str(tmp_path))] == [run / "logs"]
    assert len(list((run / "archive").rglob("events.out.archived-events.*"))) == 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_tensorboard_server_serves_the_runs_loss_curve(trained_run, tmp_path):
    logdir = Path(shutil.copytree(trained_run / "logs", tmp_path / "logs"))
    tensorboard = Path(sys.executable).with_name("tensorboard")
    if not tensorboard.is_file():
        pytest.skip(f"no tensorboard executable beside {sys.executable}: pip install tensorboard")
    port = free_port()
    server = subprocess.Popen(
        [str(tensorboard), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    tag = "steps/generator_loss"
    url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?" + urllib.parse.urlencode({"run": ".", "tag": tag})
    points, deadline = None, time.monotonic() + 120
    try:
        while points is None and time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.skip(f"the TensorBoard server did not start: {server.stderr.read().strip()[-300:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    points = json.loads(response.read())
            except OSError:  # not listening yet, or the run not loaded yet (HTTP 400/404)
                time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert points is not None, "TensorBoard never served the loss curve"
    # [wall_time, step, value] per point: the tiny run's 2 epochs of 4 batches, logged every 10 -> once an epoch.
    assert [step for _, step, _ in points] == [4, 8]
    assert all(value > 0 for _, _, value in points)
