"""Fashion-MNIST (--dataset fashion_mnist): loading, every model variant trained on it, its own evaluator.

These tests need the official Fashion-MNIST IDX files (``apt-get install dataset-fashion-mnist`` puts them in
/usr/share/datasets/fashion-mnist/; CI installs them the same way). Without them they skip, saying so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_TEST, SMALL_TRAIN, run_cli, snapshot, tiny_flags

from dcgan_tf.config import VARIANTS, TrainConfig
from dcgan_tf.data import DATASETS, load_mnist
from dcgan_tf.errors import DcganError
from dcgan_tf.runs import read_history
from dcgan_tf.training import fit

FASHION = Path(os.environ.get("DCGAN_TF_FASHION_DATA", "/usr/share/datasets/fashion-mnist"))
CLASS_NAMES = DATASETS["fashion_mnist"].class_names


@pytest.fixture(scope="module")
def fashion_dir() -> Path:
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST IDX files not in {FASHION}: apt-get install dataset-fashion-mnist")
    return FASHION


@pytest.fixture(scope="module")
def small_fashion(fashion_dir, tmp_path_factory) -> Path:
    """The first 2,000 training and 1,000 test images of real Fashion-MNIST, as a Keras-layout npz."""
    full = load_mnist(fashion_dir, "fashion_mnist")
    path = tmp_path_factory.mktemp("fashion") / "fashion-small.npz"
    np.savez(
        path,
        x_train=full.x_train[:SMALL_TRAIN],
        y_train=full.y_train[:SMALL_TRAIN],
        x_test=full.x_test[:SMALL_TEST],
        y_test=full.y_test[:SMALL_TEST],
    )
    return path


def test_fashion_mnist_reads_from_the_official_idx_files(fashion_dir, small_fashion):
    fashion = load_mnist(fashion_dir, "fashion_mnist")
    assert (fashion.x_train.shape, fashion.x_test.shape) == ((60_000, 28, 28), (10_000, 28, 28))
    assert sorted(np.unique(fashion.y_test).tolist()) == list(range(10))
    assert fashion.info.title == "Fashion-MNIST" and fashion.info.class_names[9] == "Ankle boot"
    small = load_mnist(small_fashion, "fashion_mnist")
    np.testing.assert_array_equal(small.x_train, fashion.x_train[:SMALL_TRAIN])
    with pytest.raises(DcganError, match="unknown --dataset 'kmnist'"):
        load_mnist(fashion_dir, "kmnist")


@pytest.mark.usefixtures("quick_evals")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_trains_on_fashion_mnist_and_is_measured_by_its_own_evaluator(
    variant, small_fashion, evaluator_dir, tmp_path
):
    run = tmp_path / "run"
    flags = tiny_flags(small_fashion, run, epochs=1, eval_every=1, dataset="fashion_mnist", **VARIANTS[variant])
    history = fit(TrainConfig(**flags, evaluator_dir=str(evaluator_dir)))
    assert np.isfinite(history[-1]["fid"]) and np.isfinite(read_history(run / "history.csv")[-1]["generator_loss"])
    assert json.loads((run / "config.json").read_text())["dataset"] == "fashion_mnist"
    evaluators = [json.loads(p.read_text()) for p in evaluator_dir.glob("evaluator-*.json")]
    fashion_evaluators = [e for e in evaluators if e.get("dataset") == "fashion_mnist"]
    assert len(fashion_evaluators) == 1  # one cached Fashion evaluator, its own cache key, shared by all runs
    assert fashion_evaluators[0]["key"] not in {e["key"] for e in evaluators if e.get("dataset") != "fashion_mnist"}
    assert fashion_evaluators[0]["test_accuracy"] > 0.6  # a real Fashion classifier (10 classes), not chance

    # Resuming the run as MNIST is refused in one line, and nothing in the folder changes.
    before = snapshot(run)
    mnist_flags = {**flags, "dataset": "mnist", "epochs": 2}
    with pytest.raises(DcganError, match="dataset='fashion_mnist' \\(now 'mnist'\\)"):
        fit(TrainConfig(**mnist_flags, evaluator_dir=str(evaluator_dir)))
    assert snapshot(run) == before

    if variant == "conditional":  # the evaluate table and the class plot name Fashion's classes
        plot = tmp_path / "classes.png"
        result = run_cli(
            "dcgan_tf.evaluate", f"--checkpoint-dir={run}", f"--evaluator-dir={evaluator_dir}", "--num-samples=300",
            f"--plot={plot}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "Fashion-MNIST evaluator" in result.stdout and "test images" in result.stdout
        assert sum(name in result.stdout for name in CLASS_NAMES) >= 2  # smallest and largest class, by name
        assert "requested class recognised in" in result.stdout and "Ankle boot: " in result.stdout
        assert plot.read_bytes().startswith(b"\x89PNG")
