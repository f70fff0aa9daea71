"""The TensorFlow DCGAN tutorial's own checkpoints (`dcgan_tf.tutorial`): every tool takes its folder as is,
and training continues it.

The tutorial's code (`tutorial_model`) trains a few steps on real digits and saves with its own
``tf.train.Checkpoint``, once with Keras 3 (in this process) and once with ``tf_keras`` (Keras 2's layout, in
a subprocess so that its registrations never meet Keras 3's). Kept small: the tutorial's run is 3 steps of 16
digits, and only the Keras 2 run (the layout of most existing tutorial runs) is continued by a real ``fit``;
the Keras 3 one checks the same restore directly.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_one_line_error, snapshot
from tutorial_model import write_tutorial_run

from dcgan_tf import evaluate, export, interpolate, sample, train
from dcgan_tf.errors import run_main

DIGITS = 48  # real digits the tutorial's three steps of 16 train on
TOLERANCE = 1e-5  # the generator's outputs against the tutorial model's own


@pytest.fixture(scope="module", params=["keras", "tf_keras"])
def tutorial_run(request, mnist_path, tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """(a folder of the tutorial's ckpt-1 and ckpt-2, what its models gave and held); treat it as read-only."""
    layout = request.param
    root = tmp_path_factory.mktemp(f"tutorial_{layout}")
    folder, expected = root / "training_checkpoints", root / "expected.npz"
    with np.load(mnist_path) as full:
        digits = full["x_train"][:DIGITS]
    if layout == "keras":
        import keras

        write_tutorial_run(keras, digits, str(folder), str(expected))
    else:
        if importlib.util.find_spec("tf_keras") is None:
            pytest.skip("tf_keras is not installed (pip install -r requirements-dev.txt)")
        np.savez(root / "digits.npz", x_train=digits)
        script = REPO / "tests" / "tutorial_model.py"
        result = subprocess.run(
            [sys.executable, str(script), "tf_keras", str(folder), str(expected), str(root / "digits.npz")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    with np.load(expected) as saved:
        return folder, dict(saved)


def _run(tool, argv: list[str], capsys) -> subprocess.CompletedProcess:
    """An entry point as its CLI runs it (`run_main`), captured like a finished subprocess."""
    with pytest.raises(SystemExit) as exited:
        run_main(tool.main, [str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(argv, exited.value.code, out, err)


def test_every_tool_uses_the_tutorial_folder_as_is(tutorial_run, small_data, evaluator_dir, tmp_path, capsys):
    import keras

    from dcgan_tf.checkpoints import load_generator

    folder, expected = tutorial_run
    before = snapshot(folder)
    noise = expected["noise"]
    for checkpoint, name in ((None, "ckpt-2"), ("ckpt-2", "ckpt-2"), ("ckpt-1", "ckpt-1")):  # the latest by default
        generator = load_generator(folder, checkpoint)
        assert generator.inputs[0].shape[-1] == 100  # the noise size, read from the first Dense kernel
        np.testing.assert_allclose(generator(noise, training=False), expected[name], rtol=0, atol=TOLERANCE)
    assert np.abs(expected["ckpt-1"] - expected["ckpt-2"]).max() > 1e-3  # so the checkpoint choice is seen

    for which in ([], ["--generator", "raw"]):  # the default uses the raw generator without a word
        result = _run(sample, ["--checkpoint-dir", folder, "--num", "4", "--out", tmp_path / "s.npz", *which], capsys)
        assert result.returncode == 0 and not result.stderr, result.stderr
        with np.load(tmp_path / "s.npz") as saved:
            assert saved["images"].shape == (4, 28, 28)
    walk = tmp_path / "walk.png"
    result = _run(interpolate, ["--checkpoint-dir", folder, "--walks", "2", "--steps", "3", "--out", walk], capsys)
    assert result.returncode == 0 and walk.is_file() and walk.with_suffix(".gif").is_file(), result.stderr
    result = _run(export, ["--checkpoint-dir", folder, "--checkpoint", "ckpt-1", "--out", tmp_path / "g.keras"], capsys)
    assert result.returncode == 0 and "exported the raw generator" in result.stdout, result.stderr
    exported = keras.saving.load_model(tmp_path / "g.keras", compile=False)
    np.testing.assert_allclose(exported(noise, training=False), expected["ckpt-1"], rtol=0, atol=TOLERANCE)
    flags = ["--checkpoint-dir", folder, "--data", small_data, "--evaluator-dir", evaluator_dir, "--num-samples", "20"]
    result = _run(evaluate, [*flags, "--json", tmp_path / "e.json"], capsys)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "e.json").read_text())
    # The tutorial saved no position; its optimizer's updates (3 steps) are the batches trained.
    assert (record["checkpoint"], record["generator"], record["epoch"], record["batches"]) == ("ckpt-2", "raw", None, 3)

    # Asking for the averaged generator it does not have: one line each, before any slow work.
    assert_one_line_error(_run(sample, ["--checkpoint-dir", folder, "--generator", "ema"], capsys), "no averaged")
    assert_one_line_error(_run(evaluate, [*flags, "--generator", "both"], capsys), "no averaged generator")
    # Continuing it takes the card's recipe, as the tutorial trained it.
    refused = _run(train, ["--checkpoint-dir", folder, "--data", small_data, "--recipe", "fast"], capsys)
    assert_one_line_error(refused, "ckpt-2 is the TensorFlow tutorial's", "drop --recipe fast")
    assert snapshot(folder) == before


def test_train_continues_the_tutorial_run_in_a_subfolder(tutorial_run, mnist_path, tmp_path, capsys):
    from dcgan_tf.checkpoints import CheckpointStore, list_checkpoints
    from dcgan_tf.config import TrainConfig
    from dcgan_tf.gan import build_gan
    from dcgan_tf.training import fit
    from dcgan_tf.tutorial import CONTINUED, continue_tutorial

    folder, expected = tutorial_run
    run = Path(shutil.copytree(folder, tmp_path / "training_checkpoints"))
    before = snapshot(run)
    flags = dict(data=str(mnist_path), train_size=256, checkpoint_dir=str(run))  # one batch of 256 an epoch

    # What a continued run starts from: both models, and both optimizers exactly as the tutorial left them.
    config, start = continue_tutorial(TrainConfig(**flags))
    assert config.checkpoint_dir == str(run / CONTINUED) and config.output_dir == config.checkpoint_dir
    gan = build_gan(config)
    start.restore(gan, 256)
    np.testing.assert_allclose(gan.generator(expected["noise"], training=False), expected["ckpt-2"], atol=TOLERANCE)
    np.testing.assert_allclose(gan.generator_ema(expected["noise"], training=False), expected["ckpt-2"], atol=TOLERANCE)
    for name in ("generator", "discriminator"):
        optimizer = getattr(gan, f"{name}_optimizer")
        assert int(optimizer.iterations.numpy()) == int(expected[f"{name}_iterations"]) == 3
        assert len(optimizer._momentums) == int(expected[f"{name}_count"])
        for i in range(int(expected[f"{name}_count"])):
            np.testing.assert_array_equal(optimizer._momentums[i].numpy(), expected[f"{name}_m{i}"])
            np.testing.assert_array_equal(optimizer._velocities[i].numpy(), expected[f"{name}_v{i}"])
    assert (gan.batches_trained, *gan.position()[:2]) == (3, 3, 0)  # 3 steps of one batch an epoch: epoch 3 done
    del gan
    # A config.json copied into the tutorial's folder (as this project once advised) does not make it a run to
    # resume, whose branch (--checkpoint) would move the tutorial's ckpt-2 aside: its checkpoints decide.
    (run / "config.json").write_text(config.to_json())
    config, start = continue_tutorial(TrainConfig(**flags, checkpoint="ckpt-1"))
    assert config.checkpoint_dir == str(run / CONTINUED) and start.checkpoint.name == "ckpt-1"
    (run / "config.json").unlink()
    if "tf_keras" not in str(folder):  # the same restore; one real continuation (below) keeps the suite small
        assert snapshot(run) == before
        return

    fit(TrainConfig(**flags, epochs=4))
    out = capsys.readouterr().out
    assert f"this project's run continues ckpt-2 in {run / CONTINUED}" in out
    assert "continuing at epoch 4" in out and "Epoch 4/4" in out
    [continued] = list_checkpoints(run / CONTINUED)
    assert (continued.name, continued.epoch) == ("ckpt-4", 4)  # named by the batches trained, the tutorial's 3 too
    assert {p.name for p in run.iterdir()} == {*before, CONTINUED}
    assert {k: v for k, v in snapshot(run).items() if not k.startswith(CONTINUED + "/")} == before

    # The step taken was Adam's next one from the tutorial's moments, not a fresh optimizer's first:
    # v' = b2 v + (1 - b2) g^2 with the gradient g = (m' - b1 m) / (1 - b1) that m' reveals.
    saved = TrainConfig(**json.loads((run / CONTINUED / "config.json").read_text()))
    gan = build_gan(saved)
    CheckpointStore(run / CONTINUED, **gan.checkpoint_objects()).restore(continued.path)
    for name in ("generator", "discriminator"):
        optimizer = getattr(gan, f"{name}_optimizer")
        assert int(optimizer.iterations.numpy()) == 4
        for i in range(int(expected[f"{name}_count"])):
            m_old, v_old = (expected[f"{name}_{moment}{i}"].astype(np.float64) for moment in ("m", "v"))
            m_new, v_new = (np.float64(moments[i].numpy()) for moments in (optimizer._momentums, optimizer._velocities))
            gradient = (m_new - 0.9 * m_old) / 0.1
            np.testing.assert_allclose(v_new, 0.999 * v_old + 0.001 * gradient**2, rtol=1e-3, atol=1e-12)

    # Run again, the same command resumes this project's run in the subfolder (not the tutorial's checkpoint).
    config, start = continue_tutorial(TrainConfig(**flags, epochs=5))
    assert start is None and config.checkpoint_dir == str(run / CONTINUED)


def test_other_checkpoints_get_one_line_and_stay_untouched(mnist_path, tmp_path, capsys):
    import keras
    import tensorflow as tf
    from tutorial_model import tutorial_models

    from dcgan_tf.models import make_dense_discriminator, make_dense_generator

    def save(folder: Path, **objects) -> Path:
        tf.train.Checkpoint(**objects).save(str(folder / "ckpt"))
        return folder

    classifier = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(classifier.trainable_variables)
    tutorial_generator, _ = tutorial_models(keras)
    folders = {
        "classifier": (save(tmp_path / "classifier", model=classifier, optimizer=optimizer), "holds model, optimizer"),
        # Another GAN saved under the tutorial's names: the fully connected pair.
        "dense GAN": (
            save(tmp_path / "dense", generator=make_dense_generator(), discriminator=make_dense_discriminator()),
            "layer 1's kernel is (100, 256) where the tutorial's Dense has (100, 12544)",
        ),
        # The tutorial's generator alone: enough to sample from, not to continue training.
        "generator only": (save(tmp_path / "partial", generator=tutorial_generator), "but not its discriminator"),
    }
    truncated = tmp_path / "truncated"
    save(truncated, generator=tutorial_generator)
    data = next(truncated.glob("ckpt-1.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    folders["truncated"] = (truncated, "ckpt-1 is damaged")
    train_flags = ["--data", mnist_path, "--train-size", "256", "--epochs", "1"]
    for case, (folder, fragment) in folders.items():
        before = snapshot(folder)
        result = _run(train, ["--checkpoint-dir", folder, *train_flags], capsys)
        assert_one_line_error(result, fragment)
        if case != "generator only":
            assert_one_line_error(_run(sample, ["--checkpoint-dir", folder], capsys), fragment)
        if case in ("classifier", "dense GAN"):  # named as neither, never advised to copy a config.json
            assert "expected a dcgan_tf training run" in result.stderr and "config.json from" not in result.stderr
        assert snapshot(folder) == before, case  # nothing written, moved or deleted
    generator_only = folders["generator only"][0]
    result = _run(sample, ["--checkpoint-dir", generator_only, "--num", "2", "--out", tmp_path / "two.npz"], capsys)
    assert result.returncode == 0, result.stderr
