"""Several devices: the ``tf.distribute`` strategy of ``--strategy``, its ``TF_CONFIG`` checked, how the
global batch splits over replicas, and which task writes the run's files.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from dcgan_tf.errors import DcganError


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
    """Whether this process writes the run's files (always, except on non-chief multi-worker tasks).

    As TensorFlow defines the chief: the task of a ``chief`` job where the cluster has one, else worker 0.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if "chief" in resolver.cluster_spec().jobs:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0
