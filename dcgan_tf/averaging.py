"""The averaged generator: an exponential moving average (EMA) of the generator's weights.

GAN weights oscillate around a good solution rather than settle on it, so one epoch's generator can
be much worse than the one before. Averaging the weights over the last few hundred steps smooths the
oscillation out (Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training";
StyleGAN's G_ema). The average is a second generator of the same architecture; it is never trained
directly, only updated after each step by `WeightAverage.update`, inside the compiled step.

BatchNorm's moving mean and variance are *copied* from the raw generator, as StyleGAN does with its
buffers, rather than averaged or re-estimated: Keras keeps them as a moving average with momentum
0.99 already (a ~100-step window, the same window as the default decay 0.99), and copying costs
nothing, where re-estimating would need extra forward passes before every use.
"""

from __future__ import annotations

import keras
import tensorflow as tf

DEFAULT_DECAY = 0.99


def decay_at(decay: float, step: tf.Tensor) -> tf.Tensor:
    """The decay used after step ``step``: ``min(decay, (1 + step) / (10 + step))``.

    The warm-up keeps early averages close to the current weights: with a fixed decay of 0.999 the
    average would stay near the random initial weights (noise images) for thousands of steps.
    """
    step = tf.cast(step, tf.float32)
    return tf.minimum(tf.constant(decay, tf.float32), (1.0 + step) / (10.0 + step))


HALF_LIFE_RAMP = 0.05  # StyleGAN2-ADA's ema_rampup: the window is at most 5% of the images trained so far


def half_life_decay(half_life: float, images_per_step: int, step: tf.Tensor) -> tf.Tensor:
    """The decay after generator step ``step`` for a window with a half-life of ``half_life`` images.

    StyleGAN2-ADA's rule: ``0.5 ** (images per step / min(half_life, 5% of the images so far))``, so the
    window grows with the run (early averages stay close to the current weights) up to its half-life.
    """
    seen = tf.cast(step, tf.float32) * float(images_per_step)
    window = tf.maximum(tf.minimum(float(half_life), seen * HALF_LIFE_RAMP), 1e-8)
    return tf.pow(0.5, float(images_per_step) / window)


class WeightAverage:
    """Keeps ``average``'s weights an EMA of ``source``'s (trainable ones) or a copy (BatchNorm statistics)."""

    def __init__(
        self, source: keras.Model, average: keras.Model, decay: float, half_life: float = 0.0, images_per_step: int = 1
    ) -> None:
        """``half_life`` > 0 (images, with ``images_per_step`` per update) replaces the fixed ``decay``."""
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.half_life, self.images_per_step = half_life, images_per_step
        self.averaged = list(zip(source.trainable_variables, average.trainable_variables))
        self.copied = list(zip(source.non_trainable_variables, average.non_trainable_variables))

    def reset(self) -> None:
        """Make the average equal to the source (at the start of a run, or for a checkpoint without one)."""
        for source, target in self.averaged + self.copied:
            target.assign(source)

    def update(self, step: tf.Tensor) -> None:
        """Move the average towards the source's current weights (call after the optimizer step ``step``)."""
        if self.half_life > 0:
            decay = half_life_decay(self.half_life, self.images_per_step, step)
        else:
            decay = decay_at(self.decay, step)
        for source, target in self.averaged:
            # In this form decay 0 gives exactly the source (target + (source - target) may round).
            target.assign(decay * target + (1.0 - decay) * source)
        for source, target in self.copied:
            target.assign(source)
