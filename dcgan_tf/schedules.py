"""Learning-rate schedules (``--lr-schedule``): the factor each step's learning rates are multiplied by.

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
