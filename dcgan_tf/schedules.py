"""Schedules over a run: the learning rates' factor (``--lr-schedule``) and the top-k fraction (``--top-k``).

A schedule is a function of the run's progress ``p = batches / total batches`` (0 at the start, 1 at
``--epochs``), evaluated inside the compiled step from the checkpointed batch counter, so a resumed
run follows the same curve as an uninterrupted one. Decaying both rates to zero by the end lets the
last epochs settle the weights instead of oscillating around a solution (docs/recipes.md measures
what it buys, and what it costs when the run is too short for it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

SCHEDULES: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "constant": lambda p: tf.ones_like(p),
    "linear": lambda p: 1.0 - p,
    "cosine": lambda p: 0.5 * (1.0 + tf.cos(math.pi * p)),
}


def lr_factor(schedule: str, batches: tf.Tensor, total_batches: int) -> tf.Tensor:
    """The factor (float32 scalar) of the learning rates for the batch after ``batches`` batches."""
    progress = tf.minimum(tf.cast(batches, tf.float32) / float(total_batches), 1.0)
    return SCHEDULES[schedule](progress)


def top_k_fraction(batches: tf.Tensor, batches_per_epoch: int, minimum: float, decay: float) -> tf.Tensor:
    """The fraction (float32 scalar) of the batch's generated images the generator learns from (``--top-k``):
    ``max(minimum, decay ** epochs trained)``, so the whole batch in the first epoch, then less after each
    epoch (Sinha et al. 2020's annealing), never below ``minimum``. A function of the checkpointed batch
    counter, so a resumed run anneals as an uninterrupted one."""
    epochs = tf.cast(tf.math.floordiv(tf.cast(batches, tf.int64), batches_per_epoch), tf.float32)
    return tf.maximum(tf.constant(minimum, tf.float32), tf.pow(tf.constant(decay, tf.float32), epochs))
