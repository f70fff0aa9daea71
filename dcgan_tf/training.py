"""Training: the epoch loop and everything it leaves behind (``python -m dcgan_tf.train`` runs it).

`fit(config)` is the whole job and is what the CLI, the notebook and the tests call. Per epoch it
runs the compiled step over shuffled batches with a progress bar, then writes the epoch's image
grid, a row of ``history.csv`` and the loss plot, and a checkpoint when one is due. SIGINT/SIGTERM
stop it after the current batch with a checkpoint, so no finished work is ever lost.
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
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf import data, visualize
from dcgan_tf.averaging import WeightAverage
from dcgan_tf.checkpoints import (
    BEST_FILE,
    CheckpointStore,
    checkpoint_recipe,
    generator_architecture,
    read_best,
    write_best,
)
from dcgan_tf.config import CONFIG_FILE, TrainConfig
from dcgan_tf.dashboard import Dashboard, truncate_after
from dcgan_tf.data import DATASETS
from dcgan_tf.errors import DcganError, Interrupted
from dcgan_tf.files import write_text
from dcgan_tf.losses import METRICS, Players, get_loss
from dcgan_tf.models import build_generator, build_models, random_state
from dcgan_tf.precision import auto_precision, precision_hint
from dcgan_tf.runs import (
    HISTORY_COLUMNS,
    HISTORY_FILE,
    prepare_folders,
    read_history,
    resume_point,
    set_aside_later_checkpoints,
    worker_folders,
    write_history,
)
from dcgan_tf.sampling import grid_images, grid_noise
from dcgan_tf.step import LearningRates, check_replica_split, is_chief, make_strategy, make_train_step

GIF_FILE = "dcgan.gif"
PLOT_FILE = "losses.png"


def epoch_image_name(epoch: int) -> str:
    return f"image_at_epoch_{epoch:04d}.png"


@dataclass
class Gan:
    """Everything a run trains and checkpoints, built for one config."""

    generator: keras.Model
    discriminator: keras.Model
    generator_optimizer: keras.optimizers.Optimizer
    discriminator_optimizer: keras.optimizers.Optimizer
    generator_ema: keras.Model  # the averaged generator (see `averaging`); never trained directly
    average: WeightAverage  # keeps generator_ema the average of generator
    sample_noise: tf.Variable  # (K, noise_dim): the epoch grids' noise (`sampling.grid_noise`), fixed for the run
    recipe: tf.Variable  # the --recipe name (a string), so a checkpoint says how it was trained
    # The run's one batch counter: advanced once per batch trained, whatever the optimizers do (a
    # mixed_float16 step with non-finite gradients is skipped by the optimizers, not by the run). It
    # numbers checkpoints and TensorBoard steps and seeds each batch's random draws.
    batches: tf.Variable = field(default_factory=lambda: tf.Variable(0, dtype=tf.int64, trainable=False))
    epoch: tf.Variable = field(default_factory=lambda: tf.Variable(0, dtype=tf.int64, trainable=False))
    step: tf.Variable = field(default_factory=lambda: tf.Variable(0, dtype=tf.int64, trainable=False))
    # Running sums of METRICS and the seconds spent over the `step` batches of the unfinished epoch.
    sums: tf.Variable = field(default_factory=lambda: tf.Variable(tf.zeros(5, tf.float64), trainable=False))

    def make_step(
        self, config: TrainConfig, strategy: tf.distribute.Strategy | None, steps_per_epoch: int
    ) -> Callable[..., dict[str, tf.Tensor]]:
        """The compiled training step over these models and optimizers (see `step.make_train_step`);
        ``steps_per_epoch`` places --epochs, where a learning-rate schedule ends, in batches."""
        players = Players(self.generator, self.discriminator, self.generator_optimizer, self.discriminator_optimizer)
        rates = LearningRates(
            config.g_learning_rate, config.d_learning_rate, config.lr_schedule, config.epochs * steps_per_epoch
        )
        return make_train_step(
            players,
            get_loss(config.loss, config.r1),
            config.seed,
            self.batches,
            strategy,
            self.average,
            jit_compile=config.jit_compile,
            learning_rates=rates,
            augmentations=config.augmentations,
        )

    def epoch_grid(self) -> tuple[np.ndarray, int]:
        """The averaged generator's digits from the fixed noise, and the grid's column count."""
        return grid_images(self.generator_ema, self.sample_noise.numpy())

    def checkpoint_objects(self) -> dict:
        return {
            "generator": self.generator,
            "generator_ema": self.generator_ema,
            "discriminator": self.discriminator,
            "generator_optimizer": self.generator_optimizer,
            "discriminator_optimizer": self.discriminator_optimizer,
            "dropout_state": random_state(self.discriminator),
            "sample_noise": self.sample_noise,
            "recipe": self.recipe,
            "batches": self.batches,
            "epoch": self.epoch,
            "step": self.step,
            "sums": self.sums,
        }


def build_gan(
    config: TrainConfig, strategy: tf.distribute.Strategy | None = None, architecture: str | None = None
) -> Gan:
    """Models, optimizers and sample noise for ``config``, identical for identical seeds; ``architecture``
    overrides ``config.model`` (the one an older checkpoint saved under that name holds).

    Everything is created inside ``strategy.scope()`` so that variables are mirrored across replicas.
    """
    strategy = strategy or tf.distribute.get_strategy()
    architecture = architecture or config.model
    num_classes = DATASETS[config.dataset].num_classes  # a conditional pair's label range
    keras.utils.set_random_seed(config.seed)  # weight initialisation and dropout seeds
    previous_policy = keras.config.dtype_policy()
    # Layers take the dtype policy in force when they are built; restore it after, so the choice
    # stays with this run and does not leak into other models of the process.
    keras.config.set_dtype_policy(config.precision)
    try:
        with strategy.scope():
            generator, discriminator = build_models(
                architecture,
                config.noise_dim,
                seed=config.seed,
                synchronized=strategy.num_replicas_in_sync > 1,
                spectral_norm=config.spectral_norm,
                num_classes=num_classes,
            )
            optimizers = []
            for model, rate in ((generator, config.g_learning_rate), (discriminator, config.d_learning_rate)):
                optimizer = keras.optimizers.Adam(rate, beta_1=config.beta1, beta_2=config.beta2)
                if config.precision == "mixed_float16":  # scales losses so float16 gradients do not underflow
                    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
                # Build now, in the strategy's scope: a checkpoint can then restore the Adam moments,
                # and Keras optimizers first built inside a replica step fail under tf.distribute.
                optimizer.build(model.trainable_variables)
                optimizers.append(optimizer)
            generator_ema = build_generator(
                architecture, config.noise_dim, strategy.num_replicas_in_sync > 1, num_classes
            )
            images_per_update = config.batch_size * config.critic_steps  # trained per generator update
            average = WeightAverage(generator, generator_ema, config.ema_decay, config.ema_half_life, images_per_update)
            average.reset()  # the average starts at the raw generator's initial weights
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return Gan(
        generator,
        discriminator,
        *optimizers,
        generator_ema=generator_ema,
        average=average,
        sample_noise=tf.Variable(grid_noise(generator, config.seed)),
        recipe=tf.Variable(config.recipe, trainable=False),
    )


def fit(config: TrainConfig) -> list[dict[str, float]]:
    """Train (or resume training) as ``config`` says; returns the history, one dict per epoch."""
    if config.precision == "auto":  # resolved before anything records it: config.json names the real choice
        measure = lambda precision: _images_per_second(config, precision)  # noqa: E731
        choice, why = auto_precision(config.needs_float32, measure=measure)
        print(f"--precision auto: {choice} ({why})")
        config = dataclasses.replace(config, precision=choice)
    print("dcgan_tf training with:\n" + config.describe(), flush=True)
    # The strategy first: multi-worker collectives must be set up before TensorFlow runs any op.
    strategy = None if config.dry_run else make_strategy(config.strategy)
    mnist = data.load_mnist(config.data, config.dataset)
    images = data.training_images(mnist, config.train_size)
    labels = tf.constant(data.training_labels(mnist, config.train_size))
    if strategy is None:
        return [_dry_run(config, images, labels)]

    check_replica_split(config.batch_size, strategy.num_replicas_in_sync)
    chief = is_chief(strategy)
    hint = precision_hint(config.precision)
    if hint:
        print(hint)
    checkpoint_dir, output_dir = prepare_folders(config) if chief else worker_folders()
    # Every task reads the run's real folder (workers write only to scratch), so all resume alike.
    run_dir = Path(config.checkpoint_dir)
    # --fresh: the chief has just moved the old run aside; a worker must not race it to the old checkpoints.
    resume = None if config.fresh else resume_point(run_dir, config.checkpoint)
    # An older run of a model whose generator has changed since trains on with the generator it has.
    architecture = (
        config.model
        if resume is None
        else generator_architecture(resume.path, config.model, config.noise_dim, mnist.info.num_classes)
    )
    gan = build_gan(config, strategy, architecture)
    store = CheckpointStore(checkpoint_dir, **gan.checkpoint_objects())
    recipe = checkpoint_recipe(resume.path) if resume is not None else None
    if recipe not in (None, config.recipe):  # config.json says the same, unless it was replaced
        raise DcganError(
            f"{resume.name} was trained with --recipe {recipe}, not {config.recipe}: pass --recipe {recipe} to "
            "resume it, or use --fresh (moves the run to archive/) or another --checkpoint-dir"
        )
    if resume is not None and chief and config.checkpoint is not None:
        set_aside_later_checkpoints(run_dir, output_dir, resume)
    if resume is not None:
        missing = store.restore(resume.path)
        if "batches" in missing:  # saved before the counter existed, when the optimizer's counter was it
            gan.batches.assign(int(_read(gan.discriminator_optimizer.iterations)))
        # A checkpoint restores the rates it was trained with; a branch (--checkpoint) may lower them.
        gan.generator_optimizer.learning_rate.assign(config.g_learning_rate)
        gan.discriminator_optimizer.learning_rate.assign(config.d_learning_rate)
        if "generator_ema" in missing:
            gan.average.reset()
            print(f"{resume.name} has no averaged generator (saved by an older version): it starts from the raw one")
        print(f"resuming from {resume.path} (epoch {int(gan.epoch)}, batch {int(gan.step)})")
    start = int(gan.epoch)
    history = read_history(output_dir / HISTORY_FILE, up_to_epoch=start)
    if start >= config.epochs:
        print(f"nothing to do: this run has trained {start} epochs; pass --epochs > {start} to continue")
        return history
    if _out_of_time(config, history):
        print(f"nothing to do: this run has trained --max-minutes {config.max_minutes:g}; raise it to continue")
        return history
    dashboard = _open_dashboard(config, gan, resumed=resume is not None) if chief else Dashboard(None)

    num_steps = data.steps_per_epoch(len(images), config.batch_size)
    train_step = gan.make_step(config, strategy, num_steps)
    images = tf.constant(images)  # the whole training set, gathered into batches by index
    best = read_best(run_dir)
    try:
        with _stop_requests() as stop:
            for epoch in range(start, config.epochs):
                row = _train_epoch(
                    config, gan, store, train_step, strategy, (images, labels), epoch, num_steps, stop, dashboard
                )
                history.append(row)
                # Every task evaluates (same weights and best.json, same numbers), so all take part in a
                # best save, which is collective under multi-worker training.
                new_best = False
                out_of_time = _out_of_time(config, history)
                if _evaluation_due(config, epoch + 1, last=out_of_time):
                    row.update(_quality(gan, mnist, config))
                    new_best = math.isfinite(row["fid"]) and (best is None or row["fid"] < best["fid"])
                if chief:
                    grid = gan.epoch_grid()  # drawn once, for the epoch's PNG and for TensorBoard
                    scores = get_loss(config.loss).scores
                    _write_epoch_outputs(gan, grid, output_dir, history, scores, mnist.info.title)
                    _log_epoch(dashboard, gan, grid, row, num_steps * config.batch_size)
                print(_summary(row, config.epochs), flush=True)
                if out_of_time or new_best or (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == config.epochs:
                    saved = _save(gan, store, config)
                    print(f"saved {saved}")
                    if new_best:
                        best = _best_record(saved, row)
                        write_best(checkpoint_dir, best)
                        print(f"new best FID {row['fid']:.2f} (averaged generator): {saved}, recorded in {BEST_FILE}")
                if out_of_time:
                    print(f"--max-minutes {config.max_minutes:g} reached after epoch {epoch + 1}: stopping")
                    break
                if stop and epoch + 1 < config.epochs:  # the signal came during the epoch's last batch
                    raise Interrupted(
                        f"saved {_save(gan, store, config)} after epoch {epoch + 1}; run the same command to resume"
                    )
        if chief:
            _print_where_to_sample(checkpoint_dir, store.latest, best)
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
        dashboard.close()
        if chief:
            if int(gan.epoch) > start:  # this session finished an epoch: one more frame
                _write_gif(output_dir, int(gan.epoch))
        else:  # a worker's copies were only needed to take part in the collective saves
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return history


def _open_dashboard(config: TrainConfig, gan: Gan, resumed: bool) -> Dashboard:
    """The run's TensorBoard writer; events past the restored position (a crash's leftovers) are set aside."""
    logdir = Path(config.logdir)
    moved = truncate_after(logdir, _global_step(gan) if resumed else -1)
    if moved:
        print(f"TensorBoard: events past batch {_global_step(gan)} moved to {moved[0].parent}; copies end there")
    dashboard = Dashboard(logdir)
    if not resumed:
        dashboard.hyperparameters(config)
    print(f"TensorBoard: tensorboard --logdir {logdir}", flush=True)
    return dashboard


def _log_epoch(
    dashboard: Dashboard, gan: Gan, grid: tuple[np.ndarray, int], row: dict[str, float], images_per_epoch: int
) -> None:
    """The epoch's dashboard entries: both generators' fixed-noise grids, speed, and any quality metrics."""
    step = _global_step(gan)
    metrics = {k: v for k, v in row.items() if k not in HISTORY_COLUMNS}
    dashboard.scalars(step, {"images_per_second": images_per_epoch / row["seconds"], **metrics}, "epoch")
    grids = {"averaged_generator": grid, "raw_generator": grid_images(gan.generator, gan.sample_noise.numpy())}
    dashboard.images(step, {name: visualize.tile(images, cols) for name, (images, cols) in grids.items()})


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


def _best_record(checkpoint: str, row: dict[str, float]) -> dict:
    metrics = {k: v for k, v in row.items() if k not in HISTORY_COLUMNS}
    return {"checkpoint": Path(checkpoint).name, "epoch": int(row["epoch"]), "generator": "ema", **metrics}


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


def _train_epoch(config, gan, store, train_step, strategy, dataset, epoch, num_steps, stop, dashboard):
    """Run one epoch's remaining batches; returns its history row. Updates gan.epoch at the end.

    The generator is updated on every ``--critic-steps``-th batch of the run (counted across epochs).
    The step's metrics stay on the device and are read back once per ``--log-every`` batches (one
    transfer per window, so a GPU never waits on Python); the NaN check runs on each window, before
    anything of the epoch is saved.
    """
    first = int(gan.step)
    sums = gan.sums.numpy()  # a resumed half-epoch carries its running sums over
    print(f"Epoch {epoch + 1}/{config.epochs}")
    bar = keras.utils.Progbar(num_steps, stateful_metrics=METRICS, interval=0.5 if sys.stdout.isatty() else 30)
    started = time.perf_counter()
    done = first
    step_before_epoch = _global_step(gan) - first  # one read per epoch; the windows count on from here
    window = []  # (4,) metric tensors of the batches since the last read-back, still on the device
    batches = data.make_dataset(*dataset, config.batch_size, config.seed, epoch, skip_batches=first)
    if strategy.num_replicas_in_sync > 1 or config.strategy != "default":
        batches = strategy.experimental_distribute_dataset(batches)  # splits each global batch
    for images, labels in batches:
        update_generator = (step_before_epoch + done + 1) % config.critic_steps == 0
        outputs = train_step(images, labels, update_generator)
        window.append(tf.stack([tf.cast(outputs[name], tf.float32) for name in METRICS]))
        done += 1
        if len(window) < config.log_every and done < num_steps and not stop:
            continue
        values = tf.stack(window).numpy()  # (n, 4): the window's only device-to-host transfer
        if not np.isfinite(values).all():
            print(flush=True)  # end the progress bar's line
            bad = done - len(window) + 1 + int(np.argmax(~np.isfinite(values).all(axis=1)))
            raise _diverged(f"the losses became NaN/inf at epoch {epoch + 1}, batch {bad}", store, config)
        window = []
        sums[:4] += values.sum(axis=0)
        bar.update(done, values=list(zip(METRICS, sums[:4] / done)))
        learning_rates = {  # as the last batch used them (a --lr-schedule changes them every batch)
            "generator_learning_rate": _read(gan.generator_optimizer.learning_rate),
            "discriminator_learning_rate": _read(gan.discriminator_optimizer.learning_rate),
        }
        dashboard.scalars(step_before_epoch + done, {**_named_means(values), **learning_rates}, "steps")
        if stop and done < num_steps:
            print(flush=True)
            _save_position(gan, epoch, done, sums, time.perf_counter() - started)
            raise Interrupted(
                f"saved {_save(gan, store, config)} at epoch {epoch + 1}, batch {done}/{num_steps}; "
                "run the same command to resume"
            )
    _check_finite(gan, store, config)  # before the epoch leaves any trace: outputs, history, checkpoint
    sums[4] += time.perf_counter() - started
    _save_position(gan, epoch + 1, 0, np.zeros(5), 0.0)
    means = sums[:4] / max(done, 1)
    return dict(zip(HISTORY_COLUMNS, [epoch + 1, *means.tolist(), float(sums[4])]))


def _named_means(values: np.ndarray) -> dict[str, float]:
    """The window's mean of each of METRICS, named as history.csv names them (generator_loss, ...)."""
    return dict(zip(HISTORY_COLUMNS[1:5], values.mean(axis=0).tolist()))


