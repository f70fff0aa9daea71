"""The epoch loop: one epoch's batches through the compiled step, with a progress bar, the losses read
back once per window, stop requests (SIGINT/SIGTERM) honoured between batches, and saving.

`Session` is what one training session works with; `train_epoch(session, epoch, stop)` trains the
epoch's remaining batches and returns its history row. One batch reads: the data's next (images,
labels) -> ``session.train_step`` (`step.make_train_step`: random draws, the objective's update of both
models, the averaged generator) -> four metric tensors, kept on the device until the window is read.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf import data
from dcgan_tf.checkpoints import CheckpointStore
from dcgan_tf.config import CONFIG_FILE, TrainConfig
from dcgan_tf.dashboard import Dashboard
from dcgan_tf.errors import DcganError, Interrupted
from dcgan_tf.files import write_text
from dcgan_tf.gan import Gan
from dcgan_tf.losses import METRICS
from dcgan_tf.runs import HISTORY_COLUMNS


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
        batch_number = batches_before_epoch + done + 1  # of the run, from 1
        outputs = session.train_step(images, labels, batch_number % config.critic_steps == 0)
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


def save(session: Session) -> str:
    """Checkpoint the run at its batch count, with the config.json it was trained with beside it, once
    every weight is checked finite (a NaN checkpoint would be the one a resume picks up)."""
    check_finite(session)
    write_text(session.store.directory / CONFIG_FILE, session.config.to_json())  # a failed run never rewrites it
    return session.store.save(session.gan.batches_trained)


def check_finite(session: Session) -> None:
    """Raise the diverged-run error unless every weight of the three models is finite."""
    gan = session.gan
    models = {"generator": gan.generator, "discriminator": gan.discriminator, "averaged generator": gan.generator_ema}
    broken = [name for name, model in models.items() if not all(np.isfinite(w).all() for w in model.get_weights())]
    if broken:
        raise diverged(f"the {' and '.join(broken)} weights became NaN/inf by batch {gan.batches_trained}", session)


def diverged(what: str, session: Session) -> DcganError:
    """The one-line error of a run that diverged: nothing of it saved, where to go back to, and how."""
    latest = session.store.latest
    lower = f"--learning-rate {session.config.learning_rate / 10:g}"
    fix = (
        f"the last good checkpoint is {latest}: resume from it with a smaller learning rate, "
        f"--checkpoint {Path(latest).name} {lower} (and this run's other flags)"
        if latest
        else f"no checkpoint was saved yet: start again with a smaller learning rate, {lower}"
    )
    return DcganError(f"{what}; nothing of it was saved: {fix}")


@contextlib.contextmanager
def stop_requests() -> Iterator[list[int]]:
    """Turn the first SIGINT/SIGTERM into a request (a non-empty list) checked between batches.

    A second signal gets the default behaviour back, so a stuck run can still be killed.
    """
    requests: list[int] = []

    def request_stop(signum, frame):
        requests.append(signum)
        signal.signal(signum, previous[signum])
        print("\nstopping after this batch (saving a checkpoint)...", file=sys.stderr, flush=True)

    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    except ValueError:  # not the main thread (e.g. some notebook runners): no handlers, no harm
        pass
    try:
        yield requests
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
