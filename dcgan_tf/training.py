"""Training's lifecycle (``python -m dcgan_tf.train`` runs it): `fit(config)` is the whole job and is
what the CLI, the notebook and the tests call.

It resolves the precision, sets up the strategy and data, readies the run's folders (or refuses
them), resumes from a checkpoint or starts anew, and then alternates the two rooms of an epoch:
`loop.train_epoch` (the batches) and `epoch_end.end_epoch` (evaluation, outputs, checkpoints), until
``--epochs`` or ``--max-minutes``. SIGINT/SIGTERM stop it after the current batch with a checkpoint,
so no finished work is ever lost; at the end it says where to sample from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import tensorflow as tf

from dcgan_tf import data
from dcgan_tf.checkpoints import (
    CheckpointInfo,
    CheckpointStore,
    checkpoint_recipe,
    generator_architecture,
    list_checkpoints,
    read_best,
)
from dcgan_tf.config import MAX_CLASSES, TrainConfig, read_saved_config
from dcgan_tf.dashboard import Dashboard, truncate_after
from dcgan_tf.distribute import check_replica_split, is_chief, make_strategy
from dcgan_tf.epoch_end import Outputs, end_epoch, write_gif
from dcgan_tf.errors import DcganError, Interrupted
from dcgan_tf.gan import Gan, build_gan
from dcgan_tf.image_folder import prepare_run_dataset
from dcgan_tf.live import EpochReport, epoch_report
from dcgan_tf.loop import Session, read_number, train_epoch
from dcgan_tf.models import model_spec
from dcgan_tf.precision import POLICIES, auto_precision, precision_hint
from dcgan_tf.runs import (
    HISTORY_FILE,
    prepare_folders,
    read_history,
    resume_point,
    set_aside_later_checkpoints,
    worker_folders,
)
from dcgan_tf.saving import save
from dcgan_tf.tutorial import continue_tutorial


def fit(config: TrainConfig, on_epoch: Callable[[EpochReport], None] | None = None) -> list[dict[str, float]]:
    """Train (or resume training) as ``config`` says; returns the history, one dict per epoch.

    ``on_epoch`` is called after every epoch's end with its `live.EpochReport` (the fixed-noise grid, the
    history so far), e.g. `live.LivePictures` redrawing them in place in a notebook.
    """
    # The strategy first: multi-worker collectives must be set up before TensorFlow runs any op (--precision
    # auto's timing among them).
    strategy = None if config.dry_run else make_strategy(config.strategy)
    config = _recipe_as_recorded(config)  # first: it resolves the flags given again
    config, tutorial_start = continue_tutorial(config)  # a folder of the TensorFlow tutorial's: into its subfolder
    config = _resolve_precision(config)  # where the run's config.json is (the subfolder, for a tutorial's)
    config.check_precision()  # after as_recorded: a run recorded without the recipe's R1 keeps its precision
    print("dcgan_tf training with:\n" + config.describe(), flush=True)
    mnist = data.load_mnist(config.data, config.dataset)
    spec = model_spec(config.model)
    data.check_trainable(
        mnist,
        config.batch_size,
        config.train_size,
        MAX_CLASSES if spec.needs_labels else None,
        config.eval_every is not None,
        config.clusters if spec.self_conditioned else None,
    )
    images = data.training_images(mnist, config.train_size)
    # What the step is given with each image: its label, or for self-conditioning its index (`clusters`).
    labels = (
        tf.range(len(images), dtype=tf.int32)
        if spec.self_conditioned
        else tf.constant(data.training_labels(mnist, config.train_size))
    )
    if strategy is None:
        return [_dry_run(config, images, labels, mnist.info.num_classes)]

    check_replica_split(config.batch_size, strategy.num_replicas_in_sync)
    chief = is_chief(strategy)
    hint = precision_hint(config.precision, needs_float32=config.needs_float32)
    if hint:
        print(hint)
    checkpoint_dir, output_dir = prepare_folders(config) if chief else worker_folders()
    run_dir = Path(config.checkpoint_dir)  # every task reads the real folder (workers write to scratch)
    if mnist.dataset == data.IMAGE_FOLDER:  # a changed folder is refused before anything is written
        prepare_run_dataset(run_dir, mnist.info, str(config.data), fresh=config.fresh, write=chief)
    # --fresh: the chief has just moved the old run aside; a worker must not race it to the old checkpoints.
    resume = None if config.fresh else resume_point(run_dir, config.checkpoint)
    # An older run of a model whose generator has changed since trains on with the generator it has.
    architecture = (
        config.model
        if resume is None
        else generator_architecture(
            resume.path,
            config.model,
            config.noise_dim,
            config.clusters if spec.self_conditioned else mnist.info.num_classes,
            config.g_width,
        )
    )
    gan = build_gan(config, strategy, architecture, mnist.info.num_classes, len(images))
    store = CheckpointStore(checkpoint_dir, **gan.checkpoint_objects())
    if resume is not None:
        _check_recipe(config, resume)  # before anything is moved
        if chief and config.checkpoint is not None:
            set_aside_later_checkpoints(run_dir, output_dir, resume)
        _restore(config, gan, store, resume)
    elif tutorial_start is not None:
        tutorial_start.restore(gan, len(images))
    start = int(gan.epoch)
    # A new self-conditioned run's first clusters, or the ones a run finished by an older version skipped after
    # its last epoch (a resume that extends it then trains on the clusters a longer run would have).
    if gan.clusters is not None and gan.clusters.due(start, config.recluster_every):
        print(gan.clusters.recluster(gan.discriminator, images, config.seed), flush=True)
    history = read_history(output_dir / HISTORY_FILE, up_to_epoch=start)
    if start >= config.epochs:
        print(f"nothing to do: this run has trained {start} epochs; pass --epochs > {start} to continue")
        return history
    if _out_of_time(config, history):
        print(f"nothing to do: this run has trained --max-minutes {config.max_minutes:g}; raise it to continue")
        return history

    steps_per_epoch = data.steps_per_epoch(len(images), config.batch_size)
    session = Session(
        config,
        gan,
        store,
        strategy,
        dashboard=_open_dashboard(config, gan, resumed=resume is not None) if chief else Dashboard(None),
        train_step=gan.make_step(config, strategy, steps_per_epoch),
        images=tf.constant(images),
        labels=labels,
        steps_per_epoch=steps_per_epoch,
    )
    outputs = Outputs(chief, checkpoint_dir, output_dir, mnist, best=read_best(run_dir))
    try:
        with stop_requests() as stop:
            for epoch in range(start, config.epochs):
                history.append(train_epoch(session, epoch, stop))
                if gan.clusters is not None and gan.clusters.due(epoch + 1, config.recluster_every):
                    # Before the epoch's checkpoint, so that a resume from it conditions on the new clusters.
                    print(gan.clusters.recluster(gan.discriminator, session.images, config.seed), flush=True)
                out_of_time = _out_of_time(config, history)
                end_epoch(session, outputs, history, last=out_of_time or epoch + 1 == config.epochs)
                if on_epoch is not None and chief:
                    on_epoch(epoch_report(session, history, mnist.info))
                if not out_of_time and epoch + 1 < config.epochs:
                    print(time_left(config, history, this_session=epoch + 1 - start), flush=True)
                if out_of_time:
                    print(f"--max-minutes {config.max_minutes:g} reached after epoch {epoch + 1}: stopping")
                    break
                if stop and epoch + 1 < config.epochs:  # the signal came during the epoch's last batch
                    raise Interrupted(f"saved {save(session)} after epoch {epoch + 1}; run the same command to resume")
        if chief:
            _print_where_to_sample(checkpoint_dir, store.latest, outputs.best)
    except tf.errors.OpError as err:
        if config.strategy != "multiworker":
            raise
        # A collective op failed: another task died or became unreachable. Everything up to the
        # last checkpoint is on disk; a restarted cluster resumes from it.
        raise DcganError(
            f"lost contact with another worker ({type(err).__name__} in a collective op); nothing after "
            f"{store.latest or 'the start'} was saved: restart every worker with the same command to resume"
        ) from None
    finally:
        session.dashboard.close()
        if chief:
            if int(gan.epoch) > start:  # this session finished an epoch: one more frame
                write_gif(output_dir, int(gan.epoch))
        else:  # a worker's copies were only needed to take part in the collective saves
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return history


def _resumed_config(config: TrainConfig) -> dict | None:
    """The config.json of the run this one resumes, or None for a new run."""
    if config.fresh or not list_checkpoints(config.checkpoint_dir):
        return None
    return read_saved_config(config.checkpoint_dir)


def _recipe_as_recorded(config: TrainConfig) -> TrainConfig:
    """A resume with the recipe its run was made with keeps what the recipe meant then (`TrainConfig.as_recorded`)."""
    saved = _resumed_config(config)
    if saved is None:
        return config
    resumed, kept = config.as_recorded(saved)
    if kept:
        values = ", ".join(f"--{name.replace('_', '-')} {value}" for name, value in kept.items())
        print(f"--recipe {config.recipe} has changed since this run started: it resumes as config.json recorded it, "
              f"with {values}")  # fmt: skip
    return resumed


def _resolve_precision(config: TrainConfig) -> TrainConfig:
    """``--precision auto`` decided once, at a run's first start (config.json then names the real choice), and
    taken from config.json at every resume, so two starts can never choose differently.

    Where the kind of unit does not decide, a first start times both precisions, except under multi-worker
    training, where every worker must make the same choice: there the rule decides (float32), not a race.
    """
    if config.precision != "auto":
        return config
    saved = _resumed_config(config)
    if saved is not None and saved.get("precision") in POLICIES:
        choice, why = saved["precision"], "decided at this run's first start, recorded in config.json"
    else:
        timed = config.strategy != "multiworker"
        measure = (lambda precision: _images_per_second(config, precision)) if timed else None
        choice, why = auto_precision(config.needs_float32, measure=measure)
    print(f"--precision auto: {choice} ({why})")
    return dataclasses.replace(config, precision=choice)


def _check_recipe(config: TrainConfig, resume: CheckpointInfo) -> None:
    """Refuse to resume a checkpoint trained with another --recipe (config.json says so too, unless replaced)."""
    recipe = checkpoint_recipe(resume.path)
    if recipe not in (None, config.recipe):
        raise DcganError(
            f"{resume.name} was trained with --recipe {recipe}, not {config.recipe}: pass --recipe {recipe} to "
            "resume it, or use --fresh (moves the run to archive/) or another --checkpoint-dir"
        )


def _restore(config: TrainConfig, gan: Gan, store: CheckpointStore, resume: CheckpointInfo) -> None:
    """Load the checkpoint ``resume`` into ``gan``: weights, optimizers, position, with this run's rates."""
    missing = store.restore(resume.path)
    if "batches" in missing:  # saved before the counter existed, when the discriminator's update count was it
        gan.batches.assign(int(read_number(gan.discriminator_optimizer.iterations)))
        print(f"{resume.name} has no batch counter (saved by an older version): it continues from the "
              f"discriminator's {gan.batches_trained} updates")  # fmt: skip
    # A checkpoint restores the rates it was trained with; a branch (--checkpoint) may lower them.
    gan.generator_optimizer.learning_rate.assign(config.g_learning_rate)
    gan.discriminator_optimizer.learning_rate.assign(config.d_learning_rate)
    if "generator_ema" in missing:
        gan.average.reset()
        print(f"{resume.name} has no averaged generator (saved by an older version): it starts from the raw one")
    epoch, epoch_batches, _ = gan.position()
    print(f"resuming from {resume.path} (epoch {epoch}, batch {epoch_batches})")


