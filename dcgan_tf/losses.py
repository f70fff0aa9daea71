"""GAN objectives: each is the loss *and* the update it drives, one registry entry per ``--loss``.

An objective's ``replica_step`` runs on one replica inside the compiled step (`step.make_train_step`):
given the two models (`players.Players`), its share of the batch (`Batch`), the step's random draws
(`draws.Draws`), and whether the generator is due for an update, it computes the losses, applies the
gradients (`Players.apply`) and returns the step's metrics. ``paired_step`` is the one to read first: one
batch, one comment per stage.
Losses are per example and averaged over the *global* batch, so ``tf.distribute`` sums replicas into
the same mean that one device computes.

- ``bce``: the tutorial's from-logits binary cross-entropy, both models updated from one forward pass.
- ``hinge``: the hinge loss (Lim & Ye 2017; SAGAN, BigGAN), the same one-pass step with other losses.
- ``wgan-gp``: Wasserstein loss with gradient penalty (Gulrajani et al. 2017): the critic is updated
  on every batch, the generator every ``--critic-steps`` batches, from its own fresh noise.

The discriminator sees every image through ``draws.augment`` (``--augment``; the identity when off), and
``bce`` and ``hinge`` add the R1 penalty on the real images when ``--r1`` is set (taken on the images as they
are, not as augmented, as StyleGAN2-ADA and DiffAugment's reference code do: with cutout, a penalty on the
augmented images would act inside the blanked square). With ``--top-k`` every objective's generator learns
from the generated images its discriminator scores highest only (`Batch.generator_mean`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from dcgan_tf.draws import AUGMENT_FAKE, AUGMENT_REAL, MIXING, NOISE, SECOND_NOISE, Draws
from dcgan_tf.errors import DcganError
from dcgan_tf.players import Players
from dcgan_tf.sampling import noise_dim_of

GP_WEIGHT = 10.0  # lambda of the gradient penalty, the paper's value
GP_EPSILON = 1e-12  # inside the square root: the norm of a zero gradient is 0, not NaN-gradient sqrt(0)
METRICS = ("g_loss", "d_loss", "d_real", "d_fake")  # what every replica_step returns, in this order


@dataclass(frozen=True)
class Batch:
    """One replica's share of the global batch, and how its per-example losses become the batch's mean."""

    images: tf.Tensor  # (b, 28, 28, 1) real images in [-1, 1]
    labels: tf.Tensor  # (b,) their classes
    global_size: tf.Tensor | int  # the global batch's size: the replicas' means then sum to one device's
    top_k: tf.Tensor | float = 1.0  # the fraction of generated images the generator learns from (--top-k)

    def mean(self, per_example: tf.Tensor) -> tf.Tensor:
        """(b,) per-example values -> their share of the global batch's mean."""
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_size)

    def generator_mean(self, per_example: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
        """The generator's loss (b,) -> its share of the batch's mean over the generated images it learns from:
        all of them, or with --top-k the k = round(top_k x b) (at least 1) of this replica's that the
        discriminator scores (b,) highest. The rest are the ones it already rejects most confidently, whose
        gradients point away from the real digits (Sinha et al. 2020)."""
        if isinstance(self.top_k, float) and self.top_k == 1.0:
            return self.mean(per_example)
        local = tf.shape(per_example)[0]
        k = tf.maximum(1, tf.cast(tf.round(self.top_k * tf.cast(local, tf.float32)), tf.int32))
        kept = tf.gather(per_example, tf.math.top_k(scores, k).indices)  # (k,)
        # k of b per replica: divided by k x replicas, the replicas' shares sum to the mean over all kept images.
        replicas = tf.cast(self.global_size, tf.float32) / tf.cast(local, tf.float32)
        return tf.reduce_sum(kept) / (tf.cast(k, tf.float32) * replicas)


# (players, batch, draws, update_generator) -> METRICS
ReplicaStep = Callable[[Players, Batch, Draws, bool], dict[str, tf.Tensor]]


def _bce(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    # sigmoid_cross_entropy_with_logits is the numerically stable form of BCE(sigmoid(logits)).
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), axis=-1)


