"""tf.distribute: a mirrored step over two replicas equals one device's step on the same batch, and
checkpoints move between strategies. Each check runs tests/mirrored_check.py in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

# Two replicas sum their halves' gradients where one device sums all at once: the same maths in
# another order, so float32 rounding differs slightly.
MIRRORED_TOLERANCE = 1e-5


def run_check(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "mirrored_check.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mirrored_step_over_two_replicas_matches_one_device():
    report = run_check("step")
    assert report["replicas"] == 2
    assert report["bce_weight_diff"] <= MIRRORED_TOLERANCE, report
    for loss in ("bce", "wgan-gp"):
        assert report[f"{loss}_loss_diff"] <= MIRRORED_TOLERANCE, report
    # WGAN-GP: the losses match, but some of the generator's first-step gradients are ~0 up to
    # rounding (the critic is nearly flat at initialisation), and Adam's first step moves such a
    # weight by +-learning rate whichever sign the summation order gives it: measured ~2% of the
    # weights. A real divergence (other noise, other interpolates) changes nearly all of them.
    assert report["wgan-gp_differing_share"] <= 0.05, report


def test_single_device_checkpoint_resumes_under_mirrored(mnist_path, tmp_path):
    report = run_check("resume", str(tmp_path / "run"), str(mnist_path))
    assert report["epochs"] == [1, 2]  # epoch 2 was trained with --strategy mirrored after a resume
