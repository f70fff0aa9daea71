"""Time to good digits: train each --recipe for the same training time, side by side, and plot quality against time.

    python benchmarks/time_to_quality.py --data PATH --minutes 60                 # both recipes, ~70 min wall-clock
    python benchmarks/time_to_quality.py --data PATH --minutes 60 --report-only   # redraw from finished runs

Each recipe trains in its own process at the same time (``python -m dcgan_tf.train --recipe R --max-minutes M
--eval-every K``, in ROOT/<recipe>/), each with an equal share of the CPU threads, so both see the same machine
and the same load. Every K epochs the training loop scores the averaged and the raw generator (2,000 samples,
the project's evaluator). This script then draws ROOT/time_to_quality.png (FID and classifier score against
training minutes and against steps, averaged solid, raw dotted; the last epoch grid of each recipe) and writes
ROOT/time_to_quality.md (a table). Training time excludes the evaluations. Running it again resumes unfinished
runs (each stops at its --max-minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import imageio.v3 as iio  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dcgan_tf.config import RECIPES  # noqa: E402
from dcgan_tf.epoch_end import epoch_image_name  # noqa: E402
from dcgan_tf.runs import HISTORY_FILE, read_history  # noqa: E402
from dcgan_tf.visualize import save_figure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="MNIST .npz or IDX folder")
    parser.add_argument("--minutes", type=float, default=60, help="training minutes per recipe (default: 60)")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated recipes (default: all)")
    parser.add_argument("--root", default="time_to_quality", help="folder of the runs and results")
    parser.add_argument("--eval-every", type=int, default=2, help="evaluate every K epochs (default: 2)")
    parser.add_argument("--train-size", type=int, default=None, help="train on the first N images (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per run (default: cores / recipes)")
    parser.add_argument("--report-only", action="store_true", help="only draw the figure and table from the runs")
    args = parser.parse_args()
    recipes = [name for name in args.recipes.split(",") if name]
    unknown = [name for name in recipes if name not in RECIPES]
    if unknown:
        sys.exit(f"unknown recipe {', '.join(unknown)}: choose from {', '.join(RECIPES)}")
    root = Path(args.root)
    if not args.report_only:
        threads = args.threads or max(1, (os.cpu_count() or 1) // len(recipes))
        train_side_by_side(recipes, root, args, threads)
    runs = {name: read_run(root / name) for name in recipes}
    table = format_table(runs, args.minutes)
    (root / "time_to_quality.md").write_text(table)
    print(table)
    print(f"wrote {plot(runs, root / 'time_to_quality.png')} and {root / 'time_to_quality.md'}")


def train_side_by_side(recipes: list[str], root: Path, args: argparse.Namespace, threads: int) -> None:
    """Start one training process per recipe at once, each limited to ``threads`` threads; wait for all."""
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1"}
    processes = []
    for name in recipes:
        command = [
            sys.executable, "-m", "dcgan_tf.train", "--data", args.data, "--recipe", name,
            "--epochs", "100000", "--max-minutes", str(args.minutes), "--eval-every", str(args.eval_every),
            "--checkpoint-every", "10", "--checkpoint-dir", str(root / name),
        ]  # fmt: skip
        if args.train_size:
            command += ["--train-size", str(args.train_size)]
        log = (root / f"{name}.log").open("a")
        print(" ".join(command[1:]) + f"  > {log.name} ({threads} threads)", flush=True)
        processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env))
    failed = [name for name, process in zip(recipes, processes) if process.wait() != 0]
    if failed:
        sys.exit(f"training failed for {', '.join(failed)}: see {root}/<recipe>.log")


def read_run(run_dir: Path) -> dict:
    """A finished run's evaluated epochs: minutes and steps trained at each, and the metrics."""
    history = read_history(run_dir / HISTORY_FILE)
    if not history:
        sys.exit(f"{run_dir} has no {HISTORY_FILE}: train it first (run without --report-only)")
    minutes = np.cumsum([row["seconds"] for row in history]) / 60
    saved = json.loads((run_dir / "config.json").read_text())
    steps_per_epoch = _steps_per_epoch(saved)
    rows = [
        {**row, "minutes": float(m), "steps": row["epoch"] * steps_per_epoch}
        for row, m in zip(history, minutes)
        if "fid" in row
    ]
    last = history[-1]
    grid = run_dir / epoch_image_name(last["epoch"])
    return {"rows": rows, "config": saved, "grid": grid, "last": last, "steps": last["epoch"] * steps_per_epoch}


