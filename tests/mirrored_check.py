"""Run in a fresh process by test_distribute.py: the CPU must be split into two logical devices
before TensorFlow initialises, which a pytest process that already used TensorFlow cannot do.

Prints one JSON line: the largest weight difference between a single-device step and a mirrored
step over two replicas on the same global batch, and the replica count.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from dcgan_tf.averaging import WeightAverage  # noqa: E402
from dcgan_tf.config import TrainConfig  # noqa: E402
from dcgan_tf.distribute import make_strategy  # noqa: E402
from dcgan_tf.losses import get_loss  # noqa: E402
from dcgan_tf.models import make_discriminator, make_generator  # noqa: E402
from dcgan_tf.players import Players  # noqa: E402
from dcgan_tf.step import make_train_step  # noqa: E402
from dcgan_tf.training import fit  # noqa: E402


def one_step(strategy: tf.distribute.Strategy, images: np.ndarray, loss: str, weights=None):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        # Dropout on: each replica keeps its rows of the global batch's mask. BatchNorm synchronised:
        # both replicas then normalise with the statistics of the whole global batch.
        generator = make_generator(16, synchronized=True)
        discriminator = make_discriminator(seed=0)
        if weights:
            generator.set_weights(weights[0])
            discriminator.set_weights(weights[1])
        optimizers = [keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)]
        for optimizer, model in zip(optimizers, (generator, discriminator)):
            optimizer.build(model.trainable_variables)
        averaged = make_generator(16, synchronized=True)  # the averaged generator, updated after the step
        average = WeightAverage(generator, averaged, decay=0.99)
        average.reset()
    start = (generator.get_weights(), discriminator.get_weights())
    batches = tf.Variable(0, dtype=tf.int64)
    step = make_train_step(
        Players(generator, discriminator, *optimizers), get_loss(loss), 0, batches, strategy=strategy, average=average
    )
    dataset = tf.data.Dataset.from_tensors((images, np.zeros(len(images), np.int32)))
    if strategy.num_replicas_in_sync > 1:
        dataset = strategy.experimental_distribute_dataset(dataset)
    outputs = step(*next(iter(dataset)))
    weights_after = generator.get_weights() + discriminator.get_weights() + averaged.get_weights()
    return start, weights_after, {k: float(v) for k, v in outputs.items()}


def compare_step() -> dict:
    images = np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)
    mirrored = make_strategy("mirrored")
    report = {"replicas": mirrored.num_replicas_in_sync}
    for loss in ("bce", "wgan-gp"):  # both objectives, the averaged generator's weights included
        start, single_weights, single_out = one_step(tf.distribute.get_strategy(), images, loss)
        _, mirrored_weights, mirrored_out = one_step(mirrored, images, loss, weights=start)
        diffs = [np.abs(a - b) for a, b in zip(single_weights, mirrored_weights)]
        report[f"{loss}_weight_diff"] = max(float(d.max()) for d in diffs)
        report[f"{loss}_differing_share"] = sum(int((d > 1e-5).sum()) for d in diffs) / sum(d.size for d in diffs)
        report[f"{loss}_loss_diff"] = max(abs(single_out[k] - mirrored_out[k]) for k in single_out)
    return report


def resume_mirrored(run: str, data: str) -> dict:
    """A checkpoint written by a single-device run resumes under the mirrored strategy."""
    flags = dict(data=data, train_size=64, batch_size=32, checkpoint_every=1, checkpoint_dir=run)
    fit(TrainConfig(epochs=1, **flags))
    history = fit(TrainConfig(epochs=2, strategy="mirrored", **flags))
    return {"epochs": [row["epoch"] for row in history]}


if __name__ == "__main__":
    # One check per process: two MirroredStrategy objects in one process share collective keys.
    report = compare_step() if sys.argv[1] == "step" else resume_mirrored(*sys.argv[2:])
    print(json.dumps(report))
