"""The training step: one ``tf.function`` that draws noise, runs both models and updates them.

What a step computes is the objective's (`losses`); this module compiles it, seeds its random
draws, runs it on every replica and applies the whole-model updates after it. It works under any
``tf.distribute`` strategy (the default one is a single device): each replica computes per-example
losses on its share of the global batch and divides by the *global* batch size, so summing over
replicas gives the same mean loss as one device would.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tensorflow as tf

from dcgan_tf.augment import UNIFORMS, augment
from dcgan_tf.averaging import WeightAverage
from dcgan_tf.errors import DcganError
from dcgan_tf.losses import Draws, Objective, Players
from dcgan_tf.schedules import lr_factor


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
        check_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise DcganError(f"unknown strategy {name!r}: choose default, mirrored or multiworker")


def check_tf_config(text: str | None) -> None:
    """Raise `DcganError` unless ``text`` is a usable ``TF_CONFIG``: JSON with a ``cluster`` of
    ``host:port`` lists and a ``task`` whose type is in the cluster and whose index is in range."""
    fix = (
        'set it as in docs/several-devices.md, e.g. {"cluster": {"worker": ["host0:port", "host1:port"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    if not text:
        raise DcganError(f"--strategy multiworker needs the TF_CONFIG environment variable: {fix}")
    try:
        tf_config = json.loads(text)
    except ValueError as err:
        raise DcganError(f"TF_CONFIG is not valid JSON ({err}): {fix}") from None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise DcganError(f'TF_CONFIG has no "cluster" object: {fix}')
    for job, addresses in cluster.items():
        if (
            not isinstance(addresses, list)
            or not addresses
            or not all(isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses)
        ):
            raise DcganError(f'TF_CONFIG\'s cluster job {job!r} must be a list of "host:port" strings: {fix}')
    task = tf_config.get("task")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise DcganError(f'TF_CONFIG\'s "task" must name a "type" among {", ".join(cluster)}: {fix}')
    index, size = task.get("index"), len(cluster[task["type"]])
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < size:
        raise DcganError(
            f"TF_CONFIG's task index {index!r} is not one of the {size} {task['type']} task(s) (0-{size - 1}): {fix}"
        )


def check_replica_split(batch_size: int, replicas: int) -> None:
    """Raise `DcganError` unless the global batch splits evenly over ``replicas``: an uneven split would
    scale the losses wrongly and give two replicas overlapping noise."""
    if batch_size % replicas:
        lower, upper = batch_size // replicas * replicas, -(-batch_size // replicas) * replicas
        nearest = " or ".join(str(size) for size in (lower, upper) if size > 0)
        raise DcganError(
            f"--batch-size {batch_size} does not split evenly over {replicas} replicas: use a multiple of "
            f"{replicas}, e.g. --batch-size {nearest}"
        )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files (always, except on non-chief multi-worker tasks)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


@dataclass(frozen=True)
class LearningRates:
    """Both models' base learning rates and the schedule (`schedules`) that scales them over ``total_batches``."""

    generator: float
    discriminator: float
    schedule: str = "constant"
    total_batches: int = 1


def make_train_step(
    players: Players,
    objective: Objective,
    seed: int,
    batches: tf.Variable,
    strategy: tf.distribute.Strategy | None = None,
    average: WeightAverage | None = None,
    jit_compile: bool = False,
    learning_rates: LearningRates | None = None,
    augmentations: Sequence[str] = (),
) -> Callable[..., dict[str, tf.Tensor]]:
    """A compiled step ``(images, labels, update_generator=True) -> metrics`` over one global batch.

    ``images`` (B, 28, 28, 1) and ``labels`` (B,) are the real batch; ``update_generator`` (a Python
    bool, one trace each) says whether the generator is due (every ``--critic-steps`` batches).
    The step has two parts: the objective's ``replica_step`` (what each replica computes and
    applies) and, once the replicas are done, the updates that work on the whole model (``average``,
    the averaged generator, follows every generator update).

    Random draws of step ``t`` are a pure function of ``(seed, t)``, where ``t`` is ``batches``, the run's
    batch counter (int64, saved in checkpoints), which each call advances by one: a resumed run draws the
    same numbers as an uninterrupted one, and every replica takes its own slice of the same global draw.
    The learning rates' schedule (``learning_rates``, none: leave the optimizers' rates alone) and the
    ``augmentations`` the discriminator sees its images through are functions of the same ``t``.
    """
    strategy = strategy or tf.distribute.get_strategy()

    def replica_step(images: tf.Tensor, labels: tf.Tensor, update_generator: bool) -> dict[str, tf.Tensor]:
        ctx = tf.distribute.get_replica_context()
        local_batch = tf.shape(images)[0]
        global_batch = local_batch * ctx.num_replicas_in_sync
        step = batches.read_value()
        first = ctx.replica_id_in_sync_group * local_batch

        def stream_seed(stream: int) -> tf.Tensor:
            # Stream 0 is seeded by (seed, t), streams 1-4 by (seed, -(4t + stream)): never the same pair
            # (a fifth would repeat stream 1 of the next step, hence the check).
            if not 0 <= stream <= 4:
                raise ValueError(f"random stream {stream} out of 0-4")
            second = step if stream == 0 else -(4 * step + stream)
            return tf.stack([tf.constant(seed, tf.int64), second])

        # An explicit algorithm, so the same seed gives the same numbers on any device.
        def uniforms(stream: int, shape: list) -> tf.Tensor:  # this replica's rows of the global draw
            return tf.random.stateless_uniform([global_batch, *shape], seed=stream_seed(stream), alg="philox")[first:][
                :local_batch
            ]

        draws = Draws(
            normal=lambda stream, dim: tf.random.stateless_normal(
                [global_batch, dim], seed=stream_seed(stream), alg="philox"
            )[first:][:local_batch],
            uniform=lambda stream: uniforms(stream, []),
        )
        if augmentations:
            draws = dataclasses.replace(
                draws, augment=lambda images, stream: augment(images, uniforms(stream, [UNIFORMS]), augmentations)
            )

        def average_loss(per_example: tf.Tensor) -> tf.Tensor:
            return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)

        return objective.replica_step(players, images, labels, draws, update_generator, average_loss)

    # XLA only when asked (--jit-compile): on CPUs it ran at 0.52-0.71x of the oneDNN kernels (see docs/performance.md).
    @tf.function(jit_compile=jit_compile)
    def train_step(images: tf.Tensor, labels: tf.Tensor, update_generator: bool = True) -> dict[str, tf.Tensor]:
        if learning_rates is not None and learning_rates.schedule != "constant":  # this batch's rates
            factor = lr_factor(learning_rates.schedule, batches, learning_rates.total_batches)
            players.generator_optimizer.learning_rate.assign(learning_rates.generator * factor)
            players.discriminator_optimizer.learning_rate.assign(learning_rates.discriminator * factor)
        per_replica = strategy.run(replica_step, args=(images, labels, update_generator))
        batches.assign_add(1)  # after the replicas read it (ops on one variable run in program order)
        if average is not None and update_generator:  # on the device, in the same call: no round-trip
            average.update(players.generator_optimizer.iterations)
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    return train_step
