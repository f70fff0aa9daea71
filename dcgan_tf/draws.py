"""The random numbers of one training step: its seeded streams and the augmentation they drive.

Every draw is a pure function of the run's seed, the batch counter and the stream, so a resumed run draws
what an uninterrupted one would, and N replicas draw what one device does.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from dcgan_tf.augment import UNIFORMS, augment

# The step's random streams (step.make_train_step seeds each by the run's seed and the batch counter).
NOISE, SECOND_NOISE, MIXING, AUGMENT_REAL, AUGMENT_FAKE = range(5)


@dataclass(frozen=True)
class Draws:
    """The random numbers of one step on one replica, and the augmentation they drive.

    Stream ``s`` of step ``t`` is a pure function of ``(seed, t, s)``: a resumed run draws what an
    uninterrupted one would. Each draw is made for the whole global batch and this replica keeps its
    rows ``first .. first + local_batch``, so N replicas draw what one device does.
    """

    seed: int
    step: tf.Tensor  # the run's batch counter (int64)
    global_batch: tf.Tensor
    first: tf.Tensor  # this replica's first row of the global batch
    local_batch: tf.Tensor
    augmentations: tuple[str, ...] = ()  # --augment's policies (`augment`); none: the identity

    def normal(self, stream: int, dim: int) -> tf.Tensor:
        """(b, dim) standard normal."""
        return self._rows(tf.random.stateless_normal([self.global_batch, dim], self._seed(stream), alg="philox"))

    def uniform(self, stream: int, per_example: int | None = None) -> tf.Tensor:
        """(b,) uniform in [0, 1), or (b, per_example)."""
        shape = [self.global_batch] + ([] if per_example is None else [per_example])
        return self._rows(tf.random.stateless_uniform(shape, self._seed(stream), alg="philox"))

    def augment(self, images: tf.Tensor, stream: int) -> tf.Tensor:
        """``images`` as the discriminator sees them (`augment`; the identity without --augment)."""
        if not self.augmentations:
            return images
        return augment(images, self.uniform(stream, UNIFORMS), self.augmentations)

    def _seed(self, stream: int) -> tf.Tensor:
        # Stream 0 is seeded by (seed, t), streams 1-4 by (seed, -(4t + stream)): never the same pair
        # (a fifth would repeat stream 1 of the next step, hence the check). Philox: the same numbers on any device.
        if not 0 <= stream <= 4:
            raise ValueError(f"random stream {stream} out of 0-4")
        second = self.step if stream == 0 else -(4 * self.step + stream)
        return tf.stack([tf.constant(self.seed, tf.int64), second])

    def _rows(self, draw: tf.Tensor) -> tf.Tensor:
        return draw[self.first :][: self.local_batch]
