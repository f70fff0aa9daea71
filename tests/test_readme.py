"""The README's step-by-step commands, run as a user types them: in an empty folder, with the default
relative ``training_checkpoints/``, then with that run folder moved elsewhere.

The commands are read from the README itself (the block after its ``walkthrough`` marker), so the two
cannot drift. Only what this machine needs is added: ``--data`` (no download here) and tiny sizes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
from conftest import REPO

MARKER = "<!-- walkthrough:"
# Appended to every `train` command (argparse lets the last value win): a few seconds per epoch.
TRAIN_EXTRAS = ("--data", "mnist.npz", "--train-size", "256", "--batch-size", "64")


def walkthrough() -> list[list[str]]:
    """The README's walkthrough block, one argv per command line (comments dropped)."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert block, "the README's walkthrough marker must be followed by a ```bash block"
    return [argv for line in block.group(1).splitlines() if (argv := shlex.split(line, comments=True))]


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if argv[:2] == ["python", "-m"]:
        argv = [sys.executable, *argv[1:]]
        if argv[2] == "dcgan_tf.train":
            argv += TRAIN_EXTRAS
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{shlex.join(argv)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def test_readme_walkthrough_as_typed(small_data, evaluator_dir, reference, tmp_path):
    commands = walkthrough()
    tools = [argv[2] if argv[0] == "python" else argv[0] for argv in commands]
    assert tools == [
        "dcgan_tf.train",
        "dcgan_tf.train",
        "dcgan_tf.sample",
        "dcgan_tf.interpolate",
        "dcgan_tf.export",
        "dcgan_tf.evaluate",
        "mv",
        "dcgan_tf.sample",
        "dcgan_tf.train",
    ], "the README's walkthrough changed: update the checks below to match"
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(small_data, home / "mnist.npz")
    # The evaluator the `reference` fixture trained on the same digits, found in the default cache.
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "dcgan_tf").symlink_to(evaluator_dir)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}

    outputs = [run(argv, home, env).stdout for argv in commands]

    first, again = outputs[0], outputs[1]
    assert "resuming" not in first and "saved training_checkpoints/ckpt-8" in first  # 2 epochs of 4 batches
    assert "resuming from training_checkpoints/ckpt-8 (epoch 2, batch 0)" in again
    assert "Epoch 1/3" not in again and "Epoch 3/3" in again  # continued, not started again
    assert iio.imread(home / "samples.png").ndim == 2
    assert iio.imread(home / "interpolation.gif", index=None).shape[0] > 1
    assert (home / "generator.keras").is_file()
    assert "FID" in outputs[5]
    moved = tmp_path / "first_run"
    assert not (home / "training_checkpoints").exists() and (moved / "ckpt-12.index").is_file()
    assert iio.imread(home / "moved.png").ndim == 2
    last = outputs[8]
    assert "resuming from ../first_run/ckpt-12 (epoch 3, batch 0)" in last and "Epoch 4/4" in last
    assert "Epoch 3/4" not in last and (moved / "ckpt-16.index").is_file()

    # Tools from another working folder, with the moved run named relatively, trailing slash and all.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir = "./../first_run/"
    for argv in (
        ["python", "-m", "dcgan_tf.sample", "--checkpoint-dir", run_dir, "--checkpoint", "ckpt-8", "--out", "s.png"],
        # The run's config.json names its --data ("mnist.npz" typed in home/), found from here too.
        ["python", "-m", "dcgan_tf.evaluate", "--checkpoint-dir", run_dir, "--num-samples", "500"],
    ):
        run(argv, elsewhere, env)
    assert (elsewhere / "s.png").is_file()
