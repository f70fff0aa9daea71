"""TensorBoard: the event files a training run writes to ``--logdir`` (``tensorboard --logdir DIR`` shows them).

What is logged, all at the run's global step (batches trained, the same number that names checkpoints):
- ``steps/*``: every ``--log-every`` batches, the mean generator and discriminator loss, D(x) and D(G(z)) over
  those batches (read back from the device once per window, never per batch) and both learning rates;
- ``epoch/*``: after each epoch, the fixed-noise grid of the averaged and the raw generator, images/s, and the
  ``--eval-every`` quality metrics when the epoch was evaluated;
- once per run, the hyperparameters (TensorBoard's HParams plugin), so runs can be compared in its table.

Resuming must not leave two curves for one stretch of steps: `truncate_after` moves event files that
reach past the checkpoint being resumed to ``archive/`` and writes in their place copies holding only the
steps up to it. Non-chief multi-worker tasks get a writer that writes nothing.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.plugins.hparams import api as hp

from dcgan_tf.files import archive_folder, archived_name

EVENTS_GLOB = "events.out.tfevents.*"
# Metrics the HParams table shows as columns (the tags that carry them).
HPARAM_METRICS = ("epoch/fid", "epoch/classifier_score", "steps/generator_loss", "steps/discriminator_loss")


class Dashboard:
    """One run's TensorBoard writer (a no-op writer when ``logdir`` is None)."""

    def __init__(self, logdir: str | Path | None) -> None:
        self.logdir = None if logdir is None else Path(logdir)
        self.writer = tf.summary.create_noop_writer() if logdir is None else tf.summary.create_file_writer(str(logdir))

    def hyperparameters(self, config: object) -> None:
        """Record the run's settings once, for the HParams plugin's table (scalars and strings only)."""
        values = {
            f.name: getattr(config, f.name)
            for f in dataclasses.fields(config)
            if isinstance(getattr(config, f.name), (bool, int, float, str))
        }
        with self.writer.as_default():
            hp.hparams_config(
                hparams=[hp.HParam(name) for name in values], metrics=[hp.Metric(tag) for tag in HPARAM_METRICS]
            )
            hp.hparams(values, trial_id=str(self.logdir.parent if self.logdir else "run"))
        self.writer.flush()

    def scalars(self, step: int, values: Mapping[str, float], prefix: str) -> None:
        """Write ``prefix/name`` scalars at ``step``."""
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(f"{prefix}/{name}", value)

    def images(self, step: int, grids: Mapping[str, np.ndarray]) -> None:
        """Write uint8 grayscale grids (H, W) as ``epoch/<name>`` images at ``step``."""
        with self.writer.as_default(step=step):
            for name, grid in grids.items():
                tf.summary.image(f"epoch/{name}", grid[None, :, :, None])
        self.writer.flush()  # one flush per epoch: the dashboard is never more than an epoch behind

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def truncate_after(logdir: str | Path, step: int) -> list[Path]:
    """Make the event files in ``logdir`` end at ``step``: each file holding a later step is moved to
    ``archive/<time>/<logdir name>/`` beside ``logdir`` (renamed so TensorBoard no longer shows it, see
    `files.archived_name`) and replaced by a copy without those events.

    A record cut short by a crash ends the file's readable events. Returns where the originals went.
    """
    logdir = Path(logdir)
    target = None
    moved = []
    for path in sorted(logdir.glob(EVENTS_GLOB)):
        records = _records(path)
        kept = [record for record in records if Event.FromString(record).step <= step]
        if len(kept) == len(records) and path.stat().st_size == sum(len(r) + 16 for r in records):
            continue  # nothing past `step`, no torn record at the end
        if target is None:
            target = archive_folder(logdir.parent) / logdir.name
            target.mkdir()
        archived = target / archived_name(path.name)  # renamed as it moves: out of TensorBoard's sight
        shutil.move(str(path), archived)
        with tf.io.TFRecordWriter(str(path)) as writer:
            for record in kept:
                writer.write(record)
        moved.append(archived)
    return moved


def _records(path: Path) -> list[bytes]:
    """The serialized events of one file, up to a torn last record (a crash mid-write)."""
    records = []
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            records.append(record.numpy())
    except tf.errors.DataLossError:
        pass
    return records