def _read(variable) -> float:
    # convert_to_numpy also reads a variable mirrored across replicas, which float() cannot.
    return float(keras.ops.convert_to_numpy(variable))


def _save_position(gan: Gan, epoch: int, step: int, sums: np.ndarray, extra_seconds: float) -> None:
    sums = np.array(sums, dtype=np.float64)
    sums[4] += extra_seconds
    gan.epoch.assign(epoch)
    gan.step.assign(step)
    gan.sums.assign(sums)


def _global_step(gan: Gan) -> int:
    """The number of batches trained so far, which names checkpoints (one per training position)."""
    return int(gan.batches.numpy())


def _save(gan: Gan, store: CheckpointStore, config: TrainConfig) -> str:
    """Checkpoint the run at its batch count, with the config.json it was trained with beside it, once
    every weight is checked finite (a NaN checkpoint would be the one a resume picks up)."""
    _check_finite(gan, store, config)
    write_text(store.directory / CONFIG_FILE, config.to_json())  # here, so a failed run never rewrites it
    return store.save(_global_step(gan))


def _check_finite(gan: Gan, store: CheckpointStore, config: TrainConfig) -> None:
    """Raise the diverged-run error unless every weight of the three models is finite."""
    models = {"generator": gan.generator, "discriminator": gan.discriminator, "averaged generator": gan.generator_ema}
    broken = [name for name, model in models.items() if not all(np.isfinite(w).all() for w in model.get_weights())]
    if broken:
        raise _diverged(
            f"the {' and '.join(broken)} weights became NaN/inf by batch {_global_step(gan)}", store, config
        )


