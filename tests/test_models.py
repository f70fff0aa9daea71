"""The generator and discriminator match the TensorFlow tutorial's architecture."""

from __future__ import annotations

import numpy as np
import pytest

from dcgan_tf.errors import DcganError
from dcgan_tf.models import build_models, make_discriminator, make_generator


def test_generator_shapes_range_and_parameter_counts():
    generator = make_generator(noise_dim=100)
    images = np.asarray(generator(np.random.default_rng(0).standard_normal((3, 100)), training=False))
    assert images.shape == (3, 28, 28, 1)
    assert images.min() >= -1 and images.max() <= 1  # tanh output, the scale of the real images
    # The tutorial's model.summary(): 2,330,944 parameters, 2,305,472 of them trainable.
    assert generator.count_params() == 2_330_944
    assert sum(int(np.prod(v.shape)) for v in generator.trainable_variables) == 2_305_472
    assert [layer.output.shape for layer in generator.layers if "conv2d_transpose" in layer.name] == [
        (None, 7, 7, 128),
        (None, 14, 14, 64),
        (None, 28, 28, 1),
    ]


def test_discriminator_outputs_one_logit_per_image():
    discriminator = make_discriminator(seed=0)
    logits = np.asarray(discriminator(np.zeros((5, 28, 28, 1), np.float32), training=False))
    assert logits.shape == (5, 1)
    assert discriminator.count_params() == 212_865  # the tutorial's count
    assert discriminator.layers[-1].activation.__name__ == "linear"  # logits: the loss applies the sigmoid


def test_noise_dim_is_configurable_and_unknown_models_are_refused():
    generator, discriminator = build_models("dcgan", noise_dim=7)
    assert generator.input_shape == (None, 7)
    assert discriminator.input_shape == (None, 28, 28, 1)
    with pytest.raises(DcganError, match="unknown model 'wgan'"):
        build_models("wgan", noise_dim=7)