def _open_dashboard(config: TrainConfig, gan: Gan, resumed: bool) -> Dashboard:
    """The run's TensorBoard writer; events past the restored position (a crash's leftovers) are set aside."""
    logdir = Path(config.logdir)
    moved = truncate_after(logdir, gan.batches_trained if resumed else -1)
    if moved:
        print(f"TensorBoard: events past batch {gan.batches_trained} moved to {moved[0].parent}; copies end there")
    dashboard = Dashboard(logdir)
    if not resumed:
        dashboard.hyperparameters(config)
    print(f"TensorBoard: tensorboard --logdir {logdir}", flush=True)
    return dashboard


def _out_of_time(config: TrainConfig, history: list[dict[str, float]]) -> bool:
    """Whether the run's training time (epochs' seconds, evaluations excluded) has reached --max-minutes."""
    return config.max_minutes is not None and sum(row["seconds"] for row in history) >= 60 * config.max_minutes


def _print_where_to_sample(checkpoint_dir: Path, latest: str | None, best: dict | None) -> None:
    lines = [f"last checkpoint: {latest}"]
    if best is not None:
        lines.append(
            f"best checkpoint: {checkpoint_dir / best['checkpoint']} (epoch {best['epoch']}, FID {best['fid']:.2f})"
        )
    which = "best" if best is not None else Path(latest or "").name
    lines.append(
        f"sample from it: python -m dcgan_tf.sample --checkpoint-dir {checkpoint_dir} --checkpoint {which} "
        "--out samples.png"
    )
    print("\n".join(lines))


