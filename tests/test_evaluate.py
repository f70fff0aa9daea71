"""Sample-quality metrics: the maths against closed forms, the evaluator CNN on real digits, the CLI.

One small evaluator is trained per session (the project's recipe on 2,000 subset digits, ~15 s) in a
cache folder that the CLI tests then reuse, so the evaluator is trained once.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from conftest import SMALL_TEST, assert_one_line_error, run_cli, run_tool

from dcgan_tf import metrics
from dcgan_tf.errors import DcganError, run_main
from dcgan_tf.evaluate import EvaluateConfig, main

# The project's recipe (8 epochs) on only 2,000 training digits reaches ~95% on the test digits;
# on the full 24k subset it reaches 98.9%+. Below this something is broken, not just small.
TINY_ACCURACY = 0.90
JSON_KEYS = {
    "checkpoint",
    "epoch",
    "batches",
    "generator",
    "fid",
    "classifier_score",
    "precision",
    "recall",
    "class_histogram",
}


# --- the maths -------------------------------------------------------------------------------------


def test_frechet_distance_of_a_set_with_itself_is_zero():
    features = np.random.default_rng(0).normal(size=(500, 16))
    assert metrics.frechet_distance(features, features) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_matches_the_closed_form_for_two_gaussians():
    rng = np.random.default_rng(1)
    dim = 6
    a, b = rng.normal(size=(dim, dim)), rng.normal(size=(dim, dim))
    fit_a = metrics.GaussianFit(rng.normal(size=dim), a @ a.T + 0.1 * np.eye(dim))
    fit_b = metrics.GaussianFit(rng.normal(size=dim), b @ b.T + 0.1 * np.eye(dim))
    # Independent route: S_a S_b is not symmetric, but its eigenvalues are real and non-negative.
    trace_sqrt = np.sqrt(np.linalg.eigvals(fit_a.cov @ fit_b.cov).real.clip(0)).sum()
    expected = np.sum((fit_a.mean - fit_b.mean) ** 2) + np.trace(fit_a.cov + fit_b.cov) - 2 * trace_sqrt
    assert metrics.frechet_distance(fit_a, fit_b) == pytest.approx(expected, rel=1e-9)

    # Diagonal covariances: the textbook |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2.
    diag_a, diag_b = (
        metrics.GaussianFit(np.zeros(3), np.diag([1.0, 4, 9])),
        metrics.GaussianFit(np.ones(3), np.diag([4.0, 4, 1])),
    )
    assert metrics.frechet_distance(diag_a, diag_b) == pytest.approx(3 + (1 + 0 + 4))

    # Sample fits converge to the closed form (the whole sample is fitted at once).
    samples_a = rng.multivariate_normal(fit_a.mean, fit_a.cov, size=200_000)
    samples_b = rng.multivariate_normal(fit_b.mean, fit_b.cov, size=200_000)
    assert metrics.frechet_distance(samples_a, samples_b) == pytest.approx(expected, rel=0.02)


def test_classifier_score_is_ten_for_uniform_one_hot_and_one_for_constant():
    one_hot = np.eye(10)[np.arange(1000) % 10]
    assert metrics.classifier_score(one_hot) == pytest.approx(10)
    assert metrics.classifier_score(np.tile(np.eye(10)[3], (1000, 1))) == pytest.approx(1)
    assert metrics.classifier_score(np.full((1000, 10), 0.1)) == pytest.approx(1)  # confident in nothing


def test_class_histogram_counts_argmax_shares():
    probs = np.eye(10)[[0, 0, 1, 9]]
    assert metrics.class_histogram(probs).tolist() == [0.5, 0.25] + [0] * 7 + [0.25]


def test_precision_and_recall_of_a_set_with_itself_is_one_and_of_far_sets_zero():
    features = np.random.default_rng(2).normal(size=(700, 8))
    # batch_size below the set size exercises the batched distance blocks.
    assert metrics.precision_recall(features, features, k=3, batch_size=256) == (1.0, 1.0)
    assert metrics.precision_recall(features, features + 100, k=3) == (0.0, 0.0)


def test_knn_radii_match_brute_force():
    features = np.random.default_rng(3).normal(size=(300, 5))
    brute = np.sort(((features[:, None] - features[None]) ** 2).sum(-1), axis=1)[:, 3]  # column 0 is self
    np.testing.assert_allclose(metrics.knn_radii(features, k=3, batch_size=64), brute, rtol=1e-9, atol=1e-9)


def test_precision_recall_sees_missing_modes():
    rng = np.random.default_rng(4)
    real = np.concatenate([rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 20])  # two modes
    fake = rng.normal(size=(1000, 2))  # only the first mode
    precision, recall = metrics.precision_recall(real, fake)
    assert precision > 0.9
    assert 0.3 < recall < 0.6


# --- the evaluator on real digits ------------------------------------------------------------------


def test_tiny_evaluator_reaches_the_stated_accuracy(reference, small_data, evaluator_dir):
    from dcgan_tf.data import load_mnist, to_model_range
    from dcgan_tf.evaluator import FEATURE_DIM, load_or_train_evaluator

    evaluator = reference.evaluator
    assert evaluator.test_accuracy >= TINY_ACCURACY, evaluator.describe()
    assert reference.features.shape == (SMALL_TEST, FEATURE_DIM)
    # Cached: loading it back gives the same network, not a retrained one.
    mnist = load_mnist(small_data)
    again = load_or_train_evaluator(mnist, evaluator_dir, verbose=False)
    assert again.path == evaluator.path and again.test_accuracy == evaluator.test_accuracy
    images = to_model_range(mnist.x_test[:50])
    np.testing.assert_allclose(again.features_and_probs(images)[1], evaluator.features_and_probs(images)[1], atol=1e-5)


def test_real_digits_score_close_to_the_test_split_and_noise_far(reference, small_data):
    from dcgan_tf.data import load_mnist
    from dcgan_tf.evaluation import evaluate_real

    real = evaluate_real(load_mnist(small_data), reference, num_samples=SMALL_TEST)
    noise = reference.score(np.random.default_rng(5).uniform(-1, 1, size=(SMALL_TEST, 28, 28, 1)))
    assert real.fid < 5, real  # measured 2.6
    assert noise.fid > 10 * real.fid and noise.fid > 40, (real.fid, noise.fid)  # measured 80
    assert real.classifier_score > 8 > 2 > noise.classifier_score
    assert real.precision > 0.6 and real.recall > 0.6, real
    # Noise covers none of the real variety. (Its *precision* need not be low: near-identical noise
    # features can fall into the wide k-NN ball of one outlying real digit, a known blind spot.)
    assert noise.recall < 0.05, noise
    assert min(real.class_histogram) > 0.05
    assert sum(real.class_histogram) == pytest.approx(1)


def test_training_metrics_returns_flat_float_columns(trained_run, small_data, evaluator_dir):
    from dcgan_tf.checkpoints import load_generator
    from dcgan_tf.data import load_mnist
    from dcgan_tf.evaluation import METRIC_COLUMNS, training_metrics

    row = training_metrics(load_generator(trained_run), load_mnist(small_data), evaluator_dir, num_samples=200)
    assert tuple(row) == METRIC_COLUMNS
    assert all(isinstance(v, float) and np.isfinite(v) for v in row.values()), row


# --- the command line ------------------------------------------------------------------------------


def test_cli_evaluates_all_checkpoints_to_json_and_a_plot(trained_run, small_data, evaluator_dir, reference, tmp_path):
    out, plot = tmp_path / "metrics.json", tmp_path / "metrics.png"
    result = run_cli(
        "dcgan_tf.evaluate",
        *("--checkpoint-dir", str(trained_run), "--all-checkpoints", "--generator", "both", "--num-samples", "300"),
        *("--data", str(small_data), "--evaluator-dir", str(evaluator_dir), "--json", str(out), "--plot", str(plot)),
    )
    assert result.returncode == 0, result.stderr
    assert "reusing MNIST evaluator" in result.stdout  # the session's evaluator, not a new one
    assert "real training digits" in result.stdout and "FID" in result.stdout
    records = json.loads(out.read_text())
    assert [(r["epoch"], r["batches"], r["generator"]) for r in records] == [
        (1, 4, "ema"),
        (1, 4, "raw"),
        (2, 8, "ema"),
        (2, 8, "raw"),
    ]
    assert records[2]["fid"] != records[3]["fid"]  # two different generators were measured
    assert "ckpt-8 (averaged)" in result.stdout and "ckpt-8 (raw)" in result.stdout
    for record in records:
        assert set(record) == JSON_KEYS
        assert len(record["class_histogram"]) == 10 and sum(record["class_histogram"]) == pytest.approx(1)
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_cli_one_checkpoint_writes_one_json_object(trained_run, small_data, evaluator_dir, reference, tmp_path, capsys):
    out = tmp_path / "one.json"
    argv = ["--checkpoint-dir", str(trained_run), "--checkpoint", "ckpt-4", "--num-samples", "100"]
    argv += ["--data", str(small_data), "--evaluator-dir", str(evaluator_dir), "--json", str(out)]
    assert main(argv) == 0
    record = json.loads(out.read_text())
    assert set(record) == JSON_KEYS and record["checkpoint"] == "ckpt-4" and record["epoch"] == 1
    assert "ckpt-4" in capsys.readouterr().out


def _run_in_process(argv: list[str], capsys) -> subprocess.CompletedProcess:
    """run_main in this process (TensorFlow already loaded), captured like a CLI call."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, argv)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, exit_info.value.code, captured.out, captured.err)