def _diverged(what: str, store: CheckpointStore, config: TrainConfig) -> DcganError:
    """The one-line error of a run that diverged: nothing of it saved, where to go back to, and how."""
    latest = store.latest
    lower = f"--learning-rate {config.learning_rate / 10:g}"
    fix = (
        f"the last good checkpoint is {latest}: resume from it with a smaller learning rate, "
        f"--checkpoint {Path(latest).name} {lower} (and this run's other flags)"
        if latest
        else f"no checkpoint was saved yet: start again with a smaller learning rate, {lower}"
    )
    return DcganError(f"{what}; nothing of it was saved: {fix}")


def _out_of_time(config: TrainConfig, history: list[dict[str, float]]) -> bool:
    """Whether the run's training time (epochs' seconds, evaluations excluded) has reached --max-minutes."""
    return config.max_minutes is not None and sum(row["seconds"] for row in history) >= 60 * config.max_minutes


def _evaluation_due(config: TrainConfig, epoch: int, last: bool = False) -> bool:
    """Whether ``--eval-every`` measures after ``epoch``: every K epochs and after the run's last epoch."""
    return config.eval_every is not None and (epoch % config.eval_every == 0 or epoch == config.epochs or last)


def _quality(gan: Gan, mnist: data.Mnist, config: TrainConfig) -> dict[str, float]:
    """The ``--eval-every`` metrics of the generator now (evaluation imported only when asked for)."""
    from dcgan_tf.evaluation import training_metrics

    row = training_metrics(gan.generator_ema, mnist, config.evaluator_dir)
    if config.ema_decay > 0 or config.ema_half_life > 0:  # else the two generators are the same
        row.update({f"raw_{k}": v for k, v in training_metrics(gan.generator, mnist, config.evaluator_dir).items()})
    return row


