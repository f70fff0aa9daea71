"""The TensorFlow DCGAN tutorial's own code, as its notebook writes it, to make the checkpoints its users have.

The models are `Sequential` with ``input_shape``, the optimizers ``Adam(1e-4)``, and the checkpoint the
notebook's ``tf.train.Checkpoint(generator_optimizer=..., discriminator_optimizer=..., generator=...,
discriminator=...)`` saved with ``checkpoint.save(file_prefix=os.path.join(checkpoint_dir, "ckpt"))``.

`write_tutorial_run` trains it a few steps on real digits with the tutorial's ``train_step`` and saves
twice (``ckpt-1``, ``ckpt-2``), and records beside the folder (never in it) what the tests compare with:
each checkpoint's generator outputs on fixed noise (``generator(noise, training=False)``) and the
optimizers' iteration counts and Adam moments, in the order of the models' trainable variables.

With ``keras`` (Keras 3) it runs in the test's process; ``tf_keras`` (Keras 2, a dev dependency) writes
the other layout and is run as ``python tests/tutorial_model.py tf_keras FOLDER EXPECTED.npz`` in a
subprocess, so its registrations never meet Keras 3's.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

NOISE_DIM = 100
BATCH_SIZE = 16  # a handful of digits per step (the tutorial's is 256)
STEPS_PER_SAVE = (1, 2)  # ckpt-1 after one step, ckpt-2 after two more
EXPECTED_NOISE = 6  # noise vectors the generators' outputs are recorded for


def tutorial_models(keras):
    """``make_generator_model()`` and ``make_discriminator_model()``, as the tutorial writes them."""
    layers = keras.layers

    def make_generator_model():
        model = keras.Sequential()
        model.add(layers.Dense(7 * 7 * 256, use_bias=False, input_shape=(NOISE_DIM,)))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())

        model.add(layers.Reshape((7, 7, 256)))
        model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())

        model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())

        model.add(layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"))
        return model

    def make_discriminator_model():
        model = keras.Sequential()
        model.add(layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same", input_shape=[28, 28, 1]))
        model.add(layers.LeakyReLU())
        model.add(layers.Dropout(0.3))

        model.add(layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"))
        model.add(layers.LeakyReLU())
        model.add(layers.Dropout(0.3))

        model.add(layers.Flatten())
        model.add(layers.Dense(1))
        return model

    with warnings.catch_warnings():  # Keras 3 advises keras.Input over input_shape, which the tutorial passes
        warnings.filterwarnings("ignore", "Do not pass an `input_shape`", UserWarning)
        return make_generator_model(), make_discriminator_model()


def write_tutorial_run(keras, digits: np.ndarray, checkpoint_dir: str, expected_path: str) -> dict[str, np.ndarray]:
    """Train the tutorial's models on ``digits`` (uint8 (N, 28, 28)) with its own ``train_step``, saving
    ``ckpt-1`` and ``ckpt-2`` into ``checkpoint_dir``; write and return what the tests compare with."""
    import tensorflow as tf

    tf.random.set_seed(0)
    generator, discriminator = tutorial_models(keras)
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    generator_optimizer = keras.optimizers.Adam(1e-4)
    discriminator_optimizer = keras.optimizers.Adam(1e-4)
    checkpoint = tf.train.Checkpoint(
        generator_optimizer=generator_optimizer,
        discriminator_optimizer=discriminator_optimizer,
        generator=generator,
        discriminator=discriminator,
    )

    # The notebook compiles this with @tf.function; run eagerly it does the same maths, without a tracing that
    # would take longer than the three steps.
    def train_step(images):
        noise = tf.random.normal([BATCH_SIZE, NOISE_DIM])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = cross_entropy(tf.ones_like(real_output), real_output) + cross_entropy(
                tf.zeros_like(fake_output), fake_output
            )
        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))

    # The notebook's scaling: (x - 127.5) / 127.5, one channel.
    images = (digits.reshape(-1, 28, 28, 1).astype("float32") - 127.5) / 127.5
    noise = np.random.default_rng(0).standard_normal((EXPECTED_NOISE, NOISE_DIM)).astype("float32")
    expected = {"noise": noise}
    step = 0
    for number, steps in enumerate(STEPS_PER_SAVE, start=1):
        for _ in range(steps):
            train_step(tf.constant(images[(step * BATCH_SIZE) % len(images) :][:BATCH_SIZE]))
            step += 1
        checkpoint.save(file_prefix=os.path.join(checkpoint_dir, "ckpt"))
        expected[f"ckpt-{number}"] = np.asarray(generator(noise, training=False))
    for name, optimizer, model in (
        ("generator", generator_optimizer, generator),
        ("discriminator", discriminator_optimizer, discriminator),
    ):
        expected[f"{name}_iterations"] = np.asarray(int(optimizer.iterations.numpy()))
        count = len(model.trainable_variables)
        for i in range(count):
            expected[f"{name}_m{i}"] = optimizer._momentums[i].numpy()
            expected[f"{name}_v{i}"] = optimizer._velocities[i].numpy()
        expected[f"{name}_count"] = np.asarray(count)
    np.savez(expected_path, **expected)
    return expected


def main(argv: list[str]) -> None:
    """``python tests/tutorial_model.py {keras,tf_keras} FOLDER EXPECTED.npz DIGITS.npz``."""
    which, folder, expected_path, digits_path = argv
    if which == "tf_keras":
        import tf_keras as keras
    else:
        import keras
    with np.load(digits_path) as digits:
        write_tutorial_run(keras, digits["x_train"], folder, expected_path)


if __name__ == "__main__":
    main(sys.argv[1:])
