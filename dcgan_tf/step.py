"""The training step: one ``tf.function`` that draws noise, runs both models and updates both.

It works under any ``tf.distribute`` strategy (the default one is a single device): each replica
computes per-example losses on its share of the global batch and divides by the *global* batch
size, so summing over replicas gives the same mean loss as one device would.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from dcgan_tf.averaging import WeightAverage
from dcgan_tf.errors import DcganError
from dcgan_tf.losses import GanLoss


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy called ``name`` (see ``--strategy``).

    ``mirrored`` replicates over every local GPU, or over the logical CPU devices when there is no
    GPU (one, unless the CPU was split with ``tf.config.set_logical_device_configuration``).
    ``multiworker`` reads the cluster from the ``TF_CONFIG`` environment variable.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise DcganError(f"unknown strategy {name!r}: choose default, mirrored or multiworker")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files (always, except on non-chief multi-worker tasks)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


def make_train_step(
    generator: keras.Model,
    discriminator: keras.Model,
    generator_optimizer: keras.optimizers.Optimizer,
    discriminator_optimizer: keras.optimizers.Optimizer,
    loss: GanLoss,
    noise_dim: int,
    seed: int,
    strategy: tf.distribute.Strategy | None = None,
    average: WeightAverage | None = None,
) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """A compiled step: a global batch of real images (B, 28, 28, 1) -> mean losses and D outputs.

    The step has two parts: ``replica_step`` (what each replica computes and applies) and, once the
    replicas are done, the updates that work on the whole model (``average``: the averaged generator).

    The noise of step ``t`` is a pure function of ``(seed, t)`` (``t`` is the generator optimizer's
    iteration counter, which checkpoints save), so a resumed run draws the same noise as an
    uninterrupted one, and every replica takes its own slice of the same global noise batch.
    """
    strategy = strategy or tf.distribute.get_strategy()

    def replica_step(images: tf.Tensor) -> dict[str, tf.Tensor]:
        ctx = tf.distribute.get_replica_context()
        local_batch = tf.shape(images)[0]
        global_batch = local_batch * ctx.num_replicas_in_sync
        step = tf.cast(generator_optimizer.iterations, tf.int64)
        # An explicit algorithm, so the same seed gives the same noise on any device.
        noise = tf.random.stateless_normal(
            [global_batch, noise_dim], seed=tf.stack([tf.constant(seed, tf.int64), step]), alg="philox"
        )
        noise = noise[ctx.replica_id_in_sync_group * local_batch :][:local_batch]  # (b, noise_dim)

        # Two tapes, one per model: each loss is differentiated only w.r.t. its own model.
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(noise, training=True)  # (b, 28, 28, 1)
            real_logits = discriminator(images, training=True)  # (b, 1)
            fake_logits = discriminator(fake, training=True)  # (b, 1)
            g_loss = tf.nn.compute_average_loss(loss.generator(fake_logits), global_batch_size=global_batch)
            d_loss = tf.nn.compute_average_loss(
                loss.discriminator(real_logits, fake_logits), global_batch_size=global_batch
            )
            # The identity except under mixed precision (LossScaleOptimizer), whose apply_gradients
            # unscales the gradients again. Inside the tapes, so the scaling is differentiated.
            g_scaled = generator_optimizer.scale_loss(g_loss)
            d_scaled = discriminator_optimizer.scale_loss(d_loss)

        g_grads = g_tape.gradient(g_scaled, generator.trainable_variables)
        d_grads = d_tape.gradient(d_scaled, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))

        # Mean D(x) and D(G(z)) show who is winning; like the losses they are pre-divided so the
        # sum over replicas is the global mean.
        scale = tf.cast(global_batch, tf.float32)
        return {
            "g_loss": g_loss,
            "d_loss": d_loss,
            "d_real": tf.reduce_sum(tf.sigmoid(real_logits)) / scale,
            "d_fake": tf.reduce_sum(tf.sigmoid(fake_logits)) / scale,
        }

    # No XLA (jit_compile=True): on this CPU it ran at 0.71x of the oneDNN kernels (see README).
    @tf.function
    def train_step(images: tf.Tensor) -> dict[str, tf.Tensor]:
        per_replica = strategy.run(replica_step, args=(images,))
        if average is not None:  # on the device, in the same call: no round-trip through Python
            average.update(generator_optimizer.iterations)
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    return train_step
