"""Bad input gets one line, a diverged run saves nothing non-finite, one batch counter, honest precision advice,
and the sweep and time budget across mid-epoch checkpoints."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_one_line_error, run_cli, run_tool, snapshot, tiny_flags

from dcgan_tf.checkpoints import CheckpointStore, list_checkpoints
from dcgan_tf.config import TrainConfig
from dcgan_tf.data import load_mnist
from dcgan_tf.distribute import check_replica_split, check_tf_config
from dcgan_tf.errors import DcganError
from dcgan_tf.gan import EpochSums, build_gan
from dcgan_tf.precision import auto_precision, precision_hint
from dcgan_tf.training import fit


def mid_epoch_copy(run: Path, tmp_path: Path, seconds: float = 0.0) -> Path:
    """A copy of the 2-epoch tiny run (4 batches an epoch) plus ``ckpt-6``: epoch 2, 2 batches done, whose
    running sums hold ``seconds`` of training, as Ctrl-C mid-epoch leaves it."""
    copy = Path(shutil.copytree(run, tmp_path / "mid"))
    config = TrainConfig(**json.loads((copy / "config.json").read_text()))
    gan = build_gan(config)
    store = CheckpointStore(copy, **gan.checkpoint_objects())
    store.restore(str(copy / "ckpt-4"))
    gan.set_position(1, 2, EpochSums(np.array([1.0, 1.0, 0.5, 0.5]), seconds))
    gan.batches.assign(6)
    store.save(6)
    return copy


# --- data and environment --------------------------------------------------------------------------


def _npz(path: Path, y_train: np.ndarray) -> Path:
    images = np.zeros((len(y_train), 28, 28), np.uint8)
    np.savez(path, x_train=images, y_train=y_train, x_test=images[:4], y_test=np.zeros(4, np.uint8))
    return path


@pytest.mark.parametrize(
    "labels, fragment",
    [(np.array([0, 3, 10, 2]), "outside 0-9 (e.g. 10 at index 2)"), (np.array([0.0, 1.5, 2, 3]), "dtype float64")],
    ids=["out-of-range", "float"],
)
def test_labels_must_be_the_datasets_classes(tmp_path, labels, fragment):
    path = _npz(tmp_path / "bad.npz", labels)
    with pytest.raises(DcganError, match="y_train") as err:
        load_mnist(path)
    assert fragment in str(err.value) and str(path) in str(err.value)
    result = run_tool("dcgan_tf.train", f"--data={path}", "--model=conditional", "--train-size=4", "--batch-size=2",
                      f"--checkpoint-dir={tmp_path / 'run'}")  # fmt: skip
    assert_one_line_error(result, fragment, "official labels")


def test_a_corrupt_gz_idx_file_is_one_line(mnist_path, tmp_path):
    from test_data import write_idx

    mnist = load_mnist(mnist_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", mnist.x_train[:10], gz=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", mnist.y_train[:10])
    write_idx(tmp_path / "t10k-images-idx3-ubyte", mnist.x_test[:10])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", mnist.y_test[:10])
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    raw = bytearray(gz.read_bytes())
    raw[20:40] = bytes(20)  # the compressed stream is damaged, the gzip header intact
    gz.write_bytes(bytes(raw))
    with pytest.raises((gzip.BadGzipFile, EOFError, zlib.error)):
        gzip.decompress(bytes(raw))  # the damage is real
    result = run_tool("dcgan_tf.train", f"--data={tmp_path}", f"--checkpoint-dir={tmp_path / 'run'}")
    assert_one_line_error(result, "train-images-idx3-ubyte.gz is unreadable", "re-download")


@pytest.mark.parametrize(
    "tf_config, fragment",
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{not json", "not valid JSON"),
        ('{"task": {"type": "worker", "index": 0}}', 'no "cluster"'),
        ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
        ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "chief", "index": 0}}', '"type" among worker'),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "index 2 is not one of"),
    ],
)
def test_tf_config_is_checked_before_use(tf_config, fragment):
    with pytest.raises(DcganError, match="TF_CONFIG") as err:
        check_tf_config(tf_config)
    assert fragment in str(err.value)


def test_a_malformed_tf_config_is_one_line_from_the_cli(mnist_path, tmp_path):
    env = {**os.environ, "TF_CONFIG": '{"cluster": '}
    result = run_cli("dcgan_tf.train", f"--data={mnist_path}", "--strategy=multiworker",
                     f"--checkpoint-dir={tmp_path / 'run'}", env=env)  # fmt: skip
    assert_one_line_error(result, "TF_CONFIG is not valid JSON")
    assert not (tmp_path / "run").exists()


def test_a_batch_the_replicas_cannot_split_is_refused_with_the_nearest_sizes():
    check_replica_split(256, 4)  # splits evenly
    with pytest.raises(DcganError, match="does not split evenly over 3 replicas") as err:
        check_replica_split(256, 3)
    assert "--batch-size 255 or 258" in str(err.value)


# --- diverging runs and the batch counter ----------------------------------------------------------


def test_weights_gone_non_finite_on_an_epochs_last_batch_save_nothing(mnist_path, tmp_path):
    # One batch an epoch: its losses are computed before its update, so only the weights show the
    # divergence. A learning rate of 1e39 (inf in float32) makes the first update non-finite.
    run = tmp_path / "run"
    flags = ["dcgan_tf.train", f"--data={mnist_path}", "--train-size=64", "--batch-size=64", f"--checkpoint-dir={run}"]
    assert run_tool(*flags, "--epochs=1").returncode == 0
    before = snapshot(run)
    result = run_tool(*flags, "--epochs=2", "--checkpoint=ckpt-1", "--learning-rate=1e39")
    assert_one_line_error(
        result, "weights became NaN/inf by batch 2", "last good checkpoint is", "--checkpoint ckpt-1 --learning-rate"
    )
    assert [c.name for c in list_checkpoints(run)] == ["ckpt-1"]
    assert {k: v for k, v in snapshot(run).items() if k in before} == before

    # The advice works: a branch from the last good checkpoint with a smaller learning rate.
    result = run_tool(*flags, "--epochs=2", "--checkpoint=ckpt-1", "--learning-rate=5e-5")
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "config.json").read_text())["learning_rate"] == 5e-5
    assert [c.name for c in list_checkpoints(run)] == ["ckpt-1", "ckpt-2"]
    # ...but not a new learning rate for the run's own continuation.
    refused = run_tool(*flags, "--epochs=3", "--learning-rate=1e-3")
    assert_one_line_error(refused, "learning_rate=5e-05 (now 0.001)")


def test_a_skipped_mixed_float16_step_still_advances_the_batch_counter(mnist_path, tmp_path):
    config = TrainConfig(**tiny_flags(mnist_path, tmp_path / "run", precision="mixed_float16"))
    gan = build_gan(config)
    step = gan.make_step(config, None, steps_per_epoch=1)
    images = tf.random.stateless_uniform([64, 28, 28, 1], [1, 2], minval=-1, maxval=1)
    labels = tf.zeros([64], tf.int32)
    for optimizer in (gan.generator_optimizer, gan.discriminator_optimizer):
        optimizer.dynamic_scale.assign(3e38)  # the scaled float16 gradients overflow: the update is skipped
    weights = [w.copy() for w in gan.discriminator.get_weights()]
    step(images, labels)
    assert int(gan.discriminator_optimizer.iterations) == 0  # the optimizer skipped it...
    for a, b in zip(weights, gan.discriminator.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(gan.batches) == 1  # ...but the run counts the batch: the next draws its own seeds
    for optimizer in (gan.generator_optimizer, gan.discriminator_optimizer):
        optimizer.dynamic_scale.assign(2.0**10)
    step(images, labels)  # with a sane scale this one updates
    assert int(gan.batches) == 2 and int(gan.discriminator_optimizer.iterations) == 1


# --- mid-epoch checkpoints: the evaluation sweep and the time budget ----------------------------


def test_evaluate_all_checkpoints_keeps_mid_epoch_ones_and_skips_damaged_ones(
    trained_run, small_data, evaluator_dir, reference, tmp_path
):
    run = mid_epoch_copy(trained_run, tmp_path)
    data = next(run.glob("ckpt-4.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    out = tmp_path / "all.json"
    result = run_tool("dcgan_tf.evaluate", f"--checkpoint-dir={run}", "--all-checkpoints", "--num-samples=200",
                      f"--data={small_data}", f"--evaluator-dir={evaluator_dir}", f"--json={out}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "skipping ckpt-4: damaged" in result.stdout
    records = json.loads(out.read_text())
    assert [(r["checkpoint"], r["epoch"], r["batches"]) for r in records] == [("ckpt-6", 1, 6), ("ckpt-8", 2, 8)]
    assert "1 + 2 batches" in result.stdout  # the mid-epoch one is labelled by where it is
    assert (run / "metrics.png").is_file()


def test_max_minutes_counts_the_time_before_a_mid_epoch_resume(trained_run, mnist_path, tmp_path):
    run = mid_epoch_copy(trained_run, tmp_path, seconds=90.0)  # 1.5 minutes already spent in epoch 2
    argv = [f"--data={mnist_path}", "--train-size=256", "--batch-size=64", f"--checkpoint-dir={run}"]
    result = run_tool("dcgan_tf.train", *argv, "--epochs=5", "--checkpoint=ckpt-6", "--max-minutes=1")
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stdout and "(epoch 1, batch 2)" in result.stdout
    assert "--max-minutes 1 reached after epoch 2" in result.stdout
    assert [(c.name, c.epoch, c.epoch_batches) for c in list_checkpoints(run)][-1] == ("ckpt-8", 2, 0)
    again = run_tool("dcgan_tf.train", *argv, "--epochs=5", "--max-minutes=1")
    assert "nothing to do" in again.stdout


# --- precision advice ---------------------------------------------------------------------------------


def test_precision_advice_follows_what_was_measured(tmp_path):
    amx, avx512_bf16, avx2 = tmp_path / "amx", tmp_path / "avx512_bf16", tmp_path / "avx2"
    amx.write_text("flags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile\n")
    avx512_bf16.write_text("flags\t\t: fpu sse avx512f avx512_bf16\n")  # bfloat16 measured slower here
    avx2.write_text("flags\t\t: fpu sse avx2 fma\n")
    assert "--precision mixed_bfloat16" in precision_hint("float32", amx)
    for cpu in (avx512_bf16, avx2, tmp_path / "missing"):
        assert precision_hint("float32", cpu) is None
    assert precision_hint("mixed_bfloat16", amx) is None  # already using them
    # A run that needs float32 (--recipe fast's R1) is told what that costs on such a CPU, not to use bfloat16.
    needs = TrainConfig(recipe="fast").needs_float32
    assert needs == "--recipe fast's --r1 1" and "but --recipe fast's --r1 1 needs float32" in precision_hint(
        "float32", amx, needs
    )
    assert auto_precision(needs, amx) == ("float32", "--recipe fast's --r1 1 needs float32 for its gradient penalty")
    assert auto_precision(None, amx)[0] == "mixed_bfloat16"
    assert auto_precision(None, avx512_bf16)[0] == "float32" and auto_precision(None, avx2)[0] == "float32"
    assert auto_precision("--loss wgan-gp", amx)[0] == "float32"
    # AVX512-BF16 without AMX: bfloat16 is faster on some such CPUs, slower on others, so auto times both.
    for speeds, fastest in (({"float32": 500, "mixed_bfloat16": 250}, "float32"),
                            ({"float32": 380, "mixed_bfloat16": 610}, "mixed_bfloat16")):  # fmt: skip
        choice, why = auto_precision(None, avx512_bf16, measure=speeds.get)
        assert choice == fastest and "timed here" in why


def test_precision_auto_decides_once_and_every_resume_uses_the_recorded_choice(mnist_path, tmp_path, monkeypatch):
    """On a CPU where auto times both precisions, the first start records the faster; a resume takes the record
    without timing again, even where a new timing would now choose the other."""
    from dcgan_tf import precision, training

    cpu = tmp_path / "cpuinfo"
    cpu.write_text("flags\t\t: fpu sse avx512f avx512_bf16\n")  # AVX512-BF16 without AMX: auto times both
    monkeypatch.setattr(precision, "CPUINFO", str(cpu))
    timings = []

    def images_per_second(config, choice):
        timings.append(choice)
        faster = "float32" if len(timings) <= 2 else "mixed_bfloat16"  # the second start would choose bfloat16
        return 500.0 if choice == faster else 100.0

    monkeypatch.setattr(training, "_images_per_second", images_per_second)
    run = tmp_path / "run"
    fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=1, train_size=64, precision="auto")))
    assert timings == ["float32", "mixed_bfloat16"]
    assert json.loads((run / "config.json").read_text())["precision"] == "float32"
    history = fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=2, train_size=64, precision="auto")))
    assert timings == ["float32", "mixed_bfloat16"] and len(history) == 2  # resumed, not timed, not refused
    assert json.loads((run / "config.json").read_text())["precision"] == "float32"
    # Multi-worker: every worker takes the rule (float32 here), never a timing.
    multi = training._resolve_precision(
        TrainConfig(precision="auto", strategy="multiworker", checkpoint_dir=str(tmp_path / "m"))
    )
    assert multi.precision == "float32" and len(timings) == 2


def test_a_dataset_smaller_than_one_batch_is_one_line_and_writes_nothing(mnist_path, tmp_path):
    with np.load(mnist_path) as full:
        tiny = tmp_path / "tiny.npz"
        np.savez(tiny, x_train=full["x_train"][:200], y_train=full["y_train"][:200],
                 x_test=full["x_test"][:50], y_test=full["y_test"][:50])  # fmt: skip
    result = run_tool("dcgan_tf.train", f"--data={tiny}", f"--checkpoint-dir={tmp_path / 'run'}")
    assert_one_line_error(result, "200 digits", "one batch of 256", "--batch-size 200")
    with pytest.raises(DcganError, match="200 digits, fewer than one batch of 256"):  # --dry-run too
        fit(TrainConfig(data=str(tiny), checkpoint_dir=str(tmp_path / "run"), dry_run=True))
    assert not (tmp_path / "run").exists()


def test_the_chief_is_the_chief_job_when_tf_config_has_one(monkeypatch):
    from types import SimpleNamespace

    from dcgan_tf.distribute import is_chief

    def task(tf_config: dict) -> bool:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        return is_chief(SimpleNamespace(cluster_resolver=resolver))

    with_chief = {"chief": ["127.0.0.1:2000"], "worker": ["127.0.0.1:2001", "127.0.0.1:2002"]}
    assert task({"cluster": with_chief, "task": {"type": "chief", "index": 0}})
    assert not task({"cluster": with_chief, "task": {"type": "worker", "index": 0}})
    assert not task({"cluster": with_chief, "task": {"type": "worker", "index": 1}})
    workers = {"worker": ["127.0.0.1:2001", "127.0.0.1:2002"]}
    assert task({"cluster": workers, "task": {"type": "worker", "index": 0}})
    assert not task({"cluster": workers, "task": {"type": "worker", "index": 1}})
    assert is_chief(SimpleNamespace())  # one process: it writes


def test_divergence_advice_divides_the_rates_the_run_used():
    from dcgan_tf.saving import smaller_rates

    assert smaller_rates(TrainConfig(learning_rate=2e-4)) == "--learning-rate 2e-05"
    assert smaller_rates(TrainConfig(g_learning_rate=1e-4, d_learning_rate=4e-4)) == (
        "--g-learning-rate 1e-05 --d-learning-rate 4e-05"
    )
    # A run whose per-model rates were set: --learning-rate would not reach them, so the advice names them.
    assert smaller_rates(TrainConfig(learning_rate=1e-3, g_learning_rate=2e-4, d_learning_rate=2e-4)) == (
        "--g-learning-rate 2e-05 --d-learning-rate 2e-05"
    )