def _write_epoch_outputs(
    gan: Gan, grid: tuple[np.ndarray, int], output_dir: Path, history: list[dict[str, float]], scores: str, title: str
) -> None:
    epoch = int(gan.epoch)
    images, cols = grid
    visualize.save_grid(images, output_dir / epoch_image_name(epoch), cols=cols)
    write_history(output_dir / HISTORY_FILE, history)
    visualize.plot_history(history, output_dir / PLOT_FILE, scores)
    if any("fid" in row for row in history):
        from dcgan_tf.evaluation import PLOT_FILE as METRICS_PLOT
        from dcgan_tf.evaluation import plot_metrics

        plot_metrics(history, output_dir / METRICS_PLOT, title=title)


def _write_gif(output_dir: Path, last_epoch: int) -> None:
    frames = [output_dir / epoch_image_name(e) for e in range(1, last_epoch + 1)]
    frames = [f for f in frames if f.is_file()]
    if frames:
        visualize.save_gif(frames, output_dir / GIF_FILE)


def _summary(row: dict[str, float], epochs: int) -> str:
    quality = (
        f", FID {row['fid']:.2f}, classifier score {row['classifier_score']:.2f}, precision "
        f"{row['precision']:.3f}, recall {row['recall']:.3f}"
        if "fid" in row
        else ""
    )
    if "raw_fid" in row:
        quality += f" (raw generator: FID {row['raw_fid']:.2f}, classifier score {row['raw_classifier_score']:.2f})"
    return (
        f"epoch {int(row['epoch'])}/{epochs}: generator loss {row['generator_loss']:.4f}, "
        f"discriminator loss {row['discriminator_loss']:.4f}, D(x) {row['d_real']:.3f}, "
        f"D(G(z)) {row['d_fake']:.3f}, {row['seconds']:.1f}s{quality}"
    )


def _dry_run(config: TrainConfig, images: np.ndarray, labels: tf.Tensor) -> dict[str, float]:
    gan = build_gan(config)
    step = gan.make_step(config, None, steps_per_epoch=1)  # one batch: where a schedule ends does not matter
    batch = next(iter(data.make_dataset(tf.constant(images), labels, config.batch_size, config.seed, 0)))
    outputs = {name: float(value) for name, value in step(*batch).items()}
    print("dry run: one batch trained, nothing written: " + ", ".join(f"{k} {v:.4f}" for k, v in outputs.items()))
    return outputs


@contextlib.contextmanager
def _stop_requests() -> Iterator[list[int]]:
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
