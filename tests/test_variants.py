"""The GAN family: dense and conditional models, the WGAN-GP objective, and their comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_one_line_error, differing_share, run_tool, snapshot, tiny_flags

from dcgan_tf.checkpoints import list_checkpoints, load_generator
from dcgan_tf.config import TrainConfig
from dcgan_tf.errors import DcganError
from dcgan_tf.exporting import export_generator
from dcgan_tf.losses import GP_EPSILON, gradient_penalty
from dcgan_tf.models import LABEL_EMBEDDING, build_models, is_conditional, num_classes_of
from dcgan_tf.sampling import (
    GRID_COLUMNS,
    GRID_NOISE,
    cycled_labels,
    generate,
    grid_images,
    grid_noise,
    sample_with_labels,
)
from dcgan_tf.training import fit

TUTORIAL_G, TUTORIAL_D = 2_330_944, 212_865  # the card's models (tests/test_models.py)


def test_parameter_counts_follow_from_the_layer_sizes():
    dense_g, dense_d = build_models("dense", noise_dim=100)
    # Dense 100->256->512->1024 (no bias, BatchNorm with 4 values per unit), then 1024->784 with bias.
    assert dense_g.count_params() == 100 * 256 + 256 * 512 + 512 * 1024 + 4 * (256 + 512 + 1024) + 1024 * 784 + 784
    assert dense_d.count_params() == (784 * 512 + 512) + (512 * 256 + 256) + (256 + 1)
    conditional_g, conditional_d = build_models("conditional", noise_dim=100)
    # The card's generator whose three BatchNorms take their scale and offset (2 per channel) from a per-digit table.
    channels = 7 * 7 * 256 + 128 + 64
    assert conditional_g.count_params() == TUTORIAL_G - 2 * channels + 10 * 2 * channels
    concat_g, _ = build_models("conditional-concat", noise_dim=100)
    # The first one: the card's generator on noise + label embedding (its first Dense grows by 50 inputs).
    assert concat_g.count_params() == TUTORIAL_G + LABEL_EMBEDDING * 7 * 7 * 256 + 10 * LABEL_EMBEDDING
    # The card's discriminator plus a projection embedding of its 7*7*128 features per class.
    assert conditional_d.count_params() == TUTORIAL_D + 10 * 7 * 7 * 128
    assert is_conditional(conditional_g) and is_conditional(conditional_d) and not is_conditional(dense_g)
    images = dense_g(np.zeros((2, 100), np.float32), training=False)
    assert images.shape == (2, 28, 28, 1) and dense_d(images).shape == (2, 1)


@pytest.mark.parametrize("model", ["conditional", "conditional-concat"])
def test_a_conditional_pair_takes_as_many_classes_as_it_is_built_for(model):
    generator, discriminator = build_models(model, noise_dim=4, num_classes=3)
    assert num_classes_of(generator) == num_classes_of(discriminator) == 3
    assert num_classes_of(build_models("dcgan", noise_dim=4)[0]) == 0
    assert cycled_labels(generator, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    # The epoch grid: one noise vector per class, each drawn as every class (a row per class).
    noise = grid_noise(generator, seed=0)
    images, cols = grid_images(generator, noise)
    assert noise.shape == (3, 4) and cols == 3 and images.shape == (9, 28, 28, 1)
    labels = np.repeat(np.arange(3), 3)
    np.testing.assert_allclose(images, generate(generator, np.tile(noise, (3, 1)), labels), atol=1e-6)
    # More classes: a row per class, GRID_COLUMNS columns; the run stores up to GRID_NOISE vectors, as runs
    # made with a column per class did (their checkpoints restore it).
    many = build_models(model, noise_dim=4, num_classes=GRID_NOISE + 1)[0]
    noise = grid_noise(many, seed=0)
    images, cols = grid_images(many, noise)
    assert noise.shape == (GRID_NOISE, 4) and cols == GRID_COLUMNS
    assert images.shape == ((GRID_NOISE + 1) * GRID_COLUMNS, 28, 28, 1)


def test_gradient_penalty_matches_the_closed_form_of_a_linear_critic():
    rng = np.random.default_rng(0)
    real, fake = (tf.constant(rng.standard_normal((5, 28, 28, 1)), tf.float32) for _ in range(2))
    for scale in (0.01, 0.05, 1.0):
        w = tf.constant(rng.standard_normal((28, 28, 1)) * scale, tf.float32)

        # f(x) = <w, x> + 3: its gradient is w at every x, so the penalty is (||w|| - 1)^2 for each example.
        def critic(x, w=w):
            return tf.reduce_sum(x * w, axis=[1, 2, 3])[:, None] + 3.0

        alpha = tf.constant(rng.uniform(size=5), tf.float32)
        penalty = gradient_penalty(critic, real, fake, alpha).numpy()
        expected = (np.sqrt(np.sum(np.square(w.numpy())) + GP_EPSILON) - 1.0) ** 2
        assert penalty.shape == (5,)
        np.testing.assert_allclose(penalty, expected, rtol=1e-4)


def test_gradient_penalty_of_a_flat_critic_is_one_with_finite_gradients():
    w = tf.Variable(tf.zeros((28, 28, 1)))
    real = tf.ones((3, 28, 28, 1))
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])[:, None], real, -real, tf.ones(3))
    grad = tape.gradient(penalty, w)  # sqrt(0) would make this NaN without the epsilon
    np.testing.assert_allclose(penalty.numpy(), 1.0, atol=1e-5)
    assert np.isfinite(grad.numpy()).all()


VARIANTS = {
    "dense": {"model": "dense"},
    "conditional": {"model": "conditional"},
    "wgan-gp": {"loss": "wgan-gp"},
    "conditional-wgan-gp": {"model": "conditional", "loss": "wgan-gp"},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_trains_resumes_exactly_samples_and_exports(variant, mnist_path, tmp_path):
    # 6 batches an epoch: with wgan-gp's 5 critic steps, the generator steps at batches 5 and 10 of the run.
    flags = tiny_flags(mnist_path, tmp_path / "straight", train_size=192, batch_size=32, **VARIANTS[variant])
    history = fit(TrainConfig(**flags))
    assert all(np.isfinite(row["generator_loss"]) for row in history)
    reader = tf.train.load_checkpoint(list_checkpoints(tmp_path / "straight")[-1].path)
    updates = {
        name: int(reader.get_tensor(f"{name}_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))
        for name in ("generator", "discriminator")
    }
    critic_steps = 5 if "wgan-gp" in variant else 1
    assert updates == {"discriminator": 12, "generator": 12 // critic_steps}  # 2 epochs of 6 batches
    resumed = tmp_path / "resumed"
    fit(TrainConfig(**{**flags, "checkpoint_dir": str(resumed), "epochs": 1}))
    fit(TrainConfig(**{**flags, "checkpoint_dir": str(resumed)}))  # continues at epoch 2
    assert [c.epoch for c in list_checkpoints(resumed)] == [1, 2]
    for which in ("raw", "ema"):
        straight = load_generator(tmp_path / "straight", which=which).get_weights()
        again = load_generator(resumed, which=which).get_weights()
        assert differing_share(straight, again) <= 1e-3, which

    generator = load_generator(resumed)
    images, labels = sample_with_labels(generator, 12, seed=3, digit=7 if "conditional" in variant else None)
    assert images.shape == (12, 28, 28, 1) and np.isfinite(images).all()
    if "conditional" in variant:
        assert labels.tolist() == [7] * 12
    out = export_generator(resumed, tmp_path / "g.keras")
    assert out.is_file()


def test_conditional_cli_draws_the_requested_digits_and_refuses_bad_ones(mnist_path, tmp_path):
    run = tmp_path / "run"
    fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=1, model="conditional")))
    grid = tmp_path / "epoch.png"
    assert (run / "image_at_epoch_0001.png").is_file()
    result = run_tool(
        "dcgan_tf.sample", f"--checkpoint-dir={run}", "--digit=3", "--num=5", f"--out={tmp_path / 'a.npz'}"
    )
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "a.npz") as f:
        assert f["images"].shape == (5, 28, 28) and f["labels"].tolist() == [3] * 5
    result = run_tool("dcgan_tf.sample", f"--checkpoint-dir={run}", "--digit=all", "--num=16", f"--out={grid}")
    assert result.returncode == 0, result.stderr
    assert_one_line_error(run_tool("dcgan_tf.sample", f"--checkpoint-dir={run}", "--digit=10"), "--digit", "0-9")
    walk = run_tool("dcgan_tf.interpolate", f"--checkpoint-dir={run}", "--digit=3", f"--out={tmp_path / 'w.png'}")
    assert walk.returncode == 0, walk.stderr


def test_a_run_of_the_first_conditional_generator_still_samples_and_resumes(mnist_path, tmp_path):
    """Runs saved as --model conditional before its generator changed hold the concatenating one."""
    run = tmp_path / "older"
    fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=1, model="conditional-concat")))
    saved = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**saved, "model": "conditional"}))  # as such a run recorded it
    before = load_generator(run)
    assert before.count_params() == build_models("conditional-concat", noise_dim=100)[0].count_params()
    assert len(fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=2, model="conditional")))) == 2
    after = load_generator(run)
    assert (
        after.count_params() == before.count_params() and differing_share(before.get_weights(), after.get_weights()) > 0
    )


def test_digit_for_an_unconditional_model_is_a_one_line_error(trained_run, tmp_path):
    result = run_tool("dcgan_tf.sample", f"--checkpoint-dir={trained_run}", "--digit=7", f"--out={tmp_path / 'x.png'}")
    assert_one_line_error(result, "--digit needs a conditional model")
    assert not (tmp_path / "x.png").exists()


def test_bad_variant_settings_are_refused(trained_run, mnist_path, tmp_path):
    with pytest.raises(DcganError, match="--critic-steps must be a positive integer"):
        TrainConfig(loss="wgan-gp", critic_steps=0)
    with pytest.raises(DcganError, match="--precision mixed_float16 does not support --loss wgan-gp"):
        TrainConfig(loss="wgan-gp", mixed_precision=True)
    with pytest.raises(DcganError, match="pass only one of them"):
        TrainConfig(fresh=True, checkpoint="ckpt-4")
    config = TrainConfig(loss="wgan-gp")
    assert (config.critic_steps, config.beta1, config.beta2) == (5, 0.0, 0.9)  # the paper's defaults
    before = snapshot(trained_run)
    train = ["dcgan_tf.train", f"--data={mnist_path}", "--train-size=256", "--batch-size=64", "--epochs=3"]
    result = run_tool(*train, f"--checkpoint-dir={trained_run}", "--model=dense")
    assert_one_line_error(result, "model='dcgan' (now 'dense')", "--fresh")
    result = run_tool(*train, f"--checkpoint-dir={trained_run}", "--loss=wgan-gp")
    assert_one_line_error(result, "loss='bce' (now 'wgan-gp')")
    assert snapshot(trained_run) == before
    assert_one_line_error(run_tool("dcgan_tf.compare", "--variants=dcgan,gan2"), "unknown --variants gan2")


def test_compare_writes_one_table_and_one_figure(small_data, evaluator_dir, reference, tmp_path):
    from dcgan_tf.compare import CompareConfig, main
    from dcgan_tf.comparison import compare
    from dcgan_tf.config import parse_config

    root = tmp_path / "cmp"
    argv = [f"--data={small_data}", f"--root={root}", f"--evaluator-dir={evaluator_dir}", "--epochs=2"]
    argv += ["--variants=dense,conditional", "--train-size=128", "--batch-size=32", "--num-samples=200"]
    assert main(argv) == 0
    table = (root / "comparison.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"variant", "real training digits", "dense", "conditional"}
    assert "%" in rows["conditional"].split("|")[8] and rows["dense"].split("|")[8].strip() == "-"  # digit accuracy
    assert rows["dense"].split("|")[2].strip() == "2"  # epochs
    assert (root / "comparison.png").read_bytes().startswith(b"\x89PNG")
    assert [c.epoch for c in list_checkpoints(root / "dense")][-1] == 2  # each variant is an ordinary run
    # Again: nothing left to train, measured again; the figure draws the trained (averaged) generators.
    results = compare(parse_config(argv, CompareConfig))
    for result in results:
        for drawn, saved in zip(result.generator.get_weights(), load_generator(result.run_dir).get_weights()):
            np.testing.assert_array_equal(drawn, saved)
