"""The generators and discriminators: the TensorFlow DCGAN tutorial's and its relatives, as Keras functional models.

`MODELS` is the registry: ``config.model`` names an entry (the card's ``dcgan``, the fully connected
``dense`` GAN, the digit-``conditional`` DCGAN), and `build_models` builds its pair. A conditional
pair takes ``[x, label]`` inputs, with as many labels as the dataset has classes. What a model takes
is answered here and nowhere else: `model_inputs` (what to call it with) and `num_classes_of` (0 for
an unconditional model); `sampling` turns them into the labels a generator is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers

from dcgan_tf.errors import DcganError


def scaled(channels: int, width: float) -> int:
    """A layer's channels (units) at width multiplier ``width`` (``--g-width``, ``--d-width``): 1 is the card's."""
    return max(1, round(channels * width))


def make_generator(noise_dim: int = 100, synchronized: bool = False, width: float = 1.0) -> keras.Model:
    """Noise (B, noise_dim) -> images (B, 28, 28, 1) in [-1, 1]. The shapes below are at ``width`` 1.

    ``synchronized`` makes BatchNorm use statistics of the whole global batch when training on
    several replicas, so N devices compute exactly what one device would.
    """
    c256, c128, c64 = (scaled(c, width) for c in (256, 128, 64))
    noise = keras.Input(shape=(noise_dim,), name="noise")  # (B, noise_dim)
    x = layers.Dense(7 * 7 * c256, use_bias=False)(noise)  # (B, 12544)
    x = layers.BatchNormalization(synchronized=synchronized)(x)
    x = layers.LeakyReLU()(x)
    x = layers.Reshape((7, 7, c256))(x)  # (B, 7, 7, 256)
    # No bias before BatchNorm: BN's beta already adds one.
    x = layers.Conv2DTranspose(c128, 5, strides=1, padding="same", use_bias=False)(x)  # (B, 7, 7, 128)
    x = layers.BatchNormalization(synchronized=synchronized)(x)
    x = layers.LeakyReLU()(x)
    x = layers.Conv2DTranspose(c64, 5, strides=2, padding="same", use_bias=False)(x)  # (B, 14, 14, 64)
    x = layers.BatchNormalization(synchronized=synchronized)(x)
    x = layers.LeakyReLU()(x)
    # tanh matches the [-1, 1] scaling of the real images; float32 even under mixed precision.
    images = layers.Conv2DTranspose(
        1, 5, strides=2, padding="same", use_bias=False, activation="tanh", dtype="float32"
    )(x)
    return keras.Model(noise, images, name="generator")  # (B, 28, 28, 1)


@keras.saving.register_keras_serializable(package="dcgan_tf")
class GlobalBatchDropout(layers.Dropout):
    """Dropout whose masks do not depend on how the batch is split over replicas.

    Keras' Dropout draws each replica's mask from the same seed, so under ``tf.distribute`` every replica
    would drop the same units of its own examples and N devices would not compute what one device does.
    This layer draws the mask of the whole global batch (same seed, same stream as on one device) and
    keeps this replica's rows of it, as the training step does with the noise.
    """

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        ctx = tf.distribute.get_replica_context()
        replicas, replica = (ctx.num_replicas_in_sync, ctx.replica_id_in_sync_group) if ctx else (1, 0)
        local = tf.shape(inputs)[0]
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)  # as Keras casts
        ones = tf.ones(tf.concat([[local * replicas], tf.shape(inputs)[1:]], axis=0), inputs.dtype)
        mask = tf.nn.experimental.stateless_dropout(ones, rate=self.rate, seed=seed)  # 0 or 1 / (1 - rate)
        return inputs * mask[replica * local :][:local]


def normalized(layer: layers.Layer, spectral_norm: bool) -> layers.Layer:
    """``layer``, wrapped in spectral normalization (Miyato et al. 2018) when ``spectral_norm`` is set.

    It keeps each layer's Lipschitz constant near 1, so the discriminator cannot grow sharp enough to
    starve the generator. Keras' wrapper differs from the paper in one way: on every training call it
    *overwrites* the kernel with kernel / sigma (one power iteration; its vector ``vector_u`` is a
    non-trainable weight, so checkpoints hold it), and no gradient flows through sigma. A step that
    calls the discriminator several times (real, fake, a penalty) normalises as often, which changes
    nothing after the first. The wrapper takes the layer's dtype policy: float32 logits stay float32.
    """
    return layers.SpectralNormalization(layer, dtype=layer.dtype_policy) if spectral_norm else layer


def make_discriminator(
    seed: int | None = None, dropout: float = 0.3, spectral_norm: bool = False, width: float = 1.0
) -> keras.Model:
    """Images (B, 28, 28, 1) -> one real-vs-fake logit per image (B, 1); no sigmoid (losses use logits).

    ``seed`` fixes the dropout masks' random stream, so a run with the same seed is repeatable. The shapes
    below are at ``width`` 1.
    """
    images = keras.Input(shape=(28, 28, 1), name="images")  # (B, 28, 28, 1)
    c64, c128 = scaled(64, width), scaled(128, width)
    x = normalized(layers.Conv2D(c64, 5, strides=2, padding="same"), spectral_norm)(images)  # (B, 14, 14, 64)
    x = layers.LeakyReLU()(x)
    x = GlobalBatchDropout(dropout, seed=seed)(x)
    x = normalized(layers.Conv2D(c128, 5, strides=2, padding="same"), spectral_norm)(x)  # (B, 7, 7, 128)
    x = layers.LeakyReLU()(x)
    x = GlobalBatchDropout(dropout, seed=None if seed is None else seed + 1)(x)
    x = layers.Flatten()(x)  # (B, 6272)
    logits = normalized(layers.Dense(1, dtype="float32"), spectral_norm)(x)  # (B, 1); float32 logits: exact loss
    return keras.Model(images, logits, name="discriminator")


def make_dense_generator(noise_dim: int = 100, synchronized: bool = False, width: float = 1.0) -> keras.Model:
    """The classic fully connected GAN generator: noise (B, noise_dim) -> images (B, 28, 28, 1) in [-1, 1]."""
    noise = keras.Input(shape=(noise_dim,), name="noise")  # (B, noise_dim)
    x = noise
    for units in (256, 512, 1024):  # (B, 256) -> (B, 512) -> (B, 1024)
        x = layers.Dense(scaled(units, width), use_bias=False)(x)  # no bias before BatchNorm (its beta is one)
        x = layers.BatchNormalization(synchronized=synchronized)(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(28 * 28, activation="tanh", dtype="float32")(x)  # (B, 784) in [-1, 1]
    images = layers.Reshape((28, 28, 1), dtype="float32")(x)
    return keras.Model(noise, images, name="dense_generator")  # (B, 28, 28, 1)


def make_dense_discriminator(
    seed: int | None = None, dropout: float = 0.3, spectral_norm: bool = False, width: float = 1.0
) -> keras.Model:
    """The classic fully connected discriminator: images (B, 28, 28, 1) -> one logit (B, 1)."""
    images = keras.Input(shape=(28, 28, 1), name="images")  # (B, 28, 28, 1)
    x = layers.Flatten()(images)  # (B, 784)
    for i, units in enumerate((512, 256)):  # (B, 512) -> (B, 256)
        x = normalized(layers.Dense(scaled(units, width)), spectral_norm)(x)
        x = layers.LeakyReLU(0.2)(x)
        x = GlobalBatchDropout(dropout, seed=None if seed is None else seed + i)(x)
    logits = normalized(layers.Dense(1, dtype="float32"), spectral_norm)(x)  # (B, 1)
    return keras.Model(images, logits, name="dense_discriminator")


NUM_CLASSES = 10  # a conditional pair's labels when not told the dataset's count: MNIST's digits 0-9
LABEL_EMBEDDING = 50  # size of the digit-label embedding fed to the conditional generator


def make_concat_generator(
    noise_dim: int = 100, synchronized: bool = False, num_classes: int = NUM_CLASSES, width: float = 1.0
) -> keras.Model:
    """The first conditional generator: [noise (B, noise_dim), label (B,)] -> images (B, 28, 28, 1).

    The label is embedded (as in keras-io's conditional GAN) and concatenated to the noise; the rest
    is the DCGAN generator unchanged. It collapses: the first BatchNorm normalises noise and label
    together, so the more the generator marks the digit the smaller the noise's share becomes, until
    each digit is drawn in one style. `make_conditional_generator` replaced it; kept to load older runs.
    """
    noise = keras.Input(shape=(noise_dim,), name="noise")  # (B, noise_dim)
    label = keras.Input(shape=(), dtype="int32", name="label")  # (B,) digits 0-9
    embedded = layers.Embedding(num_classes, LABEL_EMBEDDING)(label)  # (B, 50)
    x = layers.Concatenate()([noise, embedded])  # (B, noise_dim + 50)
    images = make_generator(noise_dim + LABEL_EMBEDDING, synchronized, width)(x)  # (B, 28, 28, 1)
    return keras.Model([noise, label], images, name="conditional_generator")


def conditional_batch_norm(
    x: keras.KerasTensor, label: keras.KerasTensor, synchronized: bool = False, num_classes: int = NUM_CLASSES
) -> keras.KerasTensor:
    """BatchNorm whose scale and offset are looked up per digit (conditional BatchNorm, de Vries et al. 2017,
    as in Miyato & Koyama 2018's generators): (B, ..., C) features, (B,) labels -> (B, ..., C).

    The label enters *after* the batch statistics, so however strongly the generator comes to mark
    the digit, it cannot shrink the noise's share of the normalised features.
    """
    channels = x.shape[-1]
    x = layers.BatchNormalization(center=False, scale=False, synchronized=synchronized)(x)
    broadcast = (1,) * (len(x.shape) - 2) + (channels,)  # (C,) or (1, 1, C)
    scale = layers.Reshape(broadcast)(layers.Embedding(num_classes, channels, embeddings_initializer="ones")(label))
    offset = layers.Reshape(broadcast)(layers.Embedding(num_classes, channels, embeddings_initializer="zeros")(label))
    return layers.Add()([layers.Multiply()([x, scale]), offset])


def make_conditional_generator(
    noise_dim: int = 100, synchronized: bool = False, num_classes: int = NUM_CLASSES, width: float = 1.0
) -> keras.Model:
    """The card's generator conditioned on a digit: [noise (B, noise_dim), label (B,)] -> images (B, 28, 28, 1).

    The card's layers on the noise alone, with each BatchNorm's scale and offset chosen by the digit
    (`conditional_batch_norm`): the label shapes the features after they are normalised, so it never
    crowds the noise out.
    """
    noise = keras.Input(shape=(noise_dim,), name="noise")  # (B, noise_dim)
    label = keras.Input(shape=(), dtype="int32", name="label")  # (B,) digits 0-9
    c256, c128, c64 = (scaled(c, width) for c in (256, 128, 64))  # the shapes below are at width 1
    x = layers.Dense(7 * 7 * c256, use_bias=False)(noise)  # (B, 12544)
    x = layers.LeakyReLU()(conditional_batch_norm(x, label, synchronized, num_classes))
    x = layers.Reshape((7, 7, c256))(x)  # (B, 7, 7, 256)
    x = layers.Conv2DTranspose(c128, 5, strides=1, padding="same", use_bias=False)(x)  # (B, 7, 7, 128)
    x = layers.LeakyReLU()(conditional_batch_norm(x, label, synchronized, num_classes))
    x = layers.Conv2DTranspose(c64, 5, strides=2, padding="same", use_bias=False)(x)  # (B, 14, 14, 64)
    x = layers.LeakyReLU()(conditional_batch_norm(x, label, synchronized, num_classes))
    images = layers.Conv2DTranspose(
        1, 5, strides=2, padding="same", use_bias=False, activation="tanh", dtype="float32"
    )(x)  # (B, 28, 28, 1)
    return keras.Model([noise, label], images, name="conditional_generator")


def make_conditional_discriminator(
    seed: int | None = None,
    dropout: float = 0.3,
    spectral_norm: bool = False,
    num_classes: int = NUM_CLASSES,
    width: float = 1.0,
) -> keras.Model:
    """The card's discriminator with a projection term (Miyato & Koyama 2018): [images, label] -> logit (B, 1).

    logit = w . phi(x) + b + embed(y) . phi(x), where phi(x) are the card's convolutional features:
    the label enters as an inner product with the features instead of as extra input channels.
    """
    body = make_discriminator(seed, dropout, spectral_norm, width)
    features_model = keras.Model(body.input, body.layers[-2].output, name="features")  # (B, 6272)
    images = keras.Input(shape=(28, 28, 1), name="images")  # (B, 28, 28, 1)
    label = keras.Input(shape=(), dtype="int32", name="label")  # (B,)
    features = features_model(images)  # (B, 6272)
    unconditional = body.layers[-1](features)  # (B, 1): the card's Dense(1)
    embedded = layers.Embedding(num_classes, features.shape[-1])(label)  # (B, 6272)
    projection = layers.Dot(axes=1, dtype="float32")([embedded, features])  # (B, 1)
    logits = layers.Add(dtype="float32")([unconditional, projection])  # (B, 1)
    return keras.Model([images, label], logits, name="conditional_discriminator")


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: how to build the pair, and whether both models also take a class label."""

    # Both take width=.. (`scaled`), and num_classes=.. where conditional.
    make_generator: Callable[..., keras.Model]  # (noise_dim, synchronized=..) -> generator
    make_discriminator: Callable[..., keras.Model]  # (seed, spectral_norm=..) -> discriminator
    conditional: bool = False  # its builders then take num_classes: the labels' range
    # Conditioned on clusters of the discriminator's features (`clusters`), not on the dataset's labels.
    self_conditioned: bool = False
    # The entry whose generator earlier versions built under this name: their checkpoints hold that one.
    formerly: str | None = None

    def generator(
        self, noise_dim: int, synchronized: bool = False, num_classes: int = NUM_CLASSES, width: float = 1.0
    ) -> keras.Model:
        return self.make_generator(noise_dim, synchronized=synchronized, width=width, **self._labels(num_classes))

    def discriminator(
        self, seed: int | None = None, spectral_norm: bool = False, num_classes: int = NUM_CLASSES, width: float = 1.0
    ) -> keras.Model:
        return self.make_discriminator(seed, spectral_norm=spectral_norm, width=width, **self._labels(num_classes))

    @property
    def needs_labels(self) -> bool:
        """Whether training reads the dataset's labels."""
        return self.conditional and not self.self_conditioned

    def _labels(self, num_classes: int) -> dict[str, int]:
        return {"num_classes": num_classes} if self.conditional else {}


MODELS: dict[str, ModelSpec] = {
    "dcgan": ModelSpec(make_generator, make_discriminator),
    "dense": ModelSpec(make_dense_generator, make_dense_discriminator),
    "conditional": ModelSpec(
        make_conditional_generator, make_conditional_discriminator, conditional=True, formerly="conditional-concat"
    ),
    "conditional-concat": ModelSpec(make_concat_generator, make_conditional_discriminator, conditional=True),
    "self-conditioned": ModelSpec(
        make_conditional_generator, make_conditional_discriminator, conditional=True, self_conditioned=True
    ),
}


def build_models(
    name: str,
    noise_dim: int,
    seed: int | None = None,
    synchronized: bool = False,
    spectral_norm: bool = False,
    num_classes: int = NUM_CLASSES,
    widths: tuple[float, float] = (1.0, 1.0),
) -> tuple[keras.Model, keras.Model]:
    """Build the (generator, discriminator) pair registered under ``name``; a conditional pair takes labels
    0 to ``num_classes - 1`` (the dataset's classes); ``widths`` multiply each model's channels."""
    # The generator first: the seed's draws go in order.
    generator = build_generator(name, noise_dim, synchronized, num_classes, widths[0])
    return generator, model_spec(name).discriminator(seed, spectral_norm, num_classes, widths[1])


def build_generator(
    name: str, noise_dim: int, synchronized: bool = False, num_classes: int = NUM_CLASSES, width: float = 1.0
) -> keras.Model:
    """Build only the generator registered under ``name`` (for sampling, or the averaged copy)."""
    return model_spec(name).generator(noise_dim, synchronized, num_classes, width)


def model_spec(name: str) -> ModelSpec:
    """The registry entry called ``name``."""
    if name not in MODELS:
        raise DcganError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name]


def is_conditional(model: keras.Model) -> bool:
    """Whether a generator or discriminator takes a class label as its second input."""
    return len(model.inputs) == 2


def num_classes_of(model: keras.Model) -> int:
    """How many classes a conditional model's labels range over (its label embeddings' size); 0 if unconditional."""
    if not is_conditional(model):
        return 0
    return next(layer.input_dim for layer in _all_layers(model) if isinstance(layer, layers.Embedding))


def model_inputs(model: keras.Model, x, labels):
    """What to call ``model`` with: ``[x, labels]`` for a conditional model, else ``x`` alone."""
    return [x, labels] if is_conditional(model) else x


def random_state(model: keras.Model) -> list:
    """The variables holding the model's random streams (dropout seed generators).

    Keras does not put these in ``model.variables`` for ``tf.train.Checkpoint``; saving them is what
    makes a resumed run draw the same dropout masks as an uninterrupted one.
    """
    return [layer.seed_generator.state.value for layer in _all_layers(model) if hasattr(layer, "seed_generator")]


def _all_layers(model: keras.Model):
    # Nested models (the conditional pair wraps the card's models) hold their own layers.
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