def test_bad_input_gets_a_one_line_error(trained_run, small_data, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run_in_process(["--checkpoint-dir", str(empty)], capsys)
    assert_one_line_error(result, "holds no checkpoints", "train first")
    result = _run_in_process(["--checkpoint-dir", str(tmp_path / "missing")], capsys)
    assert_one_line_error(result, "does not exist")
    result = _run_in_process(["--checkpoint-dir", str(trained_run), "--checkpoint", "ckpt-999"], capsys)
    assert_one_line_error(result, "ckpt-999", "choose one of")

    not_mnist = tmp_path / "not-mnist.npz"
    np.savez(not_mnist, images=np.zeros((3, 28, 28), np.uint8))
    result = _run_in_process(["--checkpoint-dir", str(trained_run), "--data", str(not_mnist)], capsys)
    assert_one_line_error(result, "lacks x_train", "--data")
    result = _run_in_process(["--checkpoint-dir", str(trained_run), "--data", str(tmp_path / "nope.npz")], capsys)
    assert_one_line_error(result, "does not exist")


def test_flag_errors_are_one_line(tmp_path):
    result = run_tool("dcgan_tf.evaluate", "--checkpoint", "ckpt-1", "--all-checkpoints")
    assert_one_line_error(result, "--checkpoint and --all-checkpoints")
    with pytest.raises(DcganError, match="--num-samples"):
        EvaluateConfig(num_samples=2)


@pytest.mark.usefixtures("quick_evals")
def test_eval_every_adds_metrics_to_history_and_a_plot(small_data, evaluator_dir, reference, tmp_path):
    from conftest import tiny_flags

    from dcgan_tf.config import TrainConfig
    from dcgan_tf.runs import read_history
    from dcgan_tf.training import fit

    run = tmp_path / "run"
    flags = tiny_flags(small_data, run, epochs=3, eval_every=2, evaluator_dir=str(evaluator_dir))
    history = fit(TrainConfig(**flags))
    # Evaluated at epoch 2 (every 2) and epoch 3 (the last), not at epoch 1.
    assert ["fid" in row for row in history] == [False, True, True]
    saved = read_history(run / "history.csv")
    for column in ("fid", "classifier_score", "precision", "recall", "min_class_share", "max_class_share"):
        assert np.isfinite(saved[2][column]) and column not in saved[0]
    assert 1 <= saved[2]["classifier_score"] <= 10
    assert (run / "metrics.png").is_file()


@pytest.mark.usefixtures("quick_evals")
def test_eval_every_keeps_the_best_checkpoint_off_the_checkpoint_schedule(
    small_data, evaluator_dir, reference, tmp_path
):
    from conftest import tiny_flags

    from dcgan_tf.checkpoints import find_checkpoint, list_checkpoints, load_generator, read_best
    from dcgan_tf.config import TrainConfig
    from dcgan_tf.training import fit

    run = tmp_path / "run"
    # --checkpoint-every 10: the schedule saves only the last epoch; every new best must be saved anyway.
    flags = tiny_flags(small_data, run, epochs=4, eval_every=1, checkpoint_every=10, evaluator_dir=str(evaluator_dir))
    history = fit(TrainConfig(**flags))
    fids = [row["fid"] for row in history]
    assert all("raw_fid" in row for row in history)  # the raw generator is measured beside the averaged one
    improved = [row["epoch"] for i, row in enumerate(history) if row["fid"] < min(fids[:i], default=np.inf)]
    saved_epochs = {c.epoch for c in list_checkpoints(run)}
    assert set(improved) <= saved_epochs and 4 in saved_epochs

    best = read_best(run)
    assert best["epoch"] == improved[-1] and best["fid"] == pytest.approx(min(fids))
    assert best["generator"] == "ema" and "raw_fid" in best
    info = find_checkpoint(run, "best")
    assert (info.name, info.epoch) == (best["checkpoint"], best["epoch"])
    # `best` restores the best checkpoint's weights: those of that checkpoint, not the latest's (unless it is it).
    best_weights = load_generator(run, "best").get_weights()
    for a, b in zip(best_weights, load_generator(run, info.name).get_weights()):
        np.testing.assert_array_equal(a, b)
    latest_differs = any(np.any(a != b) for a, b in zip(best_weights, load_generator(run).get_weights()))
    assert latest_differs == (best["epoch"] != 4)

    out = tmp_path / "best.png"
    result = run_tool("dcgan_tf.sample", f"--checkpoint-dir={run}", "--checkpoint=best", f"--out={out}")
    assert result.returncode == 0 and out.is_file(), result.stderr
    # A run without --eval-every has no best: a one-line error, not a traceback.
    (run / "best.json").unlink()
    no_best = run_tool("dcgan_tf.sample", f"--checkpoint-dir={run}", "--checkpoint=best", f"--out={out}")
    assert_one_line_error(no_best, "no best.json", "--eval-every")
