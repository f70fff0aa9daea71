"""The epoch loop: one epoch's batches through the compiled step, with a progress bar, the losses read
back once per window, and stop requests (SIGINT/SIGTERM, see `training.stop_requests`) honoured between
batches.

`Session` is what one training session works with; `train_epoch(session, epoch, stop)` trains the
epoch's remaining batches and returns its history row. One batch reads: the data's next (images,
labels) -> ``session.train_step`` (`step.make_train_step`: random draws, the objective's update of both
models, the averaged generator) -> four metric tensors, kept on the device until the window is read.
Saving and the finite-weights check live in `saving`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf import data
from dcgan_tf.checkpoints import CheckpointStore
from dcgan_tf.config import TrainConfig
from dcgan_tf.dashboard import Dashboard
from dcgan_tf.errors import Interrupted
from dcgan_tf.gan import Gan, generator_due
from dcgan_tf.losses import METRICS
from dcgan_tf.runs import HISTORY_COLUMNS
from dcgan_tf.saving import check_finite, diverged, save


@dataclass(frozen=True)
class Session:
    """One training session: the run's config and state, where it saves, and what it trains on."""

    config: TrainConfig
    gan: Gan
    store: CheckpointStore  # the checkpoint folder (a scratch copy on a non-chief worker)
    strategy: tf.distribute.Strategy
    dashboard: Dashboard  # TensorBoard (a no-op on non-chief workers)
    train_step: Callable[..., dict[str, tf.Tensor]]  # `Gan.make_step`
    images: tf.Tensor  # (N, 28, 28, 1) the whole training set in [-1, 1], gathered into batches by index
    labels: tf.Tensor  # (N,)
    steps_per_epoch: int


def train_epoch(session: Session, epoch: int, stop: list[int]) -> dict[str, float]:
    """Train epoch ``epoch`` (0-based) from where the run stands; returns its history row and moves the
    run's position to the next epoch.

    The step's metrics stay on the device and are read back once per ``--log-every`` batches (one
    transfer per window, so a GPU never waits on Python); the NaN check runs on each window, before
    anything of the epoch is saved. A stop request saves a mid-epoch checkpoint and raises `Interrupted`.
    """
    config, gan, num_steps = session.config, session.gan, session.steps_per_epoch
    _, done, sums = gan.position()  # a resumed half-epoch carries its running sums over
    print(f"Epoch {epoch + 1}/{config.epochs}")
    bar = keras.utils.Progbar(num_steps, stateful_metrics=METRICS, interval=0.5 if sys.stdout.isatty() else 30)
    started = time.perf_counter()
    batches_before_epoch = gan.batches_trained - done  # one read per epoch; the windows count on from here
    window = []  # (4,) metric tensors of the batches since the last read-back, still on the device
    for images, labels in _batches(session, epoch, skip=done):
        # The batch counter's value after this batch, kept on the host (reading the device's would make a GPU wait).
        batch_number = batches_before_epoch + done + 1
        outputs = session.train_step(images, labels, generator_due(batch_number, config.critic_steps))
        window.append(tf.stack([tf.cast(outputs[name], tf.float32) for name in METRICS]))
        done += 1
        if len(window) < config.log_every and done < num_steps and not stop:
            continue
        values = tf.stack(window).numpy()  # (n, 4): the window's only device-to-host transfer
        if not np.isfinite(values).all():
            print(flush=True)  # end the progress bar's line
            bad = done - len(window) + 1 + int(np.argmax(~np.isfinite(values).all(axis=1)))
            raise diverged(f"the losses became NaN/inf at epoch {epoch + 1}, batch {bad}", session)
        window = []
        sums.metrics += values.sum(axis=0)
        bar.update(done, values=list(zip(METRICS, sums.metrics / done)))
        session.dashboard.scalars(
            batches_before_epoch + done, {**_named_means(values), **_learning_rates(gan)}, "steps"
        )
        if stop and done < num_steps:
            print(flush=True)
            sums.seconds += time.perf_counter() - started
            gan.set_position(epoch, done, sums)
            raise Interrupted(
                f"saved {save(session)} at epoch {epoch + 1}, batch {done}/{num_steps}; run the same command to resume"
            )
    check_finite(session)  # before the epoch leaves any trace: outputs, history, checkpoint
    sums.seconds += time.perf_counter() - started
    gan.set_position(epoch + 1)
    means = sums.metrics / max(done, 1)
    return dict(zip(HISTORY_COLUMNS, [epoch + 1, *means.tolist(), sums.seconds]))


def _batches(session: Session, epoch: int, skip: int):
    """The epoch's shuffled batches from the ``skip``-th on, split over the replicas when there are several."""
    config, strategy = session.config, session.strategy
    batches = data.make_dataset(
        session.images, session.labels, config.batch_size, seed=config.seed, epoch=epoch, skip_batches=skip
    )
    if strategy.num_replicas_in_sync > 1 or config.strategy != "default":
        batches = strategy.experimental_distribute_dataset(batches)  # splits each global batch
    return batches


def _named_means(values: np.ndarray) -> dict[str, float]:
    """The window's mean of each of METRICS, named as history.csv names them (generator_loss, ...)."""
    return dict(zip(HISTORY_COLUMNS[1:5], values.mean(axis=0).tolist()))


def _learning_rates(gan: Gan) -> dict[str, float]:
    """Both rates as the last batch used them (a --lr-schedule changes them every batch)."""
    return {
        "generator_learning_rate": read_number(gan.generator_optimizer.learning_rate),
        "discriminator_learning_rate": read_number(gan.discriminator_optimizer.learning_rate),
    }


def read_number(variable) -> float:
    # convert_to_numpy also reads a variable mirrored across replicas, which float() cannot.
    return float(keras.ops.convert_to_numpy(variable))
