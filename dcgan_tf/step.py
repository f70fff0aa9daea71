"""The training step: one ``tf.function`` that trains one global batch, seeded by the run's batch counter.

One batch, top to bottom (the objective's part is in `losses`, the only other file to read):
1. the learning-rate schedule sets this batch's rates (`schedules`);
2. every replica draws its rows of the step's random numbers (`draws.Draws`) and runs the
   objective's ``replica_step``: generate, judge, compute the losses, update both models;
3. the batch counter advances and the averaged generator follows a generator update;
4. the replicas' metrics are summed into the batch's means.

It works under any ``tf.distribute`` strategy (the default one is a single device): each replica
computes per-example losses on its share of the global batch and divides by the *global* batch size,
so summing over replicas gives the same mean loss as one device would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tensorflow as tf

from dcgan_tf.averaging import WeightAverage
from dcgan_tf.draws import Draws
from dcgan_tf.losses import Batch, Objective
from dcgan_tf.players import Players
from dcgan_tf.schedules import lr_factor, top_k_fraction


@dataclass(frozen=True)
class LearningRates:
    """Both models' base learning rates and the schedule (`schedules`) that scales them over ``total_batches``."""

    generator: float
    discriminator: float
    schedule: str = "constant"
    total_batches: int = 1


@dataclass(frozen=True)
class TopK:
    """``--top-k``: the smallest fraction of generated images the generator learns from, the factor it anneals by
    per epoch, and the batches of an epoch (`schedules.top_k_fraction`)."""

    minimum: float = 1.0
    decay: float | None = None  # only with a minimum below 1
    batches_per_epoch: int = 1


def make_train_step(
    players: Players,
    objective: Objective,
    seed: int,
    batches: tf.Variable,
    *,
    strategy: tf.distribute.Strategy | None = None,
    average: WeightAverage | None = None,
    jit_compile: bool = False,
    learning_rates: LearningRates | None = None,
    augmentations: Sequence[str] = (),
    top_k: TopK | None = None,
    relabel: Callable[[tf.Tensor], tf.Tensor] | None = None,
) -> Callable[..., dict[str, tf.Tensor]]:
    """A compiled step ``(images, labels, update_generator=True) -> metrics`` over one global batch.

    ``images`` (B, 28, 28, 1) and ``labels`` (B,) are the real batch; ``update_generator`` (a Python
    bool, one trace each) says whether the generator is due (every ``--critic-steps`` batches).

    Random draws of step ``t`` are a pure function of ``(seed, t)``, where ``t`` is ``batches``, the run's
    batch counter (int64, saved in checkpoints), which each call advances by one: a resumed run draws the
    same numbers as an uninterrupted one, and every replica takes its own slice of the same global draw.
    The learning rates' schedule (``learning_rates``, none: leave the optimizers' rates alone) and the
    ``augmentations`` the discriminator sees its images through and the ``top_k`` fraction of generated
    images the generator learns from (none: all of them) are functions of the same ``t``. ``relabel`` maps the
    batch's labels to the ones the models are conditioned on (self-conditioning: image indices to clusters).
    """
    strategy = strategy or tf.distribute.get_strategy()
    augmentations = tuple(augmentations)

    def replica_step(images: tf.Tensor, labels: tf.Tensor, update_generator: bool) -> dict[str, tf.Tensor]:
        ctx = tf.distribute.get_replica_context()
        local_batch = tf.shape(images)[0]
        global_batch = local_batch * ctx.num_replicas_in_sync
        # This replica's share of the batch; its per-example losses are averaged over the *global* batch, the
        # generator's over the top-k generated images where --top-k is on.
        fraction = 1.0
        if top_k is not None and top_k.minimum < 1:
            fraction = top_k_fraction(batches.read_value(), top_k.batches_per_epoch, top_k.minimum, top_k.decay)
        if relabel is not None:  # what the pair is conditioned on: the images' clusters (`clusters`)
            labels = relabel(labels)
        batch = Batch(images, labels, global_batch, fraction)
        # This replica's rows of the step's random draws: noise, mixing weights, augmentations.
        draws = Draws(
            seed=seed,
            step=batches.read_value(),
            global_batch=global_batch,
            first=ctx.replica_id_in_sync_group * local_batch,
            local_batch=local_batch,
            augmentations=augmentations,
        )
        # The objective: generate, judge, compute both losses, update both models (`losses`).
        return objective.replica_step(players, batch, draws, update_generator)

    # XLA only when asked (--jit-compile): on CPUs it ran at 0.52-0.71x of the oneDNN kernels (see docs/performance.md).
    # No AutoGraph: every branch in the step is on Python values (schedule, loss, update_generator), and
    # converting the step's functions took most of its tracing time (benchmarks/startup.py).
    @tf.function(jit_compile=jit_compile, autograph=False)
    def train_step(images: tf.Tensor, labels: tf.Tensor, update_generator: bool = True) -> dict[str, tf.Tensor]:
        # 1. This batch's learning rates (a decaying --lr-schedule), from the batch counter.
        if learning_rates is not None and learning_rates.schedule != "constant":
            factor = lr_factor(learning_rates.schedule, batches, learning_rates.total_batches)
            players.generator_optimizer.learning_rate.assign(learning_rates.generator * factor)
            players.discriminator_optimizer.learning_rate.assign(learning_rates.discriminator * factor)
        # 2. Every replica trains its share of the batch.
        per_replica = strategy.run(replica_step, args=(images, labels, update_generator))
        # 3. Whole-model updates, after the replicas read the counter (ops on one variable run in program
        # order): the counter advances; the average follows, on the device in the same call (no round-trip).
        batches.assign_add(1)
        if average is not None and update_generator:
            average.update(players.generator_optimizer.iterations)
        # 4. The batch's metrics: the replicas' shares summed.
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    return train_step