def _steps_per_epoch(saved: dict) -> int:
    from dcgan_tf.data import load_mnist, steps_per_epoch

    count = saved.get("train_size") or len(load_mnist(saved["data"], saved.get("dataset", "mnist")).x_train)
    return steps_per_epoch(count, saved["batch_size"])


def first_reaching(rows: list[dict], column: str, target: float) -> dict | None:
    """The first evaluated row whose ``column`` (FID: lower is better) is at or below ``target``."""
    return next((row for row in rows if row[column] <= target), None)


def at_minute(rows: list[dict], minute: float) -> dict | None:
    """The last evaluated row trained for at most ``minute`` minutes (None before the first evaluation)."""
    before = [row for row in rows if row["minutes"] <= minute]
    return before[-1] if before else None


def format_table(runs: dict[str, dict], minutes: float) -> str:
    first = next(iter(runs))
    target = min(row["fid"] for row in runs[first]["rows"])  # the first recipe's best averaged FID
    marks = [minutes * share for share in (0.25, 0.5, 0.75, 1.0)]

    def at(rows: list[dict], key: str, spec: str) -> str:
        found = [at_minute(rows, m) for m in marks]
        return " / ".join("-" if row is None else format(row[key], spec) for row in found)

    lines = [
        f"Each recipe trained for {minutes:g} minutes (training time, evaluations excluded), side by side on the same "
        "machine; metrics on 2,000 samples per evaluation (FID biased up against 10,000); values at the last "
        f"evaluation within {' / '.join(f'{m:g}' for m in marks)} minutes.",
        "",
        "| recipe | Adam (lr, beta1, beta2) | steps trained | FID, averaged | FID, raw | classifier score, averaged "
        f"| best FID | reached {first}'s best FID ({target:.1f}) after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, run in runs.items():
        rows, c = run["rows"], run["config"]
        best = min(rows, key=lambda row: row["fid"])
        hit = first_reaching(rows, "fid", target)
        reached = f"{hit['minutes']:.0f} min ({hit['steps']:,} steps)" if hit else "not reached"
        lines.append(
            f"| {name} | {c['learning_rate']:g}, {c['beta1']:g}, {c['beta2']:g} | {run['steps']:,} | "
            f"{at(rows, 'fid', '.1f')} | {at(rows, 'raw_fid', '.1f')} | {at(rows, 'classifier_score', '.2f')} | "
            f"{best['fid']:.1f} ({best['minutes']:.0f} min) | {reached} |"
        )
    return "\n".join(lines) + "\n"


def plot_curves(axes, curves: dict[str, list[dict]], raw: bool) -> None:
    """On a 2x2 grid of axes: FID (top) and classifier score (bottom) against training minutes (left) and steps
    (right) of each run's evaluated rows, one colour per run; with ``raw`` the raw generator's dotted beside."""
    colors = plt.get_cmap("tab10")
    for i, (name, rows) in enumerate(curves.items()):
        for col, x in enumerate(("minutes", "steps")):
            xs = [row[x] for row in rows]
            for ax, metric in zip(axes[:, col], ("fid", "classifier_score")):
                label = f"{name} averaged" if raw else name
                ax.plot(xs, [row[metric] for row in rows], color=colors(i % 10), marker="o", ms=3, label=label)
                if raw and rows and f"raw_{metric}" in rows[0]:
                    ax.plot(
                        xs, [row[f"raw_{metric}"] for row in rows], color=colors(i % 10), ls=":", label=f"{name} raw"
                    )
    for col, xlabel in enumerate(("training minutes", "training steps (batches)")):
        axes[0, col].set(ylabel="FID, 2,000 samples (lower is better)", yscale="log")
        axes[1, col].set(ylabel="classifier score (higher is better, 10 at most)", xlabel=xlabel)
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")


def plot(runs: dict[str, dict], path: Path) -> Path:
    """FID and classifier score against minutes and steps (averaged solid, raw dotted), and the last grids."""
    fig = plt.figure(figsize=(12, 12), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2, 1.1])
    plot_curves(top.subplots(2, 2), {name: run["rows"] for name, run in runs.items()}, raw=True)
    grids = bottom.subplots(1, len(runs), squeeze=False)[0]
    for ax, (name, run) in zip(grids, runs.items()):
        ax.imshow(iio.imread(run["grid"]), cmap="gray")
        last = run["last"]
        ax.set_title(f"{name}: epoch {int(last['epoch'])}, averaged generator", fontsize="medium")
        ax.axis("off")
    return save_figure(fig, path)


if __name__ == "__main__":
    main()
