"""One compiled training step updates both models, deterministically."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import differing_share

from dcgan_tf.config import TrainConfig
from dcgan_tf.errors import DcganError
from dcgan_tf.gan import build_gan


def _step_once(seed: int, images: np.ndarray):
    config = TrainConfig(seed=seed, batch_size=8, noise_dim=100)
    gan = build_gan(config)
    before = [v.numpy().copy() for v in gan.generator.trainable_variables + gan.discriminator.trainable_variables]
    step = gan.make_step(config, None, steps_per_epoch=1)
    outputs = {k: float(v) for k, v in step(images, np.zeros(len(images), np.int32)).items()}
    after = [v.numpy() for v in gan.generator.trainable_variables + gan.discriminator.trainable_variables]
    return gan, outputs, before, after


def test_one_step_changes_every_weight_of_both_models_and_returns_finite_losses():
    images = np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)
    gan, outputs, before, after = _step_once(0, images)
    unchanged = [i for i, (b, a) in enumerate(zip(before, after)) if np.array_equal(b, a)]
    assert unchanged == [], f"trainable variables {unchanged} did not move"
    assert set(outputs) == {"g_loss", "d_loss", "d_real", "d_fake"}
    assert all(np.isfinite(v) for v in outputs.values())
    # At initialisation D outputs about 0.5 everywhere, so the losses start near log 2 and 2 log 2.
    assert abs(outputs["g_loss"] - np.log(2)) < 0.1
    assert abs(outputs["d_loss"] - 2 * np.log(2)) < 0.1
    assert int(gan.generator_optimizer.iterations) == 1 == int(gan.discriminator_optimizer.iterations)


def test_same_seed_same_step_different_seed_different_step():
    images = np.random.default_rng(1).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)
    _, first, _, weights_a = _step_once(3, images)
    _, second, _, weights_b = _step_once(3, images)
    _, _, _, weights_c = _step_once(4, images)
    # Same seed: the same noise, dropout masks and initial weights, so the same losses and update
    # (up to summation order: see differing_share).
    assert first == pytest.approx(second, abs=1e-6)
    assert differing_share(weights_a, weights_b) < 1e-3
    assert differing_share(weights_a, weights_c) > 0.5  # another seed: other weights altogether


@pytest.mark.parametrize(
    "flags, compute, loss_scaling",
    [
        ({"mixed_precision": True}, "float16", True),  # the shorthand
        ({"precision": "mixed_float16"}, "float16", True),
        ({"precision": "mixed_bfloat16"}, "bfloat16", False),  # bfloat16 has float32's range: no loss scaling
    ],
)
def test_mixed_precision_step_computes_in_low_precision_and_keeps_float32_weights(flags, compute, loss_scaling):
    config = TrainConfig(batch_size=8, **flags)
    gan = build_gan(config)
    assert gan.generator.layers[1].compute_dtype == compute
    assert gan.discriminator.layers[1].compute_dtype == compute
    assert isinstance(gan.generator_optimizer, keras.optimizers.LossScaleOptimizer) == loss_scaling
    assert all(v.dtype == "float32" for v in gan.generator.trainable_variables)
    images = np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)
    before = [w.copy() for w in gan.generator.get_weights()]
    outputs = gan.make_step(config, None, steps_per_epoch=1)(images, np.zeros(8, np.int32))
    assert all(np.isfinite(float(v)) for v in outputs.values())
    assert any(not np.array_equal(a, b) for a, b in zip(before, gan.generator.get_weights()))  # it trained
    assert gan.generator(np.zeros((2, 100), np.float32)).dtype == "float32"  # tanh output stays float32
    # The choice stays with that run: models built afterwards are float32 again.
    assert build_gan(TrainConfig()).generator.layers[1].compute_dtype == "float32"


def test_conflicting_precision_flags_are_refused():
    with pytest.raises(DcganError, match="--mixed-precision means --precision mixed_float16, not mixed_bfloat16"):
        TrainConfig(mixed_precision=True, precision="mixed_bfloat16")


def test_xla_compiled_step_trains_deterministically():
    images = np.random.default_rng(1).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)
    runs = []
    for jit_compile in (False, True, True):
        config = TrainConfig(batch_size=8, jit_compile=jit_compile)
        gan = build_gan(config)
        before = gan.generator.get_weights() + gan.discriminator.get_weights()
        outputs = {
            k: float(v)
            for k, v in gan.make_step(config, None, steps_per_epoch=1)(images, np.zeros(8, np.int32)).items()
        }
        after = gan.generator.get_weights() + gan.discriminator.get_weights()
        assert differing_share(before, after) > 0.5  # it trained
        runs.append((outputs, after))
    (plain, _), (xla, xla_weights), (again, again_weights) = runs
    # Under XLA, Keras draws the dropout masks with another random generator, so the update is not the plain
    # step's (Adam's first step moves weights by +-lr either way), but the same seed gives the same run.
    assert xla == pytest.approx(again, abs=1e-6) and differing_share(xla_weights, again_weights) < 1e-3
    assert xla == pytest.approx(plain, abs=0.05)  # the same losses up to those masks


@pytest.mark.parametrize("loss", ["bce", "hinge", "wgan-gp"])
def test_every_objective_trains_under_loss_scaling_as_without_it(loss):
    """Players.apply scales every objective's gradients by the optimizer's loss scale, which the optimizer
    divides out again: plain SGD and loss-scaled SGD make the same update. (Had an objective's gradients
    gone unscaled, the loss-scaled optimizer would have divided them by its 2**15 and barely moved.)"""
    import tensorflow as tf

    from dcgan_tf.draws import Draws
    from dcgan_tf.losses import Batch, get_loss
    from dcgan_tf.models import build_models, make_discriminator
    from dcgan_tf.players import Players

    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)), tf.float32)
    batch = Batch(images, tf.zeros(4, tf.int32), 4)
    draws = Draws(seed=0, step=tf.constant(0, tf.int64), global_batch=4, first=0, local_batch=4)
    weights = {}
    for scaled in (False, True):
        keras.utils.set_random_seed(0)  # the same initial weights both times
        generator, discriminator = build_models("dcgan", noise_dim=8, seed=0)[0], make_discriminator(0, dropout=0.0)
        optimizers = [keras.optimizers.SGD(0.1) for _ in range(2)]
        if scaled:
            optimizers = [keras.optimizers.LossScaleOptimizer(o) for o in optimizers]
        for model, optimizer in zip((generator, discriminator), optimizers):
            optimizer.build(model.trainable_variables)
        get_loss(loss).replica_step(Players(generator, discriminator, *optimizers), batch, draws, True)
        weights[scaled] = generator.get_weights() + discriminator.get_weights()
    assert optimizers[0].scale_loss(1.0) > 1000  # the scaled run did scale
    for plain, scaled in zip(weights[False], weights[True]):
        np.testing.assert_allclose(scaled, plain, rtol=1e-4, atol=1e-6)