def bce_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Non-saturating generator loss: -log D(G(z)), i.e. BCE against the label "real"."""
    return _bce(tf.ones_like(fake_logits), fake_logits)


def bce_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """BCE of real images against "real" plus generated images against "fake"."""
    return _bce(tf.ones_like(real_logits), real_logits) + _bce(tf.zeros_like(fake_logits), fake_logits)


def hinge_generator_loss(fake_scores: tf.Tensor) -> tf.Tensor:
    """-D(G(z)): the generator raises the scores of its images."""
    return -tf.reduce_mean(fake_scores, axis=-1)


def hinge_discriminator_loss(real_scores: tf.Tensor, fake_scores: tf.Tensor) -> tf.Tensor:
    """max(0, 1 - D(x)) + max(0, 1 + D(G(z))): only images on the wrong side of the margin teach it."""
    return tf.reduce_mean(tf.nn.relu(1.0 - real_scores) + tf.nn.relu(1.0 + fake_scores), axis=-1)


def r1_penalty(judge: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor, gamma: float) -> tuple[tf.Tensor, tf.Tensor]:
    """``judge(images)`` (b, 1) and the per-example R1 penalty ``gamma / 2 * ||grad_x judge(x)||^2`` (b,).

    Penalising the discriminator's slope on real data keeps it from growing sharp where the generator
    cannot follow (Mescheder et al. 2018: the penalty under which their GANs converged).
    """
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = judge(images)  # (b, 1)
        total = tf.reduce_sum(logits)  # each logit sees its own image only, so its gradient is per image
    grads = tape.gradient(total, images)  # (b, 28, 28, 1)
    return logits, 0.5 * gamma * tf.reduce_sum(tf.square(grads), axis=list(range(1, len(grads.shape))))


def paired_step(
    generator_loss: Callable[[tf.Tensor], tf.Tensor],
    discriminator_loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    probabilities: bool,
    r1: float = 0.0,
) -> ReplicaStep:
    """The tutorial's step for a pair of per-example losses: one forward pass, each model updated with the
    gradient of its own loss. ``probabilities``: report D(x) and D(G(z)) as sigmoids (else raw scores)."""

    def step(players: Players, batch: Batch, draws: Draws, update_generator: bool) -> dict:
        labels = batch.labels
        # Noise in, fakes out: (b, noise_dim) -> (b, 28, 28, 1).
        noise = draws.normal(NOISE, noise_dim_of(players.generator))
        # Two tapes, one per model: each loss is differentiated only w.r.t. its own model.
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = players.generate(noise, labels)
            # What the discriminator sees: both kinds of image through the same kind of augmentation.
            real, fake = draws.augment(batch.images, AUGMENT_REAL), draws.augment(fake, AUGMENT_FAKE)
            # The discriminator judges both: (b, 1) logits each, and the R1 penalty (b,) on the real ones.
            judge = lambda x: players.judge(x, labels)  # noqa: E731
            if r1 and not draws.augmentations:  # its slope at the real images it just judged
                real_logits, penalty = r1_penalty(judge, real, r1)
            else:  # R1 at the real images as they are, not as augmented (StyleGAN2-ADA's and DiffAugment's rule)
                real_logits, penalty = judge(real), r1_penalty(judge, batch.images, r1)[1] if r1 else 0.0
            fake_logits = judge(fake)
            # Each model's loss, per example, averaged over the batch.
            g_loss = batch.generator_mean(generator_loss(fake_logits), fake_logits[:, 0])
            d_loss = batch.mean(discriminator_loss(real_logits, fake_logits) + penalty)
        # Both updates from the one forward pass (the generator's only when it is due).
        if update_generator:
            players.apply(g_tape, g_loss, "generator")
        players.apply(d_tape, d_loss, "discriminator")
        # Mean D(x) and D(G(z)) show who is winning.
        shown = tf.sigmoid if probabilities else tf.identity
        return {
            "g_loss": g_loss,
            "d_loss": d_loss,
            "d_real": batch.mean(shown(real_logits)[:, 0]),
            "d_fake": batch.mean(shown(fake_logits)[:, 0]),
        }

    return step


def gradient_penalty(critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor, alpha: tf.Tensor):
    """Per-example ``(||grad_x critic(x)||_2 - 1)^2`` at ``x = real + alpha * (fake - real)``, shape (b,).

    ``alpha`` (b,) is one uniform [0, 1] weight per example; the norm is taken per example over all
    non-batch axes (height, width, channels), with `GP_EPSILON` inside the square root.
    """
    alpha = tf.reshape(alpha, [-1] + [1] * (len(real.shape) - 1))  # (b, 1, 1, 1)
    mixed = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        scores = critic(mixed)  # (b, 1)
    grads = tape.gradient(scores, mixed)  # (b, 28, 28, 1): each score depends on its own image only
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=list(range(1, len(grads.shape)))) + GP_EPSILON)
    return tf.square(norms - 1.0)


def wgan_gp_step(players: Players, batch: Batch, draws: Draws, update_generator: bool) -> dict:
    """WGAN-GP: a critic update on this batch, then (when due) a generator update from fresh noise.

    The critic is the model's discriminator as it is, dropout included (the card's discriminator has
    no BatchNorm, which the per-example penalty rules out).
    """
    noise_dim, labels, average_loss = noise_dim_of(players.generator), batch.labels, batch.mean
    fake = players.generate(draws.normal(NOISE, noise_dim), labels)  # (b, 28, 28, 1), outside the critic's tape
    images, fake = draws.augment(batch.images, AUGMENT_REAL), draws.augment(fake, AUGMENT_FAKE)  # what the critic sees
    with tf.GradientTape() as d_tape:
        real_scores = players.judge(images, labels)[:, 0]  # (b,)
        fake_scores = players.judge(fake, labels)[:, 0]  # (b,)
        penalty = gradient_penalty(lambda x: players.judge(x, labels), images, fake, draws.uniform(MIXING))
        # The critic widens the gap between real and fake scores, kept 1-Lipschitz by the penalty.
        d_loss = average_loss(fake_scores - real_scores + GP_WEIGHT * penalty)
    players.apply(d_tape, d_loss, "discriminator")
    if update_generator:
        with tf.GradientTape() as g_tape:
            # Its own fakes, seen through the same draws as the critic's (the step has no sixth stream).
            fresh = draws.augment(players.generate(draws.normal(SECOND_NOISE, noise_dim), labels), AUGMENT_FAKE)
            fresh_scores = players.judge(fresh, labels)[:, 0]  # (b,)
            g_loss = batch.generator_mean(-fresh_scores, fresh_scores)
        players.apply(g_tape, g_loss, "generator")
    else:  # no generator update this batch: report its loss on the critic's fakes
        g_loss = average_loss(-fake_scores)
    # For WGAN-GP d_real / d_fake are mean critic scores (unbounded), not probabilities.
    return {
        "g_loss": g_loss,
        "d_loss": d_loss,
        "d_real": average_loss(real_scores),
        "d_fake": average_loss(fake_scores),
    }


@dataclass(frozen=True)
class Objective:
    """One ``--loss``: its replica step and what its D(x) / D(G(z)) metrics are."""

    replica_step: ReplicaStep
    scores: str  # "probability" (mean sigmoid of the logits) or "critic score" (mean raw critic output)


# name -> the objective, given the R1 weight (0: none; config.py refuses it for wgan-gp, which has its own penalty)
LOSSES: dict[str, Callable[[float], Objective]] = {
    "bce": lambda r1: Objective(paired_step(bce_generator_loss, bce_discriminator_loss, True, r1), "probability"),
    "hinge": lambda r1: Objective(
        paired_step(hinge_generator_loss, hinge_discriminator_loss, False, r1), "critic score"
    ),
    "wgan-gp": lambda r1: Objective(wgan_gp_step, "critic score"),
}


def get_loss(name: str, r1: float = 0.0) -> Objective:
    """The objective registered under ``name``, with an R1 penalty of weight ``r1`` where it has one."""
    if name not in LOSSES:
        raise DcganError(f"unknown loss {name!r}: choose one of {', '.join(LOSSES)}")
    return LOSSES[name](r1)
