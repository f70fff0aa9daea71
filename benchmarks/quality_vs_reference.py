"""Sample quality of the tutorial's training recipe after E epochs, to compare with this project's.

    TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/quality_vs_reference.py --data PATH --epochs 6 [--evaluator-dir DIR]
    python -m dcgan_tf.train --data PATH --epochs 6 --checkpoint-every 3 --checkpoint-dir RUN
    python -m dcgan_tf.evaluate --checkpoint-dir RUN --evaluator-dir DIR

The reference is the tutorial's loop (two tapes, ``@tf.function`` without XLA, ``tf.random.normal``
noise, ``shuffle(60000).batch(256)`` with the last partial batch, TensorFlow's default kernels) over
the same generator and discriminator. Its generator is scored on 10,000 samples with the project's
evaluator, exactly as ``python -m dcgan_tf.evaluate`` scores a checkpoint, and printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import tensorflow as tf

from dcgan_tf.data import load_mnist, to_model_range
from dcgan_tf.evaluation import Reference, evaluate_generator
from dcgan_tf.evaluator import load_or_train_evaluator
from dcgan_tf.models import make_discriminator, make_generator

BATCH_SIZE, NOISE_DIM = 256, 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="MNIST .npz or IDX folder")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--evaluator-dir", default=None, help="evaluator cache (default ~/.cache/dcgan_tf)")
    args = parser.parse_args()

    mnist = load_mnist(args.data)
    dataset = tf.data.Dataset.from_tensor_slices(to_model_range(mnist.x_train)).shuffle(60000).batch(BATCH_SIZE)
    keras.utils.set_random_seed(0)
    generator, discriminator = make_generator(NOISE_DIM), make_discriminator(seed=0)
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    g_opt, d_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([tf.shape(images)[0], NOISE_DIM])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(noise, training=True)
            real_out, fake_out = discriminator(images, training=True), discriminator(fake, training=True)
            g_loss = cross_entropy(tf.ones_like(fake_out), fake_out)
            d_loss = cross_entropy(tf.ones_like(real_out), real_out) + cross_entropy(tf.zeros_like(fake_out), fake_out)
        g_opt.apply_gradients(
            zip(g_tape.gradient(g_loss, generator.trainable_variables), generator.trainable_variables)
        )
        d_opt.apply_gradients(
            zip(d_tape.gradient(d_loss, discriminator.trainable_variables), discriminator.trainable_variables)
        )
        return g_loss, d_loss

    for epoch in range(args.epochs):
        start = time.perf_counter()
        for batch in dataset:
            g_loss, d_loss = train_step(batch)
        seconds = time.perf_counter() - start
        print(f"reference epoch {epoch + 1}: g {float(g_loss):.3f} d {float(d_loss):.3f} {seconds:.0f}s")

    reference = Reference(load_or_train_evaluator(mnist, args.evaluator_dir), mnist)
    scores = evaluate_generator(generator, reference, num_samples=10_000)
    print(json.dumps({"epochs": args.epochs, **scores.columns()}))


if __name__ == "__main__":
    main()
