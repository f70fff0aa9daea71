"""The two players of a GAN as one step sees them: both models, their optimizers, and the update.

`Players.apply` is the only place a gradient is taken and applied, so the loss scale of mixed_float16
(`precision.Precision`) reaches every objective without any of them handling it.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from dcgan_tf.models import model_inputs


@dataclass(frozen=True)
class Players:
    """The two models and their optimizers, as one objective's step sees them."""

    generator: keras.Model
    discriminator: keras.Model
    generator_optimizer: keras.optimizers.Optimizer
    discriminator_optimizer: keras.optimizers.Optimizer

    def generate(self, noise: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """Fake images (b, 28, 28, 1); a conditional generator draws the digits ``labels``."""
        return self.generator(model_inputs(self.generator, noise, labels), training=True)

    def judge(self, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """Discriminator logits or critic scores (b, 1)."""
        return self.discriminator(model_inputs(self.discriminator, images, labels), training=True)

    def apply(self, tape: tf.GradientTape, loss: tf.Tensor, which: str) -> None:
        """Apply the gradient of ``loss`` (recorded on ``tape``) to the ``generator`` or ``discriminator``.

        The gradient is taken of the loss times the optimizer's loss scale (`precision.Precision`: 1 except
        under mixed_float16, whose optimizer divides it out again in ``apply_gradients``), seeded at the
        loss so that no objective has to scale its losses itself.
        """
        model, optimizer = (
            (self.generator, self.generator_optimizer)
            if which == "generator"
            else (self.discriminator, self.discriminator_optimizer)
        )
        scale = optimizer.scale_loss(tf.ones_like(loss))
        grads = tape.gradient(loss, model.trainable_variables, output_gradients=scale)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
