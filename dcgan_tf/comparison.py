"""Comparing the GAN family on one table: ``python -m dcgan_tf.compare`` trains and measures each variant.

Every variant is an ordinary training run in its own folder under one root (so each resumes,
samples and exports like any run), trained on the same data for the same epochs, then measured by
the same evaluator on the same number of samples. The result is ``comparison.md`` (one markdown
table) and ``comparison.png`` (a sample grid per variant side by side, and FID and classifier score
against epoch from each run's ``--eval-every`` history).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from matplotlib.figure import Figure

from dcgan_tf.checkpoints import load_generator
from dcgan_tf.config import VARIANTS, TrainConfig, parse_variants
from dcgan_tf.data import load_mnist, resolve_dataset
from dcgan_tf.evaluation import Scores, evaluate_generator, evaluate_real, get_reference
from dcgan_tf.files import ensure_writable, write_text
from dcgan_tf.models import build_models
from dcgan_tf.runs import HISTORY_FILE, read_history
from dcgan_tf.sampling import sample_with_labels
from dcgan_tf.training import fit
from dcgan_tf.visualize import save_figure, style_epoch_axes, tile

TABLE_FILE = "comparison.md"
FIGURE_FILE = "comparison.png"


@dataclass(frozen=True)
class VariantResult:
    """One variant's final scores, speed and size."""

    name: str
    run_dir: Path
    generator: keras.Model  # the averaged generator that was measured (and is drawn in the figure)
    epochs: int
    scores: Scores
    seconds_per_epoch: float
    parameters: int  # generator + discriminator
    history: list[dict[str, float]]


def compare(config: Any) -> list[VariantResult]:
    """Everything ``python -m dcgan_tf.compare`` does for a `CompareConfig`; returns one result per variant."""
    root = ensure_writable(config.root, "--root")
    names = parse_variants(config.variants)
    mnist = load_mnist(config.data, resolve_dataset(config.data, config.dataset))
    results = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        run_dir = root / name
        train_config = TrainConfig(
            data=config.data,
            dataset=config.dataset,
            epochs=config.epochs,
            train_size=config.train_size,
            batch_size=config.batch_size,
            seed=config.seed,
            eval_every=config.eval_every or max(1, config.epochs // 5),
            evaluator_dir=config.evaluator_dir,
            checkpoint_dir=str(run_dir),
            **VARIANTS[name],
        )
        fit(train_config)  # trains, resumes, or does nothing if the run is complete
        results.append(_measure(name, run_dir, train_config, mnist, config))
    reference = get_reference(mnist, config.evaluator_dir)
    floor = evaluate_real(mnist, reference, config.num_samples, config.seed)
    table = format_markdown(results, floor, config)
    write_text(root / TABLE_FILE, table)
    figure = plot_comparison(results, root / FIGURE_FILE)
    print("\n" + table)
    print(f"wrote {root / TABLE_FILE} and {figure}")
    return results


def _measure(name: str, run_dir: Path, train_config: TrainConfig, mnist, config: Any) -> VariantResult:
    reference = get_reference(mnist, config.evaluator_dir)
    generator = load_generator(run_dir)
    scores = evaluate_generator(generator, reference, config.num_samples, config.seed)
    history = read_history(run_dir / HISTORY_FILE)
    _, discriminator = build_models(train_config.model, train_config.noise_dim)  # only counted
    return VariantResult(
        name=name,
        run_dir=run_dir,
        generator=generator,
        epochs=len(history),
        scores=scores,
        seconds_per_epoch=float(np.mean([row["seconds"] for row in history])) if history else float("nan"),
        parameters=generator.count_params() + discriminator.count_params(),
        history=history,
    )


def format_markdown(results: list[VariantResult], floor: Scores, config: Any) -> str:
    """The comparison as a markdown table, the real digits' scores as the first row."""
    lines = [
        f"{config.num_samples:,} samples of each variant's averaged generator (latest checkpoint) against the "
        "test digits; seconds per epoch as measured in that run.",
        "",
        "| variant | epochs | FID | class score | precision | recall | class share min-max | digit accuracy "
        "| s/epoch | parameters |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        _row("real training digits", "-", floor, "-", "-"),
    ]
    for r in results:
        lines.append(_row(r.name, str(r.epochs), r.scores, f"{r.seconds_per_epoch:.1f}", f"{r.parameters:,}"))
    return "\n".join(lines) + "\n"


def _row(name: str, epochs: str, s: Scores, seconds: str, parameters: str) -> str:
    shares = f"{min(s.class_histogram):.1%} - {max(s.class_histogram):.1%}"
    accuracy = "-" if s.digit_accuracy is None else f"{s.digit_accuracy:.1%}"
    return (
        f"| {name} | {epochs} | {s.fid:.2f} | {s.classifier_score:.2f} | {s.precision:.3f} | {s.recall:.3f} | {shares} "
        f"| {accuracy} | {seconds} | {parameters} |"
    )


def plot_comparison(results: list[VariantResult], path: str | Path, rows: int = 5) -> Path:
    """One figure: a sample grid per variant side by side, then FID and classifier score against epoch."""
    fig = Figure(figsize=(3.6 * max(len(results), 2), 6.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.2])
    for ax, r in zip(np.atleast_1d(top.subplots(1, len(results))), results):
        images, labels = sample_with_labels(r.generator, 10 * rows, seed=1)
        if labels is not None:  # sorted by digit (rows of the same digit): make each row read 0 to 9
            images = images.reshape(10, rows, *images.shape[1:]).swapaxes(0, 1).reshape(images.shape)
        ax.imshow(tile(images, cols=10), cmap="gray")
        ax.set_title(f"{r.name}\nFID {r.scores.fid:.1f}, score {r.scores.classifier_score:.2f}", fontsize=10)
        ax.axis("off")
    fid_ax, score_ax = bottom.subplots(1, 2)
    for i, r in enumerate(results):
        rows = [row for row in r.history if "fid" in row]
        epochs = [row["epoch"] for row in rows]
        fid_ax.plot(epochs, [row["fid"] for row in rows], marker="o", color=f"C{i}", label=r.name)
        score_ax.plot(epochs, [row["classifier_score"] for row in rows], marker="o", color=f"C{i}", label=r.name)
    fid_ax.set(title="FID during training (2,000 samples, lower is better)", xlabel="epoch", yscale="log")
    score_ax.set(title="Classifier score during training (max 10)", xlabel="epoch", ylim=(0.9, 10.1))
    style_epoch_axes(fid_ax, score_ax)
    return save_figure(fig, path, dpi=90)


def describe(config: Any) -> str:
    """The comparison's settings, one ``name = value`` line each."""
    return "\n".join(f"  {f.name:<13}= {getattr(config, f.name)!r}" for f in dataclasses.fields(config))
