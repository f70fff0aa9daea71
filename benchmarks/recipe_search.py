"""Recipe search: train candidate recipes for the same budget, score them, and ablate the winner.

    python benchmarks/recipe_search.py --data PATH --minutes 5 --epochs 4          # every candidate, then the table
    python benchmarks/recipe_search.py --data PATH --minutes 5 --epochs 4 --ablate paper+cosine+r1
    python benchmarks/recipe_search.py --data PATH --report-only                    # redraw from the runs

A candidate is a set of *parts* (`PARTS`: each a named list of ``python -m dcgan_tf.train`` flags); add a
part or a candidate to the two dicts below. Each candidate trains in ROOT/<its parts joined by +>/ with
``--epochs E --max-minutes M --eval-every K`` (the averaged generator scored on 2,000 samples every K epochs,
evaluations not counted as training time), one after another on the whole machine, then is scored once on
10,000 samples (``python -m dcgan_tf.evaluate``, ROOT/<run>/final.json). ``--epochs`` is where the learning-rate
schedules end: choose about what the plain recipe trains in M minutes, so a slower candidate pays for its cost.
A stopped search continues where it was: finished runs and scores are kept. ``--ablate NAME`` also trains the
candidate NAME with each of its parts left out, in turn, to show what each buys (runs with the same parts are
shared with the search). It writes ROOT/leaderboard.md (sorted by the 10,000-sample FID) and ROOT/leaderboard.png
(FID and classifier score against training minutes and steps, and the last epoch's digits of each run with its
minutes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import imageio.v3 as iio  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from time_to_quality import plot_curves, read_run  # noqa: E402  (this folder's benchmark: runs and their curves)

from dcgan_tf.checkpoints import list_checkpoints  # noqa: E402
from dcgan_tf.errors import EXIT_INTERRUPTED  # noqa: E402
from dcgan_tf.visualize import save_figure  # noqa: E402

# The parts recipes are made of: name -> train flags. The card's Adam is the starting point of all.
PARTS: dict[str, list[str]] = {
    "paper": ["--recipe", "dcgan-paper"],  # Adam 2e-4, beta_1 0.5 (Radford et al. 2015)
    "cosine": ["--lr-schedule", "cosine"],  # both rates decayed to 0 at --epochs
    "linear": ["--lr-schedule", "linear"],
    "ttur": ["--g-learning-rate", "1e-4", "--d-learning-rate", "4e-4"],  # Heusel et al. 2017, SAGAN's rates
    "r1": ["--r1", "1"],
    "hinge": ["--loss", "hinge"],
    "sn": ["--spectral-norm"],
    "augment": ["--augment", "translation,cutout"],
    "ema": ["--ema-half-life", "50000"],  # StyleGAN2-ADA's averaging window with its 5% ramp-up
    "ema10k": ["--ema-half-life", "10000"],  # StyleGAN2-ADA's window for small batches (ema_kimg 10)
    "b128": ["--batch-size", "128"],  # the DCGAN paper's batch: twice the updates per epoch
    "b64": ["--batch-size", "64"],  # four times the updates per epoch, each a quarter of the work
    # Issue 28's candidates, measured on top of paper+b64 (= --recipe fast --model dcgan --r1 0, fast until
    # 2026-12-03; paper+b64+selfcond100+r1 is --recipe fast now, paper+b64+selfcond100 was before 2026-12-07,
    # paper+b64+selfcond30 on 2026-12-06):
    "topk": ["--top-k", "0.5", "--top-k-decay", "0.9"],  # Sinha et al. 2020, annealed to half the batch by epoch 7
    "selfcond": ["--model", "self-conditioned"],  # Liu et al. 2020: 10 clusters of D's features, re-clustered every 5
    # Each part is whole by itself (the tests build every part alone), so the cluster parts name their model too:
    "selfcond20": ["--model", "self-conditioned", "--clusters", "20"],
    "selfcond30": ["--model", "self-conditioned", "--clusters", "30"],  # ~3 clusters a digit: fewer in-between shapes
    "selfcond50": ["--model", "self-conditioned", "--clusters", "50"],
    "selfcond100": ["--model", "self-conditioned", "--clusters", "100"],  # the most Liu et al. 2020 used
    # Capacity (issue 28), per training image 1.84x (gw15) and 1.94x (dw2) the FLOPs (D runs three times a step)
    "gw15": ["--g-width", "1.5"],
    "dw2": ["--d-width", "2"],
}
# The candidates the search trains (name -> parts); a candidate's run folder is its parts joined by "+".
CANDIDATES: dict[str, tuple[str, ...]] = {
    "dcgan-paper": ("paper",),
    "+cosine": ("paper", "cosine"),
    "+cosine+r1": ("paper", "cosine", "r1"),
    "+ttur": ("paper", "ttur"),
    "+hinge+sn+ttur": ("paper", "hinge", "sn", "ttur"),
    "+augment": ("paper", "augment"),
    "+b128": ("paper", "b128"),
    "+b64": ("paper", "b64"),
    # --recipe fast now (from 2026-12-03: 10 clusters, then 30, then 100; R1 from 2026-12-07)
    "fast": ("paper", "b64", "selfcond100", "r1"),
}
FINAL_FILE = "final.json"  # the 10,000-sample score of a run's last checkpoint


def run_name(parts: tuple[str, ...]) -> str:
    return "+".join(parts)


def ablation(parts: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The candidate with each of its parts left out in turn: {"-part": remaining parts}."""
    return {f"{run_name(parts)} -{part}": tuple(p for p in parts if p != part) for part in parts if len(parts) > 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST .npz or IDX folder (needed unless --report-only)")
    parser.add_argument("--minutes", type=float, default=5, help="training minutes per candidate (default: 5)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per candidate, where schedules end (default: 4)")
    parser.add_argument("--eval-every", type=int, default=1, help="score every K epochs on 2,000 samples (default: 1)")
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated (default: all)")
    parser.add_argument("--ablate", metavar="NAME", help="also train NAME (a candidate or parts a+b+c) minus each part")
    parser.add_argument("--extra", default="", help="flags added to every run, e.g. '--model conditional'")
    parser.add_argument("--root", default="recipe_search", help="folder of the runs and results")
    parser.add_argument("--report-only", action="store_true", help="only write the leaderboard from the runs")
    args = parser.parse_args()
    try:
        runs = chosen_runs(args)
    except KeyError as err:
        sys.exit(f"unknown candidate or part {err}: candidates {', '.join(CANDIDATES)}; parts {', '.join(PARTS)}")
    root = Path(args.root)
    if not args.report_only:
        if not args.data:
            sys.exit("--data is needed to train: pass the MNIST .npz or IDX folder")
        for parts in runs.values():
            train(root / run_name(parts), parts, args)
            score(root / run_name(parts))
    results = {name: read_result(root / run_name(parts), parts) for name, parts in runs.items()}
    results = {name: result for name, result in results.items() if result is not None}
    if not results:
        sys.exit(f"no finished runs in {root}: train them first (without --report-only)")
    table = leaderboard(results)
    (root / "leaderboard.md").write_text(table)
    print(table)
    print(f"wrote {plot(results, root / 'leaderboard.png')} and {root / 'leaderboard.md'}")


def chosen_runs(args: argparse.Namespace) -> dict[str, tuple[str, ...]]:
    """Display name -> parts of every run to train and show: the candidates, then the ablation."""
    # A candidate's name, or its parts joined by "+" (paper+b64+ema10k: a combination not in CANDIDATES).
    runs = {name: CANDIDATES.get(name) or parts_of(name) for name in args.candidates.split(",") if name}
    if args.ablate:
        parts = CANDIDATES.get(args.ablate) or parts_of(args.ablate)
        runs.setdefault(args.ablate, parts)
        runs.update(ablation(parts))
    return runs


def parts_of(name: str) -> tuple[str, ...]:
    """``a+b+c`` -> its parts; a KeyError names an unknown one."""
    parts = tuple(name.split("+"))
    for part in parts:
        PARTS[part]  # noqa: B018
    return parts


def train(run_dir: Path, parts: tuple[str, ...], args: argparse.Namespace) -> None:
    """Train (or continue) one run; a finished one returns at once ("nothing to do")."""
    flags = [flag for part in parts for flag in PARTS[part]] + args.extra.split()
    command = [
        sys.executable, "-m", "dcgan_tf.train", "--data", args.data, *flags, "--epochs", str(args.epochs),
        "--max-minutes", str(args.minutes), "--eval-every", str(args.eval_every), "--checkpoint-dir", str(run_dir),
    ]  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    print(" ".join(command[1:]), flush=True)
    with (run_dir.parent / f"{run_dir.name}.log").open("a") as log:
        returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    if returncode == EXIT_INTERRUPTED:  # it saved where it stopped
        sys.exit(f"training {run_dir.name} was interrupted: run the same command to resume it")
    if returncode != 0:
        sys.exit(f"training {run_dir.name} failed: see {log.name}")


def score(run_dir: Path) -> None:
    """Score the run's last checkpoint on 10,000 samples once (again only if the run trained on)."""
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        sys.exit(f"{run_dir} has no checkpoint to score: see {run_dir.parent / run_dir.name}.log")
    latest = checkpoints[-1].name
    final = run_dir / FINAL_FILE
    if final.is_file() and json.loads(final.read_text()).get("checkpoint", "").endswith(latest):
        return
    command = [sys.executable, "-m", "dcgan_tf.evaluate", "--checkpoint-dir", str(run_dir), "--json", str(final)]
    print(" ".join(command[1:]), flush=True)
    if subprocess.run(command, stdout=subprocess.DEVNULL).returncode != 0:
        sys.exit(f"scoring {run_dir.name} failed: run the command above to see why")


def read_result(run_dir: Path, parts: tuple[str, ...]) -> dict | None:
    """A run's history (`read_run`) and final score, or None if it has not finished."""
    if not (run_dir / FINAL_FILE).is_file():
        return None
    return {**read_run(run_dir), "final": json.loads((run_dir / FINAL_FILE).read_text()), "parts": parts}


def leaderboard(results: dict[str, dict]) -> str:
    ranked = sorted(results.items(), key=lambda item: item[1]["final"]["fid"])
    # The limits each run recorded (a --report-only call's own --minutes and --epochs are only its defaults).
    limits = {(result["config"].get("max_minutes"), result["config"].get("epochs")) for result in results.values()}
    minutes, epochs = limits.pop() if len(limits) == 1 else (None, None)
    limit = (
        f"for at most {minutes:g} minutes or {epochs} epochs (schedules end there)"
        if minutes is not None and epochs is not None
        else "to the limits in its config.json (max_minutes, epochs)"
    )
    lines = [
        f"Each run trained {limit}, one after another on the same machine; scored with the project's evaluator "
        "on 10,000 samples of the averaged generator against the 10,000 test digits (FID during training: 2,000 "
        "samples, biased up). Sorted by FID.",
        "",
        "| run | flags | epochs (steps) | training min | FID | classifier score | precision | recall | class share "
        "| best FID during training (2,000) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in ranked:
        final, rows, last = result["final"], result["rows"], result["last"]
        shares = [count / sum(final["class_histogram"]) for count in final["class_histogram"]]
        flags = " ".join(flag for part in result["parts"] for flag in PARTS[part])
        best = min(rows, key=lambda row: row["fid"]) if rows else None
        minutes = rows[-1]["minutes"] if rows else float("nan")
        lines.append(
            f"| {name} | `{flags}` | {int(last['epoch'])} ({result['steps']:,}) | {minutes:.1f} | {final['fid']:.2f} "
            f"| {final['classifier_score']:.2f} | {final['precision']:.2f} | {final['recall']:.2f} "
            f"| {min(shares):.1%} - {max(shares):.1%} "
            f"| {'-' if best is None else format(best['fid'], '.1f')} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict], path: Path) -> Path:
    """FID and classifier score against training minutes and steps per run, and each run's last epoch grid.

    Steps as well as minutes: on a shared machine the minutes also measure the load.
    """
    fig = plt.figure(figsize=(14, 15), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2, 1])
    plot_curves(top.subplots(2, 2), {name: result["rows"] for name, result in results.items()}, raw=False)
    cols = min(len(results), 5)
    grids = bottom.subplots(-(-len(results) // cols), cols, squeeze=False).ravel()
    for ax in grids:
        ax.axis("off")
    for ax, (name, result) in zip(grids, results.items()):
        grid = iio.imread(result["grid"])
        shown = grid[: grid.shape[1]]  # a tall grid (a row per cluster, up to 100) as its top square, readable
        ax.imshow(shown, cmap="gray")
        minutes = result["rows"][-1]["minutes"] if result["rows"] else float("nan")
        top = ", top rows" if len(shown) < len(grid) else ""
        ax.set_title(f"{name}\n{int(result['last']['epoch'])} epochs, {minutes:.1f} min{top}", fontsize="small")
    return save_figure(fig, path)


if __name__ == "__main__":
    main()
