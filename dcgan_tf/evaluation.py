"""Measuring sample quality: generated digits against the test split, through the evaluator network.

This module owns the glue between the maths (`metrics`), the evaluator CNN (`evaluator`) and the
checkpoints: drawing samples, the test-split reference computed once, the real-data floor, the
printed table, the JSON records and the metrics-vs-epoch plot. ``python -m dcgan_tf.evaluate`` calls
`evaluate`; the training loop's ``--eval-every`` calls `training_metrics`.

How the numbers are computed (and why):
- FID: Gaussian fits of the evaluator's 128-d penultimate features of *all* N samples and of *all*
  test digits (one fit each, never averaged over batches, as TF-GAN's Frechet distance does).
- Classifier score and class histogram: from the evaluator's softmax over all N samples.
- Precision/recall: k-NN balls over equal-size sets, the first min(N, test size) samples against as
  many test digits, because the balls' size depends on the set size (Kynkaanniemi et al. 2019).
- The floor: the same metrics for N random *training* digits, so "how close to real" has a scale.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from matplotlib.figure import Figure

from dcgan_tf import metrics
from dcgan_tf.checkpoints import (
    CheckpointInfo,
    damage,
    find_checkpoint,
    generator_choices,
    list_checkpoints,
    load_generator,
)
from dcgan_tf.config import CONFIG_FILE, GENERATOR_NAMES, read_saved_config
from dcgan_tf.data import DATASETS, IMAGE_FOLDER, Mnist, dataset_of_run, load_mnist, steps_per_epoch, to_model_range
from dcgan_tf.errors import DcganError
from dcgan_tf.evaluator import Evaluator, Recipe, cache_key, load_or_train_evaluator
from dcgan_tf.files import ensure_writable, write_text
from dcgan_tf.sampling import cycled_labels, generate, noise_dim_of
from dcgan_tf.tutorial import trained_steps
from dcgan_tf.visualize import save_figure, style_epoch_axes

DEFAULT_SAMPLES = 10_000
TRAINING_SAMPLES = 2_000  # per --eval-every evaluation: ~5 s on 2 CPU cores, FID biased up vs 10,000
PLOT_FILE = "metrics.png"
DIGITS = DATASETS["mnist"].class_names
# The flat history.csv columns `training_metrics` returns, in this order (conditional models add
# digit_accuracy).
METRIC_COLUMNS = ("fid", "classifier_score", "precision", "recall", "min_class_share", "max_class_share")
# The random stream of evaluation noise and real-digit draws, apart from training's streams, so that
# evaluating never changes training and every evaluation of a checkpoint sees the same noise.
_EVAL_STREAM = 7_777


@dataclass(frozen=True)
class Scores:
    """The metrics of one set of images against the test split."""

    fid: float
    classifier_score: float
    precision: float
    recall: float
    class_histogram: tuple[float, ...]  # share of each predicted class 0-9
    num_samples: int
    # Conditional generators: the share of samples the evaluator reads as the digit asked for, per class.
    digit_accuracy: float | None = None
    digit_accuracy_per_class: tuple[float, ...] | None = None

    def columns(self) -> dict[str, float]:
        """Flat float columns for ``history.csv`` (`METRIC_COLUMNS`)."""
        columns = {
            "fid": self.fid,
            "classifier_score": self.classifier_score,
            "precision": self.precision,
            "recall": self.recall,
            "min_class_share": min(self.class_histogram),
            "max_class_share": max(self.class_histogram),
        }
        if self.digit_accuracy is not None:
            columns["digit_accuracy"] = self.digit_accuracy
        return columns

    def record(
        self,
        checkpoint: str | None = None,
        epoch: int | None = None,
        generator: str = "ema",
        batches: int | None = None,
    ) -> dict[str, Any]:
        """The JSON object ``--json`` writes for one generator of one checkpoint (``epoch``: completed epochs,
        ``batches``: batches trained, which also places a mid-epoch checkpoint)."""
        return {
            "checkpoint": checkpoint,
            "epoch": epoch,
            "batches": batches,
            "generator": generator,
            "fid": self.fid,
            "classifier_score": self.classifier_score,
            "precision": self.precision,
            "recall": self.recall,
            "class_histogram": list(self.class_histogram),
        } | (
            {}
            if self.digit_accuracy is None
            else {
                "digit_accuracy": self.digit_accuracy,
                "digit_accuracy_per_class": list(self.digit_accuracy_per_class),
            }
        )


class Reference:
    """The test split as the metrics see it, computed once per evaluator and reused for every score."""

    def __init__(self, evaluator: Evaluator, mnist: Mnist, k: int = metrics.DEFAULT_K) -> None:
        self.evaluator = evaluator
        self.k = k
        self.features, _ = evaluator.features_and_probs(to_model_range(mnist.x_test))
        self.fit = metrics.GaussianFit.of(self.features)
        self._radii: dict[int, np.ndarray] = {}  # k-NN radii of the first n test features, by n

    def score(self, images: np.ndarray, labels: np.ndarray | None = None) -> Scores:
        """All metrics for ``images`` (N, 28, 28, 1) in [-1, 1] against the test split.

        ``labels`` (N,), the digits a conditional generator was asked for, add the digit accuracy.
        """
        if not np.isfinite(images).all():
            raise DcganError("the generator produced NaN/inf pixels (the run diverged): evaluate an earlier checkpoint")
        if len(images) <= self.k:
            raise DcganError(f"{len(images)} samples are too few for k={self.k} precision/recall: use more samples")
        features, probs = self.evaluator.features_and_probs(images)
        n = min(len(features), len(self.features))  # equal-size sets for precision/recall
        if n not in self._radii:
            self._radii[n] = metrics.knn_radii(self.features[:n], self.k)
        precision, recall = metrics.precision_recall(self.features[:n], features[:n], self.k, real_radii=self._radii[n])
        accuracy = {}
        if labels is not None:
            hits = np.argmax(probs, axis=1) == labels
            per_class = tuple(
                float(hits[labels == d].mean()) if np.any(labels == d) else float("nan")
                for d in range(probs.shape[1])  # the evaluator's classes
            )
            accuracy = {"digit_accuracy": float(hits.mean()), "digit_accuracy_per_class": per_class}
        return Scores(
            fid=metrics.frechet_distance(metrics.GaussianFit.of(features), self.fit),
            classifier_score=metrics.classifier_score(probs),
            precision=precision,
            recall=recall,
            class_histogram=tuple(float(share) for share in metrics.class_histogram(probs)),
            num_samples=len(images),
            **accuracy,
        )


def sample_images(generator: keras.Model, num_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """``num_samples`` generated digits (N, 28, 28, 1) in [-1, 1] from fixed, seeded noise, and the
    digits (N,) a conditional generator was asked for (0-9 in turn, so every class is equally asked)."""
    noise = np.random.default_rng([seed, _EVAL_STREAM]).standard_normal((num_samples, noise_dim_of(generator)))
    labels = cycled_labels(generator, num_samples)
    return generate(generator, noise.astype(np.float32), labels), labels


def real_images(mnist: Mnist, num_samples: int, seed: int = 0) -> np.ndarray:
    """Up to ``num_samples`` training digits drawn without replacement (seeded), in [-1, 1]."""
    count = min(num_samples, len(mnist.x_train))
    chosen = np.random.default_rng([seed, _EVAL_STREAM, 1]).choice(len(mnist.x_train), count, replace=False)
    return to_model_range(mnist.x_train[np.sort(chosen)])


def evaluate_generator(
    generator: keras.Model, reference: Reference, num_samples: int = DEFAULT_SAMPLES, seed: int = 0
) -> Scores:
    """Metrics of ``num_samples`` digits from ``generator`` against the test split."""
    return reference.score(*sample_images(generator, num_samples, seed))


def evaluate_real(mnist: Mnist, reference: Reference, num_samples: int = DEFAULT_SAMPLES, seed: int = 0) -> Scores:
    """The floor: the same metrics for real training digits (as many as the generated ones, or all)."""
    return reference.score(real_images(mnist, num_samples, seed))


# Training-time evaluation keeps one Reference per (evaluator folder, data): the test features are
# computed on the first call and reused at every later epoch.
_REFERENCES: dict[tuple[str, str], Reference] = {}


def get_reference(mnist: Mnist, evaluator_dir: str | Path | None = None, retrain: bool = False) -> Reference:
    """The (cached) test-split reference for ``mnist``, training the evaluator first if none is cached."""
    key = (str(evaluator_dir), cache_key(mnist, Recipe()))
    if retrain or key not in _REFERENCES:
        evaluator = load_or_train_evaluator(mnist, evaluator_dir, retrain=retrain)
        _REFERENCES[key] = Reference(evaluator, mnist)
    return _REFERENCES[key]


def training_metrics(
    generator: keras.Model,
    mnist: Mnist,
    evaluator_dir: str | Path | None = None,
    num_samples: int | None = None,
) -> dict[str, float]:
    """The ``--eval-every`` hook: `METRIC_COLUMNS` for ``num_samples`` digits (`TRAINING_SAMPLES` when None)
    from ``generator``, as floats.

    The first call trains (or loads) the evaluator and embeds the test split; later calls reuse both.
    The noise is the same at every call, so epoch-to-epoch changes come from the generator alone.
    """
    if num_samples is None:  # read at call time: the tests' tiny runs score fewer
        num_samples = TRAINING_SAMPLES
    return evaluate_generator(generator, get_reference(mnist, evaluator_dir), num_samples).columns()


def format_table(rows: Sequence[tuple[str, str, Scores]], class_names: Sequence[str] = DIGITS) -> str:
    """A fixed-width table, one line per (label, epoch, scores); the rarest and commonest class named."""
    header = (
        f"{'':<30}{'epoch':>7}{'FID':>10}{'class score':>13}{'precision':>11}{'recall':>8}"
        f"{'class share: smallest - largest':>40}"
    )
    lines = [header, "-" * len(header)]
    for label, epoch, s in rows:
        lines.append(
            f"{label:<30}{epoch:>7}{s.fid:>10.2f}{s.classifier_score:>13.2f}{s.precision:>11.3f}{s.recall:>8.3f}"
            f"{class_share_range(s, class_names):>40}"
        )
    for label, _, s in rows:  # conditional generators: were the requested classes drawn?
        if s.digit_accuracy is not None:
            per_class = ", ".join(
                f"{name}: {share:.0%}" for name, share in zip(class_names, s.digit_accuracy_per_class)
            )
            lines.append(f"{label}: requested class recognised in {s.digit_accuracy:.1%} of samples ({per_class})")
    return "\n".join(lines)


def class_share_range(scores: Scores, class_names: Sequence[str] = DIGITS) -> str:
    """``5.6% Sandal - 15.9% Bag``: the smallest and largest predicted class share, with the classes' names."""
    shares = np.asarray(scores.class_histogram)
    low, high = int(shares.argmin()), int(shares.argmax())
    return f"{shares[low]:.1%} {class_names[low]} - {shares[high]:.1%} {class_names[high]}"


