"""The generator and discriminator of the TensorFlow DCGAN tutorial, as Keras functional models.

`build_models` is the registry entry point: ``config.model`` names a pair of builders, so a later
dense baseline or conditional generator is one more entry, not a change to the training code.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from dcgan_tf.errors import DcganError


def make_generator(noise_dim: int = 100, synchronized: bool = False) -> keras.Model:
    """Noise (B, noise_dim) -> images (B, 28, 28, 1) in [-1, 1].

    ``synchronized`` makes BatchNorm use statistics of the whole global batch when training on
    several replicas, so N devices compute exactly what one device would.
    """
    noise = keras.Input(shape=(noise_dim,), name="noise")  # (B, noise_dim)
    x = layers.Dense(7 * 7 * 256, use_bias=False)(noise)  # (B, 12544)
    x = layers.BatchNormalization(synchronized=synchronized)(x)
    x = layers.LeakyReLU()(x)
    x = layers.Reshape((7, 7, 256))(x)  # (B, 7, 7, 256)
    # No bias before BatchNorm: BN's beta already adds one.
    x = layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False)(x)  # (B, 7, 7, 128)
    x = layers.BatchNormalization(synchronized=synchronized)(x)
    x = layers.LeakyReLU()(x)
    x = layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False)(x)  # (B, 14, 14, 64)
    x = layers.BatchNormalization(synchronized=synchronized)(x)
    x = layers.LeakyReLU()(x)
    # tanh matches the [-1, 1] scaling of the real images; float32 even under mixed precision.
    images = layers.Conv2DTranspose(
        1, 5, strides=2, padding="same", use_bias=False, activation="tanh", dtype="float32"
    )(x)
    return keras.Model(noise, images, name="generator")  # (B, 28, 28, 1)


def make_discriminator(seed: int | None = None, dropout: float = 0.3) -> keras.Model:
    """Images (B, 28, 28, 1) -> one real-vs-fake logit per image (B, 1); no sigmoid (losses use logits).

    ``seed`` fixes the dropout masks' random stream, so a run with the same seed is repeatable.
    """
    images = keras.Input(shape=(28, 28, 1), name="images")  # (B, 28, 28, 1)
    x = layers.Conv2D(64, 5, strides=2, padding="same")(images)  # (B, 14, 14, 64)
    x = layers.LeakyReLU()(x)
    x = layers.Dropout(dropout, seed=seed)(x)
    x = layers.Conv2D(128, 5, strides=2, padding="same")(x)  # (B, 7, 7, 128)
    x = layers.LeakyReLU()(x)
    x = layers.Dropout(dropout, seed=None if seed is None else seed + 1)(x)
    x = layers.Flatten()(x)  # (B, 6272)
    logits = layers.Dense(1, dtype="float32")(x)  # (B, 1); float32 logits keep the loss exact
    return keras.Model(images, logits, name="discriminator")


# name -> (generator builder taking noise_dim, synchronized; discriminator builder taking a seed)
MODELS: dict[str, tuple[Callable[..., keras.Model], Callable[..., keras.Model]]] = {
    "dcgan": (make_generator, make_discriminator),
}


def build_models(
    name: str, noise_dim: int, seed: int | None = None, synchronized: bool = False
) -> tuple[keras.Model, keras.Model]:
    """Build the (generator, discriminator) pair registered under ``name``."""
    return build_generator(name, noise_dim, synchronized), _builders(name)[1](seed)


def build_generator(name: str, noise_dim: int, synchronized: bool = False) -> keras.Model:
    """Build only the generator registered under ``name`` (for sampling, or the averaged copy)."""
    return _builders(name)[0](noise_dim, synchronized=synchronized)


def _builders(name: str) -> tuple[Callable[..., keras.Model], Callable[..., keras.Model]]:
    if name not in MODELS:
        raise DcganError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name]


def random_state(model: keras.Model) -> list:
    """The variables holding the model's random streams (dropout seed generators).

    Keras does not put these in ``model.variables`` for ``tf.train.Checkpoint``; saving them is what
    makes a resumed run draw the same dropout masks as an uninterrupted one.
    """
    return [layer.seed_generator.state.value for layer in model.layers if hasattr(layer, "seed_generator")]
