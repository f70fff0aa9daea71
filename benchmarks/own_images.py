"""The example of docs/own-images.md: Fashion-MNIST written out as PNG files in class folders, trained on
as a folder of images, sampled class by class.

    python benchmarks/own_images.py --fashion /usr/share/datasets/fashion-mnist --work /tmp/own-images \\
        [--per-class 600] [--epochs 10] [--out docs/images/own_images_fashion.png]

1. Writes the first ``--per-class`` training images of each Fashion-MNIST class as 28x28 grey PNG files,
   one folder per class (``T-shirt/top`` becomes ``T-shirt or top``: a folder name cannot hold a slash).
2. Trains ``python -m dcgan_tf.train --data FOLDER --model conditional --recipe fast --r1 0`` on it (a fresh
   process, as a user would), ``--epochs`` epochs.
3. Draws eight samples of every class (`sampling.sample_with_labels`, seed 1), one row per class named by
   its folder, to ``--out``, and prints the training time (history.csv's seconds) and the CPU.
"""

from __future__ import annotations

import argparse
import csv
import platform
import subprocess
import sys
import time
from pathlib import Path


def write_folder(fashion: Path, folder: Path, per_class: int) -> int:
    """Fashion-MNIST's first ``per_class`` training images of each class as PNG files; returns how many."""
    import imageio.v3 as iio
    import numpy as np

    from dcgan_tf.data import DATASETS, load_mnist

    mnist = load_mnist(fashion, "fashion_mnist")
    count = 0
    for label, name in enumerate(DATASETS["fashion_mnist"].class_names):
        target = folder / name.replace("/", " or ")
        target.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(mnist.x_train[mnist.y_train == label][:per_class]):
            iio.imwrite(target / f"{i:05d}.png", np.ascontiguousarray(image))
            count += 1
    return count


def draw_classes(run: Path, out: Path, per_class: int = 8) -> None:
    """``per_class`` samples of every class, a row each, the rows named by the run's class folders."""
    from matplotlib.figure import Figure

    import dcgan_tf
    from dcgan_tf.config import read_saved_config
    from dcgan_tf.data import dataset_of_run
    from dcgan_tf.sampling import sample_with_labels
    from dcgan_tf.visualize import tile

    names = dataset_of_run(run, read_saved_config(run)).class_names
    generator = dcgan_tf.load_generator(run)
    images, _ = sample_with_labels(generator, per_class * len(names), seed=1)  # rows: class 0, 1, ...
    picture = tile(images, cols=per_class, scale=1)
    fig = Figure(figsize=(5.2, 0.55 * len(names) + 0.4), layout="constrained")
    ax = fig.subplots()
    ax.imshow(picture, cmap="gray", vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([16 + 30 * r for r in range(len(names))], names, fontsize=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--work", type=Path, default=Path("own-images-example"))
    parser.add_argument("--per-class", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("docs/images/own_images_fashion.png"))
    args = parser.parse_args()
    folder, run = args.work / "fashion-pngs", args.work / "run"
    print(f"wrote {write_folder(args.fashion, folder, args.per_class)} PNG files to {folder}", flush=True)
    started = time.perf_counter()
    command = [sys.executable, "-m", "dcgan_tf.train", f"--data={folder}", "--model=conditional"]
    # --r1 0: fast as it was when docs/images/own_images_fashion.png was made (R1 joined it on 2026-12-07)
    command += ["--recipe=fast", "--r1=0", f"--epochs={args.epochs}", f"--checkpoint-dir={run}", "--checkpoint-every=5"]
    subprocess.run(command, check=True)
    wall = time.perf_counter() - started
    with (run / "history.csv").open() as f:
        seconds = sum(float(row["seconds"]) for row in csv.DictReader(f))
    draw_classes(run, args.out)
    print(
        f"trained {args.epochs} epochs in {seconds / 60:.1f} min of training ({wall / 60:.1f} min in all, "
        f"start-up and epoch outputs included) on {cpu_name()} ({platform.machine()}); wrote {args.out}"
    )


if __name__ == "__main__":
    main()
