"""Where a training run's seconds go before and around its batches: start-up and per-epoch overhead.

    python benchmarks/startup.py --data PATH [--epochs 2] [--train-size 5120] [--rounds 1]

Each round trains ``python -m dcgan_tf.train``'s job (`training.fit`) in a fresh process on ``--train-size``
digits for ``--epochs`` epochs, with the phases below timed by wrapping the functions that do them, and
prints the median seconds of each phase. The first batch is timed on its own (tracing the step and
TensorFlow's first-run graph set-up); the other batches are waited for one by one, so their sum is
the steady training time. Whatever is left of the whole process is start-up outside these phases
(Python, argument parsing, folders, printing). Compare a change by running this before and after it
on the same machine, one right after the other; the whole run against the tutorial's code is
``benchmarks/train_speed.py``'s "whole run" row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# phase -> (module, attribute) whose calls are timed; the module is where the caller looks the name up.
PHASES: dict[str, tuple[str, str]] = {
    "load the data": ("dcgan_tf.data", "load_mnist"),
    "build models, optimizers (and the auto precision's timing)": ("dcgan_tf.training", "build_gan"),
    "open TensorBoard (hyperparameters)": ("dcgan_tf.training", "_open_dashboard"),
    "epoch outputs (grid, history, plots, TensorBoard)": ("dcgan_tf.epoch_end", "_write_outputs"),
    "checkpoint saves": ("dcgan_tf.epoch_end", "save"),
    "GIF": ("dcgan_tf.training", "write_gif"),
}
FIRST, OTHERS, IMPORT, WHOLE = "first batch (tracing, graph set-up)", "other batches", "import dcgan_tf", "whole run"


def worker(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    import importlib

    import dcgan_tf  # noqa: F401  (first, as the CLI imports it)
    from dcgan_tf import gan, training
    from dcgan_tf.config import TrainConfig

    seconds = {IMPORT: time.perf_counter() - started, FIRST: 0.0, OTHERS: 0.0}

    def timed(phase, function):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                seconds[phase] = seconds.get(phase, 0.0) + time.perf_counter() - t

        return wrapper

    for phase, (module, name) in PHASES.items():
        module = importlib.import_module(module)
        setattr(module, name, timed(phase, getattr(module, name)))
    make_step = gan.Gan.make_step

    def make_timed_step(self, *a, **k):
        step = make_step(self, *a, **k)
        calls = []

        def timed_step(*sa, **sk):
            t = time.perf_counter()
            outputs = step(*sa, **sk)
            float(outputs["d_loss"])  # wait for the batch
            seconds[OTHERS if calls else FIRST] += time.perf_counter() - t
            calls.append(1)
            return outputs

        return timed_step

    gan.Gan.make_step = make_timed_step
    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(data=args.data, epochs=args.epochs, train_size=args.train_size, checkpoint_dir=folder)
        history = training.fit(config)
    seconds["epochs"] = [row["seconds"] for row in history]
    print(json.dumps(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="MNIST .npz or IDX folder")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=5120)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    rounds = []
    for _ in range(args.rounds):
        command = [sys.executable, __file__, "--worker", "--data", str(Path(args.data).resolve())]
        command += ["--epochs", str(args.epochs), "--train-size", str(args.train_size)]
        spawned = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        whole = time.perf_counter() - spawned  # the process from spawn to exit, as a user waits for it
        if done.returncode != 0:
            sys.exit(f"the worker failed:\n{done.stderr[-2000:]}")
        rounds.append({**json.loads(done.stdout.strip().splitlines()[-1]), WHOLE: whole})
    median = lambda key: statistics.median(r[key] for r in rounds)  # noqa: E731
    epochs = [statistics.median(r["epochs"][i] for r in rounds) for i in range(args.epochs)]
    print(f"{args.epochs} epochs of {args.train_size:,} digits, median of {args.rounds} round(s); seconds:")
    phases = [IMPORT, *PHASES, FIRST, OTHERS]
    for phase in phases:
        print(f"  {phase:<60} {median(phase):7.2f}")
    print(f"  {'rest (interpreter, folders, printing, the epoch loop itself)':<60} "
          f"{median(WHOLE) - sum(median(p) for p in phases):7.2f}")  # fmt: skip
    print(f"  {WHOLE:<60} {median(WHOLE):7.2f}")
    print("  epochs as history.csv records them: " + ", ".join(f"{s:.1f}" for s in epochs))


if __name__ == "__main__":
    main()
