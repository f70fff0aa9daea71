"""Self-conditioning (--model self-conditioned): clusters of the discriminator's features instead of labels.

The clustering is reproducible from the seed, survives a resume (its centres, assignment and shares are in
the checkpoint), conditions the pair, and the tools sample the model as an unconditional one.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tensorflow as tf
from conftest import differing_share, snapshot, tiny_flags

from dcgan_tf.checkpoints import list_checkpoints, load_generator
from dcgan_tf.clusters import ClusterChoice, Clusters, kmeans, kmeans_plus_plus, nearest
from dcgan_tf.config import TrainConfig
from dcgan_tf.data import load_mnist, training_images
from dcgan_tf.errors import DcganError
from dcgan_tf.gan import build_gan
from dcgan_tf.sampling import sample
from dcgan_tf.training import fit

RESUME_TOLERANCE = 1e-3  # as tests/test_train.py: oneDNN may sum a gradient in another order
SELF = dict(model="self-conditioned", clusters=4, recluster_every=1)


def test_kmeans_finds_separated_groups_and_keeps_empty_clusters_in_place():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.concatenate([c + rng.normal(0, 0.5, (50, 2)) for c in centres])
    found = kmeans(points, kmeans_plus_plus(points, 3, np.random.default_rng(1)))
    assignment = nearest(points, found)
    # Each group of 50 is one cluster, whatever the clusters' order.
    assert sorted(np.bincount(assignment).tolist()) == [50, 50, 50]
    assert all(len(set(assignment[i : i + 50])) == 1 for i in (0, 50, 100))
    # A centre far from every point gets none and stays where it was.
    start = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [100.0, 100.0]])
    assert kmeans(points, start)[3].tolist() == [100.0, 100.0]


def test_the_cluster_is_drawn_by_its_share_from_the_last_noise_component():
    noise = np.random.default_rng(0).standard_normal((20_000, 5)).astype(np.float32)
    rest, cluster = ClusterChoice([0.2, 0.0, 0.5, 0.3])(tf.constant(noise))
    assert rest.shape == (20_000, 4) and np.array_equal(rest.numpy(), noise[:, :4])
    shares = np.bincount(cluster.numpy(), minlength=4) / len(noise)
    np.testing.assert_allclose(shares, [0.2, 0.0, 0.5, 0.3], atol=0.01)


def test_a_clustering_is_due_at_the_start_and_after_every_eth_epoch_the_last_included():
    clusters = Clusters(k=2, num_images=4, feature_dim=3)
    assert clusters.due(0, 5)  # a new run
    clusters.rounds.assign(1)
    assert not clusters.due(4, 5) and clusters.due(5, 5)
    clusters.rounds.assign(6)  # a 30-epoch run of an older version, which skipped the clustering after epoch 30:
    assert clusters.due(30, 5)  # its resume catches up before training epoch 31
    clusters.rounds.assign(7)
    assert not clusters.due(30, 5) and not clusters.due(34, 5)


def test_the_clustering_is_reproducible_from_the_seed(mnist_path, tmp_path):
    config = TrainConfig(**tiny_flags(mnist_path, tmp_path, **SELF))
    images = tf.constant(training_images(load_mnist(mnist_path), 256))

    def clustered(seed):
        gan = build_gan(config, num_images=256)
        gan.clusters.recluster(gan.discriminator, images, seed)
        return gan.clusters.assignment.numpy(), gan.clusters.shares.numpy()

    (first, shares), (again, _), (other, _) = clustered(1), clustered(1), clustered(2)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert set(first) <= {0, 1, 2, 3} and shares.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(shares, np.bincount(first, minlength=4) / 256)


def test_self_conditioning_trains_resumes_exactly_and_samples_unconditionally(mnist_path, tmp_path, capsys):
    """A branch from epoch 1 retrains epoch 2 exactly: the clusters made after epoch 1 come back from the
    checkpoint, and the step conditions each image on its own."""
    straight = tmp_path / "straight"
    fit(TrainConfig(**tiny_flags(mnist_path, straight, **SELF)))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("self-conditioning:")]
    # At the start and after each epoch, the last included (a resume with more --epochs continues from there).
    assert [line.split(",")[0] for line in lines] == [f"self-conditioning: clustering {n}" for n in (1, 2, 3)]
    first, last = list_checkpoints(straight)
    reader = tf.train.load_checkpoint(first.path)
    assignment = reader.get_tensor("clusters/assignment/.ATTRIBUTES/VARIABLE_VALUE")
    assert assignment.shape == (256,) and reader.get_tensor("clusters/rounds/.ATTRIBUTES/VARIABLE_VALUE") == 2
    assert tf.train.load_checkpoint(last.path).get_tensor("clusters/rounds/.ATTRIBUTES/VARIABLE_VALUE") == 3
    assert reader.get_tensor("clusters/centres/.ATTRIBUTES/VARIABLE_VALUE").shape == (4, 7 * 7 * 128)

    branch = tmp_path / "branch"
    shutil.copytree(straight, branch)
    fit(TrainConfig(**tiny_flags(mnist_path, branch, checkpoint=first.name, **SELF)))
    for which in ("raw", "ema"):
        want, got = (
            load_generator(straight, which=which).get_weights(),
            load_generator(branch, which=which).get_weights(),
        )
        assert differing_share(want, got) <= RESUME_TOLERANCE, which

    # The tools see an unconditional generator: noise (B, 101), the cluster drawn from the last component.
    generator = load_generator(straight)
    assert len(generator.inputs) == 1 and generator.inputs[0].shape[-1] == 101
    images = sample(generator, num=4, seed=1)
    assert images.shape == (4, 28, 28, 1) and np.abs(images).max() <= 1.0


def test_self_conditioning_settings_are_checked_and_part_of_the_run(trained_run, mnist_path, tmp_path):
    with pytest.raises(DcganError, match="--clusters is for --model self-conditioned"):
        TrainConfig(clusters=5)
    with pytest.raises(DcganError, match="--clusters must be from 2 to 100"):
        TrainConfig(model="self-conditioned", clusters=1)
    assert (TrainConfig(model="self-conditioned").clusters, TrainConfig(model="self-conditioned").recluster_every) == (
        10,
        5,
    )
    saved = {**TrainConfig(model="self-conditioned").__dict__}
    assert TrainConfig(model="self-conditioned", clusters=12).conflicts_with(saved) == ["clusters=10 (now 12)"]
    # A run of another model is refused, and left as it was.
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    with pytest.raises(DcganError, match=r"model='dcgan' \(now 'self-conditioned'\)"):
        fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=3, model="self-conditioned")))
    assert snapshot(run) == before
    # More clusters than training images: k-means cannot place them; refused before anything is written.
    few = tiny_flags(mnist_path, tmp_path / "few", model="self-conditioned", clusters=100, train_size=64, batch_size=32)
    with pytest.raises(
        DcganError, match="the training set has 64 digits, fewer than --clusters 100: pass --clusters 64"
    ):
        fit(TrainConfig(**few))
    assert not (tmp_path / "few").exists()