def plot_class_shares(rows: Sequence[tuple[str, Scores]], class_names: Sequence[str], path: str | Path) -> Path:
    """Bars of each predicted class's share, one group per class (named), one bar per (label, scores)."""
    fig = Figure(figsize=(max(8, 1.2 * len(class_names)), 4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(rows)
    for i, (label, scores) in enumerate(rows):
        x = np.arange(len(class_names)) + (i - (len(rows) - 1) / 2) * width
        ax.bar(x, scores.class_histogram, width, label=label, color=f"C{i}")
    ax.axhline(1 / len(class_names), color="gray", linewidth=0.8, linestyle=":")
    ax.set_xticks(np.arange(len(class_names)), class_names, rotation=30 if max(map(len, class_names)) > 2 else 0)
    ax.set(title="Which classes the evaluator sees in the samples (ideal: equal shares)", ylabel="share of samples")
    ax.legend(fontsize="small")
    return save_figure(fig, path)


LEGEND = (
    "FID: lower is better (0 = same feature statistics as the test images); class score: 1-10, higher is\n"
    "better; precision: share of samples that look like real images; recall: share of the real images'\n"
    "variety the samples cover; class share: smallest and largest share of a predicted class (ideal ~10% each)."
)


def plot_metrics(
    rows: Sequence[dict[str, float]], path: str | Path, floor: dict[str, float] | None = None, title: str = "MNIST"
) -> Path:
    """Plot `METRIC_COLUMNS` against epoch as a 2x2 PNG; ``floor`` (real digits' columns) as dashed lines.

    ``rows`` are dicts with ``epoch`` and the metric columns, e.g. ``history.csv`` rows (rows without
    ``fid``, from epochs that were not evaluated, are skipped). ``raw_<column>`` values, where present,
    are the raw generator's and are drawn beside the averaged generator's as faint dotted lines.
    """
    rows = sorted((r for r in rows if "fid" in r), key=lambda r: r["epoch"])
    epochs = [r["epoch"] for r in rows]
    fig = Figure(figsize=(10, 7), layout="constrained")
    (fid, score), (pr, shares) = fig.subplots(2, 2)

    # Runs with an averaged generator also carry the raw generator's metrics as raw_<column>.
    has_raw = any("raw_fid" in r for r in rows)

    def draw(ax, column: str, label: str, color: str) -> None:
        ax.plot(
            epochs, [r[column] for r in rows], marker="o", color=color, label=label + (", averaged" if has_raw else "")
        )
        if has_raw:
            raw = [r.get("raw_" + column, np.nan) for r in rows]
            ax.plot(epochs, raw, marker="x", linestyle=":", color=color, alpha=0.5, label=f"{label}, raw")
        if floor is not None:
            ax.axhline(floor[column], color=color, linestyle="--", linewidth=1, label=f"{label}, real digits")

    draw(fid, "fid", "FID", "C0")
    fid.set(title=f"{title} FID (lower is better)", ylabel="Frechet distance")
    if rows and min(r["fid"] for r in rows) > 0:
        fid.set_yscale("log")  # early epochs are orders of magnitude worse than late ones
    draw(score, "classifier_score", "classifier score", "C1")
    score.set(title="Classifier score (max 10)", ylim=(0.9, 10.1))
    draw(pr, "precision", "precision", "C2")
    draw(pr, "recall", "recall", "C3")
    pr.set(title="Improved precision and recall", ylim=(-0.02, 1.02))
    draw(shares, "min_class_share", "smallest class", "C4")
    draw(shares, "max_class_share", "largest class", "C5")
    shares.axhline(0.1, color="gray", linewidth=0.8, linestyle=":")
    shares.set(title="Mode coverage: predicted class shares", ylim=(0, None))
    for ax in (fid, score, pr, shares):
        ax.set_xlabel("epoch")
    style_epoch_axes(fid, score, pr, shares)
    return save_figure(fig, path)


def evaluate(config: Any) -> list[dict[str, Any]]:
    """Everything ``python -m dcgan_tf.evaluate`` does for an `EvaluateConfig`; returns the JSON records."""
    checkpoint_dir = Path(config.checkpoint_dir)
    chosen = _chosen_checkpoints(checkpoint_dir, config.checkpoint, config.all_checkpoints)
    # Which generators each checkpoint has (a tutorial's has no averaged one), checked before the slow part.
    generators = {info.name: generator_choices(info.path, config.generator) for info in chosen}
    # Fail on unwritable outputs now, not after minutes of evaluation.
    json_path = Path(config.json) if config.json else None
    if json_path is not None:
        ensure_writable(json_path.parent, "--json")
    plot_path = Path(config.plot) if config.plot else checkpoint_dir / PLOT_FILE
    if config.all_checkpoints or config.plot:
        ensure_writable(plot_path.parent, "--plot")

    saved = read_saved_config(checkpoint_dir) or {}
    data_path = config.data if config.data is not None else saved.get("data")
    if config.data is None and data_path is not None and not Path(data_path).exists():
        raise DcganError(
            f"the run was trained on --data {data_path} ({checkpoint_dir / CONFIG_FILE}), which is not there from "
            "this folder: pass --data with the dataset's path"
        )
    mnist = load_mnist(data_path, saved.get("dataset", "mnist"))
    dataset = mnist.info
    if dataset.num_classes < 2:
        raise DcganError(
            f"evaluate needs labelled classes, and {data_path} is one class (no class subfolders): its evaluator "
            "learns to tell the classes apart, so put the images into one subfolder per class"
        )
    if mnist.dataset == IMAGE_FOLDER and dataset.identity != dataset_of_run(checkpoint_dir, saved).identity:
        print(f"note: the images in {data_path} have changed since this run was trained; measuring against them now")
    print(
        f"data: {dataset.title}, {data_path or 'keras.datasets.' + mnist.dataset} ({len(mnist.x_train):,} training, "
        f"{len(mnist.x_test):,} test {dataset.item}s)",
        flush=True,
    )
    evaluator = load_or_train_evaluator(mnist, config.evaluator_dir, retrain=config.retrain_evaluator)
    reference = Reference(evaluator, mnist, k=config.k)

    floor = evaluate_real(mnist, reference, config.num_samples, config.seed)
    rows = [(f"real training {dataset.item}s ({floor.num_samples:,})", "-", floor)]
    records = []
    for info in chosen:
        for which in generators[info.name]:
            print(
                f"evaluating {info.label}, {GENERATOR_NAMES[which]}, on {config.num_samples:,} samples...", flush=True
            )
            generator = load_generator(checkpoint_dir, info.name, which)
            scores = evaluate_generator(generator, reference, config.num_samples, config.seed)
            where = str(info.epoch) + (f" + {info.epoch_batches} batches" if info.epoch_batches else "")
            where = where if info.epoch >= 0 else "-"  # the tutorial's checkpoints save no position
            rows.append((f"{info.name} ({GENERATOR_NAMES[which]})", where, scores))
            # The tutorial's checkpoints are numbered by saves, not batches: its optimizer counted those.
            batches = info.number if info.epoch >= 0 else trained_steps(info.path)
            records.append(scores.record(info.name, info.epoch if info.epoch >= 0 else None, which, batches))

    print(
        f"\n{config.num_samples:,} generated {dataset.item}s vs the {len(mnist.x_test):,} test {dataset.item}s "
        f"(precision/recall k={config.k}); {evaluator.describe()}"
    )
    print(format_table(rows, dataset.class_names))
    print(LEGEND)
    if config.plot and not config.all_checkpoints:
        print(f"wrote {plot_class_shares([(label, s) for label, _, s in rows], dataset.class_names, plot_path)}")
    if json_path is not None:
        payload = records if len(records) > 1 or config.all_checkpoints else records[0]
        write_text(json_path, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {json_path}")
    if config.all_checkpoints:
        # One point per checkpoint, at its training position: a mid-epoch one (left by Ctrl-C) between epochs.
        batches_per_epoch = steps_per_epoch(saved.get("train_size") or len(mnist.x_train), saved.get("batch_size", 256))
        points: dict[str, dict[str, float]] = {}
        for record, (_, _, scores) in zip(records, rows[1:]):
            if record["batches"] is None:  # a tutorial's checkpoint without its optimizers: no position to plot
                continue
            prefix = "raw_" if record["generator"] == "raw" and config.generator == "both" else ""
            position = {"epoch": record["batches"] / max(batches_per_epoch, 1)}
            points.setdefault(record["checkpoint"], position).update(
                {prefix + k: v for k, v in scores.columns().items()}
            )
        print(f"wrote {plot_metrics(list(points.values()), plot_path, floor=floor.columns(), title=dataset.title)}")
    return records


def _chosen_checkpoints(directory: Path, name: str | None, all_checkpoints: bool) -> list[CheckpointInfo]:
    """The checkpoint asked for, or with ``all_checkpoints`` every intact one (a damaged one is named and skipped)."""
    infos = list_checkpoints(directory)
    if not all_checkpoints or not infos:
        return [find_checkpoint(directory, name)]  # raises the one-line errors for a missing folder, name or file
    intact = []
    for info in infos:
        problem = damage(info.path)
        if problem is None:
            intact.append(info)
        else:
            print(f"skipping {info.name}: damaged ({problem})", flush=True)
    if not intact:
        raise DcganError(f"every checkpoint in {directory} is damaged: restore them from a backup")
    return intact
