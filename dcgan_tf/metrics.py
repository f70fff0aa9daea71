"""The sample-quality maths, in plain NumPy: Frechet distance, classifier score, class histogram,
and improved precision and recall.

Every function here takes arrays an evaluator network already produced (penultimate-layer features,
class probabilities) and returns numbers; nothing here knows about TensorFlow, checkpoints or files,
so each formula can be tested against its closed form. Statistics are accumulated in float64:
covariance traces of ~100-dimensional features lose digits fast in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_CLASSES = 10
DEFAULT_K = 3  # neighbourhood size of improved precision/recall (Kynkaanniemi et al. 2019 use k=3)
# Rows of a pairwise-distance block: 1,000 x 10,000 float64 distances is 80 MB at a time, never 10k x 10k.
DISTANCE_BATCH = 1000


@dataclass(frozen=True)
class GaussianFit:
    """Mean (D,) and covariance (D, D) of a set of feature vectors, in float64."""

    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def of(cls, features: np.ndarray) -> GaussianFit:
        """Fit the whole set at once (not per batch): the estimator FID is defined with."""
        features = _as_2d(features, "features")
        if len(features) < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {len(features)}")
        return cls(features.mean(axis=0), np.cov(features, rowvar=False))


def frechet_distance(a: GaussianFit | np.ndarray, b: GaussianFit | np.ndarray) -> float:
    """Frechet (2-Wasserstein) distance between two Gaussians, or between Gaussian fits of two feature sets.

    ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` as in Heusel et al. 2017 (FID) and TF-GAN's
    ``frechet_classifier_distance``. The trace of the product's square root is taken from the symmetric
    form ``sqrt(S_a) S_b sqrt(S_a)``, which has the same eigenvalues as ``S_a S_b`` but is symmetric
    positive semi-definite, so `numpy.linalg.eigvalsh` is exact and stable and no SciPy is needed.
    """
    a = a if isinstance(a, GaussianFit) else GaussianFit.of(a)
    b = b if isinstance(b, GaussianFit) else GaussianFit.of(b)
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"feature sizes differ: {a.mean.shape[0]} vs {b.mean.shape[0]}")
    root_a = _psd_sqrt(a.cov)
    product_eigenvalues = np.linalg.eigvalsh(root_a @ b.cov @ root_a)
    # Tiny negative eigenvalues are rounding noise of a PSD matrix, not information.
    trace_sqrt_product = np.sqrt(np.clip(product_eigenvalues, 0, None)).sum()
    diff = a.mean - b.mean
    distance = diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2 * trace_sqrt_product
    return float(max(distance, 0.0))  # identical sets can round to -1e-12


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix, via its eigenbasis."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def classifier_score(probs: np.ndarray) -> float:
    """``exp(E_x[KL(p(y|x) || p(y))])``: the Inception-score formula with an MNIST classifier.

    1 when every image gets the same prediction (no diversity or no confidence), ``NUM_CLASSES``
    when predictions are confident and spread evenly over the classes. Computed over the whole set,
    not averaged over splits, matching TF-GAN's ``classifier_score_from_logits`` with one split.
    """
    probs = _as_2d(probs, "probs")
    marginal = probs.mean(axis=0)
    # 0 * log 0 is 0: skip zero probabilities instead of adding epsilons that bias the score.
    ratio = np.divide(probs, marginal, out=np.ones_like(probs), where=probs > 0)
    kl = np.sum(probs * np.log(ratio), axis=1)
    return float(np.exp(kl.mean()))


def class_histogram(probs: np.ndarray) -> np.ndarray:
    """Share of images predicted as each class (argmax), shape (num_classes,), summing to 1."""
    probs = _as_2d(probs, "probs")
    counts = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
    return counts / max(len(probs), 1)


def precision_recall(
    real_features: np.ndarray,
    fake_features: np.ndarray,
    k: int = DEFAULT_K,
    batch_size: int = DISTANCE_BATCH,
    real_radii: np.ndarray | None = None,
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019), from feature vectors.

    Each set's manifold is the union of balls around its points, each ball reaching the point's k-th
    nearest neighbour in the same set. Precision is the share of generated points inside the real
    manifold (are samples realistic?); recall is the share of real points inside the generated manifold
    (is the variety covered?). Use sets of equal size: the balls shrink as a set grows.
    ``real_radii`` (from `knn_radii` of the same real set and k) saves recomputing them per call.
    """
    real = _as_2d(real_features, "real_features")
    fake = _as_2d(fake_features, "fake_features")
    real_radii = knn_radii(real, k, batch_size) if real_radii is None else real_radii
    fake_radii = knn_radii(fake, k, batch_size)
    precision = _share_inside(fake, real, real_radii, batch_size)
    recall = _share_inside(real, fake, fake_radii, batch_size)
    return precision, recall


def knn_radii(features: np.ndarray, k: int = DEFAULT_K, batch_size: int = DISTANCE_BATCH) -> np.ndarray:
    """Squared distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    features = _as_2d(features, "features")
    if not 1 <= k < len(features):
        raise ValueError(f"k={k} needs at least k+1={k + 1} points, got {len(features)}")
    radii = np.empty(len(features))
    for start in range(0, len(features), batch_size):
        block = _squared_distances(features[start : start + batch_size], features)
        # Column 0 of the sorted row is the point itself (distance ~0), so index k is the k-th neighbour.
        radii[start : start + batch_size] = np.partition(block, k, axis=1)[:, k]
    return radii


def _share_inside(points: np.ndarray, centres: np.ndarray, squared_radii: np.ndarray, batch_size: int) -> float:
    """Share of ``points`` that lie in at least one ball (``centres``, ``squared_radii``)."""
    inside = 0
    for start in range(0, len(points), batch_size):
        block = _squared_distances(points[start : start + batch_size], centres)
        inside += int(np.count_nonzero((block <= squared_radii[None, :]).any(axis=1)))
    return inside / len(points)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances (len(a), len(b)) by ``|a|^2 - 2ab + |b|^2``, one BLAS call."""
    distances = (a * a).sum(axis=1)[:, None] - 2 * a @ b.T + (b * b).sum(axis=1)[None, :]
    return np.maximum(distances, 0, out=distances)  # rounding can leave -1e-12 where the points coincide


def _as_2d(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (N, D), got shape {array.shape}")
    return array
