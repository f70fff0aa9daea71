"""What happens at an epoch's end: its quality measured (``--eval-every``) and the best checkpoint
kept, its outputs written (the fixed-noise grid, ``history.csv``, the plots, TensorBoard), and the
checkpoint policy (every ``--checkpoint-every`` epochs, at the last one, at a new best, when time is up).

`end_epoch` is called once per epoch by `training.fit`, on every task of a multi-worker run (all
evaluate and save together, since saving is collective), with only the chief writing outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio

from dcgan_tf import visualize
from dcgan_tf.checkpoints import BEST_FILE, write_best
from dcgan_tf.data import Mnist
from dcgan_tf.loop import Session, save
from dcgan_tf.losses import get_loss
from dcgan_tf.runs import HISTORY_COLUMNS, HISTORY_FILE, write_history

GIF_FILE = "dcgan.gif"
PLOT_FILE = "losses.png"


def epoch_image_name(epoch: int) -> str:
    return f"image_at_epoch_{epoch:04d}.png"


@dataclass
class Outputs:
    """Where the chief writes, what the run measures against, and the best checkpoint so far."""

    chief: bool  # only the chief writes outputs; every task evaluates and saves
    checkpoint_dir: Path
    output_dir: Path
    mnist: Mnist  # the evaluation's reference
    best: dict | None  # best.json's record


def end_epoch(session: Session, outputs: Outputs, history: list[dict[str, float]], last: bool) -> None:
    """Evaluate, write and checkpoint as due after the epoch ``history[-1]`` describes; ``last``: the run
    stops after it (its last epoch or its time is up), so it is measured and saved."""
    config, row = session.config, history[-1]
    epoch = int(row["epoch"])
    new_best = False
    if config.eval_every is not None and (epoch % config.eval_every == 0 or epoch == config.epochs or last):
        row.update(_quality(session, outputs.mnist))
        new_best = math.isfinite(row["fid"]) and (outputs.best is None or row["fid"] < outputs.best["fid"])
    if outputs.chief:
        _write_outputs(session, outputs, history)
    print(summary(row, config.epochs), flush=True)
    if last or new_best or epoch % config.checkpoint_every == 0:
        saved = save(session)
        print(f"saved {saved}")
        if new_best:
            outputs.best = _best_record(saved, row)
            write_best(outputs.checkpoint_dir, outputs.best)
            print(f"new best FID {row['fid']:.2f} (averaged generator): {saved}, recorded in {BEST_FILE}")


def _quality(session: Session, mnist: Mnist) -> dict[str, float]:
    """The ``--eval-every`` metrics of the generators now (evaluation imported only when asked for)."""
    from dcgan_tf.evaluation import training_metrics

    config, gan = session.config, session.gan
    row = training_metrics(gan.sampling_view(gan.generator_ema), mnist, config.evaluator_dir)
    if config.ema_decay > 0 or config.ema_half_life > 0:  # else the two generators are the same
        raw = training_metrics(gan.sampling_view(gan.generator), mnist, config.evaluator_dir)
        row.update({f"raw_{k}": v for k, v in raw.items()})
    return row


def _write_outputs(session: Session, outputs: Outputs, history: list[dict[str, float]]) -> None:
    """The epoch's grid PNG, history.csv and plots, and its TensorBoard entries (both generators' grids,
    speed and any quality metrics)."""
    gan, row, folder = session.gan, history[-1], outputs.output_dir
    images, cols = grid = gan.epoch_grid()  # drawn once, for the PNG and for TensorBoard
    visualize.save_grid(images, folder / epoch_image_name(int(row["epoch"])), cols=cols)
    write_history(folder / HISTORY_FILE, history)
    visualize.plot_history(history, folder / PLOT_FILE, get_loss(session.config.loss).scores)
    if any("fid" in r for r in history):
        from dcgan_tf.evaluation import PLOT_FILE as METRICS_PLOT
        from dcgan_tf.evaluation import plot_metrics

        plot_metrics(history, folder / METRICS_PLOT, title=outputs.mnist.info.title)
    step = gan.batches_trained
    images_per_epoch = session.steps_per_epoch * session.config.batch_size
    metrics = {k: v for k, v in row.items() if k not in HISTORY_COLUMNS}
    session.dashboard.scalars(step, {"images_per_second": images_per_epoch / row["seconds"], **metrics}, "epoch")
    grids = {"averaged_generator": grid, "raw_generator": gan.epoch_grid(gan.generator)}
    session.dashboard.images(step, {name: visualize.tile(im, c) for name, (im, c) in grids.items()})


def _best_record(checkpoint: str, row: dict[str, float]) -> dict:
    metrics = {k: v for k, v in row.items() if k not in HISTORY_COLUMNS}
    return {"checkpoint": Path(checkpoint).name, "epoch": int(row["epoch"]), "generator": "ema", **metrics}


def write_gif(output_dir: Path, last_epoch: int) -> None:
    """The run's epoch grids so far as one animation: those of the last grid's size (a run resumed since grids
    were capped at `sampling.GRID_COLUMNS` columns and `visualize.MAX_PIXELS` pixels has larger ones before)."""
    files = [output_dir / epoch_image_name(e) for e in range(1, last_epoch + 1)]
    frames = [iio.imread(f) for f in files if f.is_file()]
    if frames:
        visualize.save_gif([f for f in frames if f.shape == frames[-1].shape], output_dir / GIF_FILE)


def summary(row: dict[str, float], epochs: int) -> str:
    """The epoch's one printed line: losses, D's outputs, seconds and any quality metrics."""
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
