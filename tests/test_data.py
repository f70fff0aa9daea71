"""Loading MNIST from an npz or IDX folder, scaling, the per-epoch pipeline, and bad files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from dcgan_tf import data
from dcgan_tf.errors import DcganError


def write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    """Write ``array`` (uint8) in the IDX format of the official MNIST files."""
    payload = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


def test_npz_loads_real_mnist(mnist_path):
    mnist = data.load_mnist(mnist_path)
    assert mnist.x_train.shape == (24_345, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.x_test.shape == (10_000, 28, 28)
    assert set(np.unique(mnist.y_test)) == set(range(10))
    images = data.training_images(mnist, train_size=100)
    assert images.shape == (100, 28, 28, 1) and images.dtype == np.float32
    assert images.min() == -1.0 and images.max() == 1.0
    assert np.array_equal(data.to_uint8(images), mnist.x_train[:100])  # the scaling round-trips exactly


def test_idx_folder_plain_and_gzipped_equals_npz(mnist_path, tmp_path):
    mnist = data.load_mnist(mnist_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", mnist.x_train[:300])
    write_idx(tmp_path / "train-labels-idx1-ubyte", mnist.y_train[:300])
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", mnist.x_test[:50], gz=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", mnist.y_test[:50], gz=True)
    loaded = data.load_mnist(tmp_path)
    assert np.array_equal(loaded.x_train, mnist.x_train[:300])
    assert np.array_equal(loaded.y_train, mnist.y_train[:300])
    assert np.array_equal(loaded.x_test, mnist.x_test[:50])
    assert np.array_equal(loaded.y_test, mnist.y_test[:50])


def _npz(path, **overrides):
    arrays = {
        "x_train": np.zeros((4, 28, 28), np.uint8),
        "y_train": np.zeros(4, np.uint8),
        "x_test": np.zeros((2, 28, 28), np.uint8),
        "y_test": np.zeros(2, np.uint8),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.npz", "does not exist"),
        (lambda p: (p / "bad.npz").write_bytes(b"not a zip file") and p / "bad.npz", "not a readable .npz"),
        (lambda p: _npz(p / "keys.npz", y_test=None), "lacks y_test"),
        (lambda p: _npz(p / "shape.npz", x_train=np.zeros((4, 32, 32), np.uint8)), "expected (N, 28, 28)"),
        (lambda p: _npz(p / "dtype.npz", x_train=np.zeros((4, 28, 28), np.float32)), "expected uint8"),
        (lambda p: _npz(p / "labels.npz", y_train=np.zeros(3, np.uint8)), "incomplete"),
        (lambda p: p, "has no train-images-idx3-ubyte"),  # an empty folder
    ],
)
def test_bad_files_get_an_error_naming_the_fix(tmp_path, make, message):
    with pytest.raises(DcganError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.load_mnist(make(tmp_path))


def test_truncated_or_foreign_idx_files_are_refused(tmp_path):
    write_idx(tmp_path / "images", np.zeros((10, 28, 28), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "images").read_bytes()[:-5])
    with pytest.raises(DcganError, match="truncated"):
        data.read_idx(tmp_path / "short")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(DcganError, match="not an IDX file"):
        data.read_idx(tmp_path / "png")


def test_train_size_beyond_the_data_is_refused(mnist_path):
    with pytest.raises(DcganError, match="exceeds the 24345 training images"):
        data.training_images(data.load_mnist(mnist_path), train_size=30_000)


def test_epoch_pipeline_is_a_pure_function_of_seed_and_epoch():
    images = np.arange(10 * 28 * 28, dtype=np.float32).reshape(10, 28, 28, 1)
    labels = np.arange(10, dtype=np.int32)  # label i belongs to image i

    def first_pixels(seed, epoch, skip=0):
        batches = list(data.make_dataset(images, labels, 3, seed, epoch, skip))
        for batch, batch_labels in batches:  # labels travel with their images
            assert (batch[:, 0, 0, 0].numpy() == batch_labels.numpy() * 28 * 28).all()
        return [batch[:, 0, 0, 0].numpy().tolist() for batch, _ in batches]

    epoch0 = first_pixels(1, 0)
    assert len(epoch0) == data.steps_per_epoch(10, 3) == 3  # the partial last batch is dropped
    assert epoch0 == first_pixels(1, 0)
    assert epoch0 != first_pixels(1, 1) and epoch0 != first_pixels(2, 0)
    assert first_pixels(1, 0, skip=2) == epoch0[2:]  # resuming mid-epoch sees the same remaining batches
    assert len(set(sum(epoch0, []))) == 9  # no image repeats within an epoch


def test_failed_download_names_the_offline_option(monkeypatch):
    import keras

    def no_network():
        raise Exception("URL fetch failure: Name or service not known")  # what Keras raises offline

    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_network)
    with pytest.raises(DcganError, match="could not download MNIST .*pass --data PATH"):
        data.load_mnist(None)
