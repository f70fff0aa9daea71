"""The evaluator network: a small classifier CNN whose features and predictions the metrics use.

FID needs an image embedding and the Inception score a classifier; for MNIST the literature (TF-GAN's
``mnist_frechet_distance`` / ``mnist_score``) uses a small MNIST classifier instead of Inception. This
project trains its own, never downloads one: a fixed architecture and recipe, fixed seeds, trained on
the training split of the data in use (never the test split, which the metrics compare against).

Caching: a trained evaluator is saved as ``evaluator-<key>.keras`` plus ``evaluator-<key>.json``
(dataset, test accuracy, recipe, data source) in a cache folder, by default ``$XDG_CACHE_HOME/dcgan_tf`` or
``~/.cache/dcgan_tf``. ``<key>`` is a hash of the dataset's arrays, the recipe and `EVALUATOR_VERSION`, so
every run on the same data is measured by the *same* network (numbers stay comparable between runs),
and other data (Fashion-MNIST, another subset) or another recipe gets its own evaluator instead of a stale one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from dcgan_tf.data import DATASETS, Mnist, to_model_range
from dcgan_tf.errors import DcganError
from dcgan_tf.files import atomic_write, ensure_writable, write_text

# Bump when the architecture or the training code changes, so old cached evaluators are not reused.
EVALUATOR_VERSION = 1
FEATURES_LAYER = "features"  # the penultimate layer: the embedding FID and precision/recall use
FEATURE_DIM = 128
PREDICT_BATCH = 1000


@dataclass(frozen=True)
class Recipe:
    """How the evaluator is trained. The defaults are the project's evaluator; tests shrink them."""

    epochs: int = 8
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    train_size: int | None = None  # first N training digits (None: all of them)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def default_cache_dir() -> Path:
    """Where evaluators are cached unless told otherwise: ``$XDG_CACHE_HOME/dcgan_tf`` or ``~/.cache/dcgan_tf``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec ignores a relative value: it would put the cache wherever the tool happens to run.
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "dcgan_tf"


def make_classifier(seed: int = 0, num_classes: int = 10) -> keras.Model:
    """Images (B, 28, 28, 1) in [-1, 1] -> class logits (B, num_classes); ``features`` is the (B, 128) embedding.

    The Keras "simple MNIST convnet" with a 128-unit dense layer added as the embedding. Every
    initializer and dropout layer gets its own seed, so building never reads global random state.
    """

    def init(offset: int) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=seed + offset)

    images = keras.Input(shape=(28, 28, 1), name="images")  # (B, 28, 28, 1)
    x = layers.Conv2D(32, 3, activation="relu", kernel_initializer=init(1))(images)  # (B, 26, 26, 32)
    x = layers.MaxPooling2D()(x)  # (B, 13, 13, 32)
    x = layers.Conv2D(64, 3, activation="relu", kernel_initializer=init(2))(x)  # (B, 11, 11, 64)
    x = layers.MaxPooling2D()(x)  # (B, 5, 5, 64)
    x = layers.Flatten()(x)  # (B, 1600)
    x = layers.Dropout(0.5, seed=seed + 3)(x)
    features = layers.Dense(FEATURE_DIM, activation="relu", kernel_initializer=init(4), name=FEATURES_LAYER)(x)
    x = layers.Dropout(0.5, seed=seed + 5)(features)
    logits = layers.Dense(num_classes, kernel_initializer=init(6), name="logits")(x)  # (B, num_classes)
    return keras.Model(images, logits, name="mnist_evaluator")


class Evaluator:
    """A trained classifier plus what is known about it (test accuracy, recipe, where it is cached)."""

    def __init__(self, model: keras.Model, info: dict, path: Path | None = None) -> None:
        self.model = model
        self.info = info
        self.path = path
        # One forward pass yields both outputs the metrics need.
        self._both = keras.Model(model.inputs[0], [model.get_layer(FEATURES_LAYER).output, model.outputs[0]])

    @property
    def test_accuracy(self) -> float:
        return float(self.info["test_accuracy"])

    def describe(self) -> str:
        """One line: which evaluator, how accurate, trained on how many digits."""
        where = f" ({self.path})" if self.path else ""
        # An image folder's evaluator records its title and item; the named datasets' come from the registry.
        named = DATASETS.get(self.info.get("dataset", "mnist"), DATASETS["mnist"])
        title, item = self.info.get("title", named.title), self.info.get("item", named.item)
        return (
            f"{title} evaluator{where}: test accuracy {self.test_accuracy:.2%} on "
            f"{self.info['test_images']:,} test {item}s, trained on {self.info['train_images']:,} training "
            f"{item}s"
        )

    def features_and_probs(self, images: np.ndarray, batch_size: int = PREDICT_BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features (N, 128) and class probabilities (N, 10) for images in [-1, 1].

        ``images`` is float (N, 28, 28[, 1]) in the generator's range, e.g. `data.to_model_range` output.
        """
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[..., None]
        if images.shape[1:] != (28, 28, 1):
            raise DcganError(f"the evaluator takes 28x28 grayscale images, got shape {images.shape}: use MNIST data")
        features, probs = [], []
        for start in range(0, len(images), batch_size):
            f, logits = self._both(images[start : start + batch_size], training=False)
            features.append(np.asarray(f))
            probs.append(np.asarray(keras.ops.softmax(logits)))
        return np.concatenate(features), np.concatenate(probs)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Share of ``images`` (in [-1, 1]) whose predicted class equals ``labels``."""
        _, probs = self.features_and_probs(images)
        return float(np.mean(probs.argmax(axis=1) == np.asarray(labels)))


def cache_key(mnist: Mnist, recipe: Recipe) -> str:
    """Hash of the data, the recipe and `EVALUATOR_VERSION`: same key, same evaluator."""
    digest = hashlib.sha256(json.dumps({"version": EVALUATOR_VERSION, **recipe.to_dict()}, sort_keys=True).encode())
    for array in (mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def load_or_train_evaluator(
    mnist: Mnist,
    cache_dir: str | Path | None = None,
    retrain: bool = False,
    recipe: Recipe | None = None,
    verbose: bool = True,
) -> Evaluator:
    """The evaluator for ``mnist``: loaded from the cache, or trained (with a progress bar) and cached.

    ``retrain`` trains a new one even when a cached one exists (``--retrain-evaluator``).
    """
    recipe = recipe or Recipe()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(mnist, recipe)
    model_path = cache_dir / f"evaluator-{key}.keras"
    info_path = model_path.with_suffix(".json")
    if not retrain and model_path.is_file() and info_path.is_file():
        evaluator = _load(model_path, info_path)
        if verbose:
            print(f"reusing {evaluator.describe()}", flush=True)
        return evaluator

    ensure_writable(cache_dir, "--evaluator-dir")
    if verbose:
        print(f"training the evaluator CNN ({recipe.epochs} epochs; cached in {cache_dir} for next time)", flush=True)
    evaluator = train_evaluator(mnist, recipe, verbose=verbose)
    evaluator.info["key"] = key
    with atomic_write(model_path) as tmp:
        evaluator.model.save(tmp)
    write_text(info_path, json.dumps(evaluator.info, indent=2) + "\n")
    evaluator.path = model_path
    if verbose:
        print(evaluator.describe(), flush=True)
    return evaluator


def _load(model_path: Path, info_path: Path) -> Evaluator:
    try:
        info = json.loads(info_path.read_text())
        model = keras.saving.load_model(model_path, compile=False)
        model.get_layer(FEATURES_LAYER)
    except Exception as err:  # noqa: BLE001 - a damaged cache file means one thing to the user
        reason = str(err).strip().splitlines()[0][:150] if str(err).strip() else type(err).__name__
        raise DcganError(
            f"cached evaluator {model_path} is unreadable ({reason}): rerun with --retrain-evaluator"
        ) from None
    return Evaluator(model, info, model_path)


def train_evaluator(mnist: Mnist, recipe: Recipe | None = None, verbose: bool = True) -> Evaluator:
    """Train a fresh classifier on ``mnist``'s training split as ``recipe`` says; measure it on the test split.

    Deterministic for a given recipe on a given machine: seeded weights, dropout and shuffling, none
    of them from global random state (so training an evaluator in the middle of a GAN run disturbs nothing).
    """
    recipe = recipe or Recipe()
    if recipe.train_size is not None and recipe.train_size > len(mnist.x_train):
        raise DcganError(
            f"the evaluator recipe wants {recipe.train_size} training digits but the data has "
            f"{len(mnist.x_train)}: lower its train_size"
        )
    x = to_model_range(mnist.x_train[: recipe.train_size])
    y = mnist.y_train[: recipe.train_size].astype(np.int64)
    classes = mnist.info.num_classes
    if classes < 2:
        raise DcganError(
            f"{mnist.info.title} is one class (no class subfolders): the evaluator and its metrics need labelled "
            "classes; put the images into one subfolder per class"
        )
    if len(np.unique(y)) < classes:
        raise DcganError(
            f"the training labels cover only classes {sorted(np.unique(y).tolist())}: "
            f"the evaluator needs all {classes} classes; use full {mnist.info.title} data"
        )
    model = make_classifier(recipe.seed, classes)
    model.compile(
        optimizer=keras.optimizers.Adam(recipe.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # A live bar in a terminal; one line per epoch in logs and pipes (verbose=2), not a wall of \b.
    verbosity = (1 if sys.stdout.isatty() else 2) if verbose else 0
    # A seeded shuffle reshuffled every epoch: the same epoch orders on every run, one fit call
    # (so one "Epoch i/N" bar), and no global random state read or changed.
    batches = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=recipe.seed, reshuffle_each_iteration=True)
        .batch(recipe.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    model.fit(batches, epochs=recipe.epochs, shuffle=False, verbose=verbosity)  # already shuffled, seeded
    evaluator = Evaluator(model, {})
    accuracy = evaluator.accuracy(to_model_range(mnist.x_test), mnist.y_test)
    evaluator.info.update(
        dataset=mnist.dataset,
        title=mnist.info.title,
        item=mnist.info.item,
        test_accuracy=accuracy,
        test_images=len(mnist.x_test),
        train_images=len(x),
        recipe=recipe.to_dict(),
        version=EVALUATOR_VERSION,
        keras_version=keras.__version__,
    )
    return evaluator
