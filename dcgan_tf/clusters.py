"""Self-conditioning without labels (Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs").

``--model self-conditioned`` trains the conditional pair (`models.make_conditional_generator`, the projection
discriminator) on *clusters* instead of digits: the discriminator's features of the real images are
clustered with k-means (``--clusters K``), each real image is conditioned on its cluster, and each generated
image on the cluster of the real image it is paired with in the batch, so the clusters are drawn by their
shares. No label is read, so it stays an unconditional model and works on a folder of unlabelled images.

The clustering is redone every ``--recluster-every`` epochs, as the discriminator's features improve, each
time starting from the previous clusters (their means in the new features), so that cluster c stays the
same kind of image and the generator's embedding of c keeps its meaning. `Clusters` holds the centres,
every training image's cluster and the clusters' shares as variables of the checkpoint, so a resumed run
conditions on what an uninterrupted one would. The tools sample through `sampler`: an unconditional
generator whose last noise component draws the cluster by its share.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

FIT_IMAGES = 10_000  # k-means is fitted on this many training images (all are then assigned)
KMEANS_ITERATIONS = 30
FEATURES_BATCH = 1024


class Clusters(tf.Module):
    """The clustering of a run's training images: centres (K, F), each image's cluster (N,), shares (K,)."""

    def __init__(self, k: int, num_images: int, feature_dim: int) -> None:
        super().__init__(name="clusters")
        self.centres = tf.Variable(tf.zeros([k, feature_dim]), trainable=False)
        self.assignment = tf.Variable(tf.zeros([num_images], tf.int32), trainable=False)
        self.shares = tf.Variable(tf.fill([k], 1.0 / k), trainable=False)
        self.rounds = tf.Variable(0, dtype=tf.int64, trainable=False)  # clusterings done so far

    def due(self, epochs_trained: int, every: int) -> bool:
        """Whether a clustering is due after ``epochs_trained`` epochs: one at the start and one after every
        ``every``-th epoch, the last included (so extending a finished run with --epochs matches a longer one)."""
        return int(self.rounds.numpy()) < 1 + epochs_trained // every

    def labels_of(self, indices: tf.Tensor) -> tf.Tensor:
        """The clusters (b,) of the training images at ``indices`` (b,): what the step conditions on."""
        return tf.gather(self.assignment, indices)

    def recluster(self, discriminator: keras.Model, images: tf.Tensor, seed: int) -> str:
        """Cluster the discriminator's features of ``images`` (N, 28, 28, 1) anew; returns one line saying so.

        A pure function of the discriminator's weights, the images, the seed and the round, so a resumed run
        (which restores all four) clusters as an uninterrupted one would.
        """
        k, rounds = int(self.shares.shape[0]), int(self.rounds.numpy())
        rng = np.random.default_rng([seed, 1 << 21, rounds])
        fit = np.sort(rng.choice(len(images), min(FIT_IMAGES, len(images)), replace=False))
        fit_features = features(discriminator, tf.gather(images, fit))  # (n, F)
        if rounds == 0:
            start = kmeans_plus_plus(fit_features, k, rng)
        else:  # the previous clusters, as their images' means in today's features: cluster c stays cluster c
            start = cluster_means(fit_features, self.assignment.numpy()[fit], self.centres.numpy(), k)
        centres = kmeans(fit_features, start)
        assignment = np.concatenate(
            [
                nearest(features(discriminator, images[i : i + FEATURES_BATCH]), centres)
                for i in range(0, len(images), FEATURES_BATCH)
            ]
        )
        shares = np.bincount(assignment, minlength=k) / len(assignment)
        moved = "" if rounds == 0 else f", {np.mean(assignment != self.assignment.numpy()):.0%} of the images moved"
        self.centres.assign(centres)
        self.assignment.assign(assignment.astype(np.int32))
        self.shares.assign(shares.astype(np.float32))
        self.rounds.assign_add(1)
        return (
            f"self-conditioning: clustering {rounds + 1}, {k} clusters of the discriminator's features, "
            f"shares {shares.min():.1%} - {shares.max():.1%}{moved}"
        )


def features(discriminator: keras.Model, images: tf.Tensor) -> np.ndarray:
    """The discriminator's features (n, F) of ``images``, without dropout: the input of its projection."""
    return discriminator.get_layer("features")(images, training=False).numpy().astype(np.float64)


def nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each point's nearest centre (n,), by squared Euclidean distance."""
    distances = (points**2).sum(1)[:, None] - 2 * points @ centres.T + (centres**2).sum(1)[None, :]
    return np.argmin(distances, axis=1)


def kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k starting centres (k, F) spread over ``points`` (Arthur & Vassilvitskii 2007)."""
    centres = [points[rng.integers(len(points))]]
    distances = np.full(len(points), np.inf)  # each point's squared distance to its nearest centre so far
    for _ in range(1, k):
        distances = np.minimum(distances, ((points - centres[-1]) ** 2).sum(1))
        centres.append(points[rng.choice(len(points), p=distances / distances.sum())])
    return np.array(centres)


def cluster_means(points: np.ndarray, assignment: np.ndarray, fallback: np.ndarray, k: int) -> np.ndarray:
    """Each cluster's mean of ``points`` (k, F); a cluster with none of them keeps its ``fallback`` row."""
    means = np.array(fallback, dtype=np.float64)
    for c in range(k):
        members = points[assignment == c]
        if len(members):
            means[c] = members.mean(0)
    return means


def kmeans(points: np.ndarray, centres: np.ndarray, iterations: int = KMEANS_ITERATIONS) -> np.ndarray:
    """Lloyd's k-means from ``centres`` (k, F): (k, F) centres, an empty cluster keeping its old centre.

    A few lines of NumPy rather than a dependency: scikit-learn's would be the only use of the package.
    """
    for _ in range(iterations):
        assignment = nearest(points, centres)
        updated = cluster_means(points, assignment, centres, len(centres))
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres


@keras.saving.register_keras_serializable(package="dcgan_tf")
class ClusterChoice(layers.Layer):
    """Noise (B, n + 1) -> [noise (B, n), cluster (B,)]: the last component chooses the cluster by its share
    (through the normal distribution's CDF, a uniform number), independently of the other n."""

    def __init__(self, shares, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shares = [float(share) for share in np.asarray(shares)]

    def call(self, noise):
        uniform = 0.5 * (1.0 + tf.math.erf(tf.cast(noise[:, -1], tf.float32) / math.sqrt(2.0)))  # (B,)
        edges = tf.constant(np.cumsum(self.shares)[:-1], tf.float32)  # (K - 1,)
        cluster = tf.reduce_sum(tf.cast(uniform[:, None] >= edges[None, :], tf.int32), axis=1)  # (B,)
        return [noise[:, :-1], cluster]

    def get_config(self) -> dict:
        return {**super().get_config(), "shares": self.shares}


def sampler(generator: keras.Model, shares) -> keras.Model:
    """The self-conditioned ``generator`` as an unconditional one: noise (B, n + 1) -> images (B, 28, 28, 1),
    each image's cluster drawn by its share (``shares`` (K,)) from its last noise component."""
    noise_dim = int(generator.inputs[0].shape[-1])
    noise = keras.Input(shape=(noise_dim + 1,), name="noise")  # (B, n + 1)
    images = generator(ClusterChoice(shares)(noise))
    return keras.Model(noise, images, name="self_conditioned_generator")
