"""Shared fixtures: the real MNIST subset beside the repo, tiny training configs and a tiny run."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Every xdist worker is a TensorFlow process (and the CLI tests start more). TensorFlow sizes its thread pools
# to the whole machine in each, so with a worker per core the pools of all fight over every core; a share of
# the cores each keeps them from it. Set in the workers only (the controller's environment reaches them too),
# before any test module imports TensorFlow; the subprocesses they start inherit it.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    _cores_each = str(max(1, _cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _cores_each)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", _cores_each)

REPO = Path(__file__).resolve().parents[1]
# CI and the developers' machines keep real MNIST beside the repo; elsewhere set DCGAN_TF_TEST_DATA
# to any Keras-layout mnist.npz (e.g. ~/.keras/datasets/mnist.npz).
SUBSET = Path(os.environ.get("DCGAN_TF_TEST_DATA", REPO.parent / "shared" / "datasets" / "mnist-subset.npz"))


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    if not SUBSET.is_file():
        pytest.skip(f"real MNIST not found at {SUBSET}; set DCGAN_TF_TEST_DATA to a Keras-layout mnist.npz")
    return SUBSET


SMALL_TRAIN = 2_000
SMALL_TEST = 1_000


@pytest.fixture(scope="session")
def small_data(mnist_path, tmp_path_factory):
    """The first 2,000 training and 1,000 test digits of the real subset, as a Keras-layout .npz."""
    with np.load(mnist_path) as full:
        arrays = {
            "x_train": full["x_train"][:SMALL_TRAIN],
            "y_train": full["y_train"][:SMALL_TRAIN],
            "x_test": full["x_test"][:SMALL_TEST],
            "y_test": full["y_test"][:SMALL_TEST],
        }
    path = tmp_path_factory.mktemp("small_data") / "mnist-small.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="session")
def evaluator_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("evaluators")


@pytest.fixture(scope="session")
def reference(small_data, evaluator_dir):
    """The test-split reference with an evaluator trained (once) by the project's recipe on small_data."""
    from dcgan_tf.data import load_mnist
    from dcgan_tf.evaluation import Reference
    from dcgan_tf.evaluator import load_or_train_evaluator

    mnist = load_mnist(small_data)
    return Reference(load_or_train_evaluator(mnist, evaluator_dir, verbose=False), mnist)


@pytest.fixture
def quick_evals(monkeypatch) -> None:
    """``--eval-every`` scores 500 digits in this test, not 2,000: the same code for a quarter of the work."""
    from dcgan_tf import evaluation

    monkeypatch.setattr(evaluation, "TRAINING_SAMPLES", 500)


def tiny_flags(mnist_path: Path, run_dir: Path, **overrides) -> dict:
    """TrainConfig keyword arguments for a run of a few seconds on 256 real digits."""
    flags = dict(
        data=str(mnist_path),
        train_size=256,
        batch_size=64,
        epochs=2,
        checkpoint_every=1,
        checkpoint_dir=str(run_dir),
    )
    flags.update(overrides)
    return flags


@pytest.fixture(scope="session")
def trained_run(mnist_path, tmp_path_factory) -> Path:
    """A finished 2-epoch tiny training run (checkpoints every epoch); treat it as read-only."""
    from dcgan_tf.config import TrainConfig
    from dcgan_tf.training import fit

    run_dir = tmp_path_factory.mktemp("trained_run")
    fit(TrainConfig(**tiny_flags(mnist_path, run_dir)))
    return run_dir


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (relative path -> sha256), to prove nothing was touched."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run_cli(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m <args>`` from the repo root and capture its output as text."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess:
    """What ``run_cli(module, *args)`` returns, from the tool's ``main`` run in this process, from the repo root.

    The entry points' own ``__main__`` line is ``run_main(main)``, so this is the same code path, less a new
    process: starting TensorFlow again costs seconds a call. Use `run_cli` where a fresh process matters: a
    signal, the environment at start-up, or output that a cache in this process would skip (evaluate's
    "reusing ... evaluator" line).
    """
    from dcgan_tf.errors import run_main

    out, err, cwd = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(REPO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            run_main(importlib.import_module(module).main, list(args))
    except SystemExit as done:
        code = done.code
    else:  # run_main always exits
        raise AssertionError(f"{module} returned without exiting")
    finally:
        os.chdir(cwd)
    return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A failed CLI call: non-zero exit, no traceback, and one ``error:`` line naming each fragment."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def differing_share(weights_a, weights_b, atol: float = 1e-6) -> float:
    """The share of weights that differ by more than ``atol`` between two weight lists.

    Two runs of the same seed do the same arithmetic, but oneDNN's multithreaded kernels may add up
    a gradient in another order; where a gradient is ~0, Adam's first steps (which move a weight by
    about +-learning_rate whatever the gradient's size) can then turn a rounding difference into a
    visible one for that weight. Such differences are rare and isolated; a real divergence (other
    noise, other batches, lost optimizer state) changes nearly every weight.
    """
    import numpy as np

    differing = sum(int(np.sum(np.abs(a - b) > atol)) for a, b in zip(weights_a, weights_b))
    return differing / sum(a.size for a in weights_a)
