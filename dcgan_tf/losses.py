"""GAN losses, computed per example so that ``tf.distribute`` can average them over a global batch.

A loss is a pair of functions on discriminator logits. ``config.loss`` names one in `LOSSES`;
WGAN-GP (which also needs the critic and real images for its gradient penalty) will extend this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from dcgan_tf.errors import DcganError


@dataclass(frozen=True)
class GanLoss:
    """Per-example generator and discriminator losses, each (B, 1) logits -> (B,) losses."""

    generator: Callable[[tf.Tensor], tf.Tensor]
    discriminator: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def _bce(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    # sigmoid_cross_entropy_with_logits is the numerically stable form of BCE(sigmoid(logits)).
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), axis=-1)


def bce_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Non-saturating generator loss: -log D(G(z)), i.e. BCE against the label "real"."""
    return _bce(tf.ones_like(fake_logits), fake_logits)


def bce_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """BCE of real images against "real" plus generated images against "fake"."""
    return _bce(tf.ones_like(real_logits), real_logits) + _bce(tf.zeros_like(fake_logits), fake_logits)


LOSSES: dict[str, GanLoss] = {"bce": GanLoss(bce_generator_loss, bce_discriminator_loss)}


def get_loss(name: str) -> GanLoss:
    """The loss registered under ``name``."""
    if name not in LOSSES:
        raise DcganError(f"unknown loss {name!r}: choose one of {', '.join(LOSSES)}")
    return LOSSES[name]