def _images_per_second(config: TrainConfig, precision: str, steps: int = 3) -> float:
    """Training images/s of a few steps of ``config``'s models in ``precision`` on random images
    (after a warm-up step that traces the step), for ``--precision auto``."""
    config = dataclasses.replace(config, precision=precision, jit_compile=False)
    gan = build_gan(config)
    train_step = gan.make_step(config, None, steps_per_epoch=1)
    images = tf.random.stateless_uniform([config.batch_size, 28, 28, 1], [0, 0], minval=-1, maxval=1)
    labels = tf.zeros([config.batch_size], tf.int32)
    float(train_step(images, labels)["d_loss"])  # trace and warm up
    started = time.perf_counter()
    for _ in range(steps):
        outputs = train_step(images, labels)
    float(outputs["d_loss"])  # wait for the last step
    return steps * config.batch_size / (time.perf_counter() - started)


def _dry_run(config: TrainConfig, images, labels: tf.Tensor, num_classes: int) -> dict[str, float]:
    gan = build_gan(config, num_classes=num_classes, num_images=len(images))
    step = gan.make_step(config, None, steps_per_epoch=1)  # one batch: where a schedule ends does not matter
    batch = next(iter(data.make_dataset(tf.constant(images), labels, config.batch_size, config.seed, 0)))
    outputs = {name: float(value) for name, value in step(*batch).items()}
    print("dry run: one batch trained, nothing written: " + ", ".join(f"{k} {v:.4f}" for k, v in outputs.items()))
    return outputs


def time_left(config: TrainConfig, history: list[dict[str, float]], this_session: int) -> str:
    """One line: the run's training time left at its own pace (this session's mean epoch so far), and when
    ``--max-minutes`` will stop it, if before ``--epochs``."""
    done = int(history[-1]["epoch"])
    pace = sum(row["seconds"] for row in history[-this_session:]) / this_session
    left = _duration(pace * (config.epochs - done))
    line = f"time left: about {left} for epochs {done + 1}-{config.epochs} at {pace:.1f}s an epoch"
    if config.max_minutes is not None:
        budget = 60 * config.max_minutes - sum(row["seconds"] for row in history)
        last = min(config.epochs, done + max(1, math.ceil(budget / pace)))
        if last < config.epochs:
            stop = _duration(pace * (last - done))
            line += f"; --max-minutes {config.max_minutes:g} stops it after epoch {last}, in about {stop}"
    return line


def _duration(seconds: float) -> str:
    """``1 h 05 min``, ``12 min`` or ``40 s``."""
    minutes = round(seconds / 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes} min" if minutes else f"{seconds:.0f} s"


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
