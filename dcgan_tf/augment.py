"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) of what the discriminator sees (``--augment``).

The discriminator sees real and generated images through the same random transformations, and the
generator's gradient flows back through them, so the discriminator cannot memorise the real digits
and the generator is not taught to draw the transformations. Each policy is a linear map of the
image (differentiable everywhere) driven by uniform numbers the training step draws from its seeded
streams, so an augmented run is exactly reproducible and resumable.

The fill value is the background, -1 (black) in the models' [-1, 1] range, not DiffAugment's 0
(mid-grey for these images): a shifted or cut-out digit still lies on a plain black page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

SIZE = 28  # MNIST's height and width
BACKGROUND = -1.0
TRANSLATION = int(SIZE * 0.125 + 0.5)  # at most 4 pixels each way (DiffAugment's ratio 1/8, rounded as it does)
CUTOUT = int(SIZE * 0.5 + 0.5)  # a 14x14 square (DiffAugment's ratio 1/2)


def translation(images: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
    """Shift each image (b, 28, 28, 1) by -4..4 pixels down and right (``u`` (b, 2): uniform [0, 1))."""
    shifts = tf.cast(tf.floor(u * (2 * TRANSLATION + 1)), tf.int32) - TRANSLATION  # (b, 2) in [-4, 4]
    index = tf.range(SIZE)
    # Row i of the result is row i - dy of the image: a one-hot matrix (b, 28, 28) per image, whose
    # out-of-range rows are all zero, so what moves in is 0, the background after the shift below.
    rows = tf.one_hot(index[None, :] - shifts[:, :1], SIZE, dtype=images.dtype)
    cols = tf.one_hot(index[None, :] - shifts[:, 1:], SIZE, dtype=images.dtype)
    page = images[..., 0] - BACKGROUND  # (b, 28, 28), background 0
    moved = tf.matmul(tf.matmul(rows, page), cols, transpose_b=True)
    return (moved + BACKGROUND)[..., None]


def cutout(images: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
    """Blank a 14x14 square (clipped at the border) centred anywhere in each image (``u`` (b, 2))."""
    centres = tf.cast(tf.floor(u * (SIZE + 1)), tf.int32)  # (b, 2) in [0, 28]
    offsets = tf.range(SIZE)[None, :] + CUTOUT // 2  # (1, 28)

    def inside(centre: tf.Tensor) -> tf.Tensor:  # (b, 28): rows (or columns) centre - 7 .. centre + 6
        return tf.logical_and(offsets >= centre, offsets < centre + CUTOUT)

    inside_rows, inside_cols = inside(centres[:, :1]), inside(centres[:, 1:])
    square = tf.logical_and(inside_rows[:, :, None], inside_cols[:, None, :])[..., None]  # (b, 28, 28, 1)
    return tf.where(square, tf.constant(BACKGROUND, images.dtype), images)


# name -> (policy, how many uniform numbers per image it takes)
POLICIES: dict[str, tuple[Callable[[tf.Tensor, tf.Tensor], tf.Tensor], int]] = {
    "translation": (translation, 2),
    "cutout": (cutout, 2),
}
UNIFORMS = sum(count for _, count in POLICIES.values())  # numbers per image that any policy list needs


def augment(images: tf.Tensor, uniforms: tf.Tensor, names: Sequence[str]) -> tf.Tensor:
    """Apply the ``names`` policies in order; ``uniforms`` (b, `UNIFORMS`) are the image's random numbers."""
    used = 0
    for name in names:
        policy, count = POLICIES[name]
        images = policy(images, uniforms[:, used : used + count])
        used += count
    return images
