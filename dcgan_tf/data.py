"""Reading MNIST or Fashion-MNIST (Keras download, Keras-layout ``.npz``, or the official IDX files),
scaling it to [-1, 1], and the ``tf.data`` pipeline that feeds training batches.

Both datasets share one layout: 28x28 uint8 images in ten classes, the same IDX file names, a Keras
downloader of the same name (``keras.datasets.<name>``). `DATASETS` holds what differs (display name,
class names).

The pipeline is a pure function of ``(seed, epoch)``: each epoch's shuffle order is derived from
them, so a run resumed in the middle of an epoch sees exactly the batches it would have seen.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcgan_tf.errors import DcganError

IMAGE_SHAPE = (28, 28)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The official IDX file names (https://yann.lecun.com/exdb/mnist/), each possibly gzipped.
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class DatasetInfo:
    """What one dataset of the MNIST layout is called and how its classes are named."""

    title: str  # as printed: "MNIST", "Fashion-MNIST"
    class_names: tuple[str, ...]  # label i is class_names[i]
    item: str  # what one image is, for messages: "digit", "image"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("MNIST", tuple("0123456789"), "digit"),
    "fashion_mnist": DatasetInfo(
        "Fashion-MNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        "image",
    ),
}


@dataclass(frozen=True)
class Mnist:
    """The four arrays of an MNIST-layout dataset as stored: uint8 images (N, 28, 28), uint8 labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    dataset: str = "mnist"  # a key of DATASETS

    @property
    def info(self) -> DatasetInfo:
        return DATASETS[self.dataset]


def load_mnist(path: str | Path | None = None, dataset: str = "mnist") -> Mnist:
    """Load ``dataset`` (MNIST or Fashion-MNIST) from ``path`` (an ``.npz`` file or an IDX folder), or
    download it with Keras when ``path`` is None."""
    if dataset not in DATASETS:
        raise DcganError(f"unknown --dataset {dataset!r}: choose from {', '.join(DATASETS)}")
    title = DATASETS[dataset].title
    if path is None:
        arrays = _download(dataset)
        source = f"keras.datasets.{dataset}"
    else:
        path = Path(path)
        if path.is_dir():
            arrays = _read_idx_folder(path, title)
        elif path.is_file():
            arrays = _read_npz(path, title)
        else:
            raise DcganError(f"--data {path} does not exist: give the path of the {title} .npz file or IDX folder")
        source = str(path)
    return _validated(arrays, source, dataset)


def _download(dataset: str) -> dict[str, np.ndarray]:
    import keras  # imported here so that reading local files never needs Keras

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, dataset).load_data()
    except Exception as err:  # noqa: BLE001 - any network or cache failure means the same to the user
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DcganError(
            f"could not download {DATASETS[dataset].title} ({reason}): pass --data PATH with a local .npz "
            "or a folder of the four IDX files"
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _read_npz(path: Path, title: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in NPZ_KEYS if key not in npz.files]
            if missing:
                raise DcganError(
                    f"{path} lacks {', '.join(missing)}: --data needs a Keras-layout {title} .npz "
                    f"with {', '.join(NPZ_KEYS)}"
                )
            return {key: npz[key] for key in NPZ_KEYS}
    except DcganError:
        raise
    except Exception as err:  # noqa: BLE001 - zipfile, pickle and OS errors all mean "not a readable npz"
        raise DcganError(
            f"{path} is not a readable .npz file ({err}): re-download it or point --data elsewhere"
        ) from None


def _read_idx_folder(folder: Path, title: str) -> dict[str, np.ndarray]:
    arrays = {}
    for key, name in IDX_FILES.items():
        candidates = [folder / name, folder / f"{name}.gz"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise DcganError(f"{folder} has no {name} (or {name}.gz): --data needs the four official {title} IDX files")
        arrays[key] = read_idx(found)
    return arrays


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) of unsigned bytes into an array of its stated shape."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:  # zlib.error: a corrupt compressed stream
        raise DcganError(f"{path} is unreadable ({err}): re-download the IDX files") from None
    # Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then
    # one big-endian uint32 per dimension.
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DcganError(f"{path} is not an IDX file of unsigned bytes: re-download the official IDX files")
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise DcganError(f"{path} is truncated inside its header: re-download the official IDX files")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    data = np.frombuffer(raw[header:], dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise DcganError(f"{path} is truncated (header says {shape}, holds {data.size} bytes): re-download it")
    return data.reshape(shape)


def _validated(arrays: dict[str, np.ndarray], source: str, dataset: str) -> Mnist:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
            raise DcganError(f"{source}: x_{split} has shape {x.shape}, expected (N, 28, 28): use MNIST-shaped data")
        if x.dtype != np.uint8:
            raise DcganError(f"{source}: x_{split} has dtype {x.dtype}, expected uint8 pixels 0-255: use raw MNIST")
        if len(x) == 0 or y.shape != (len(x),):
            raise DcganError(
                f"{source}: x_{split} has {len(x)} images but y_{split} has shape {y.shape}: "
                "the file is incomplete; re-download it"
            )
        classes = DATASETS[dataset].num_classes
        if not np.issubdtype(y.dtype, np.integer):
            raise DcganError(
                f"{source}: y_{split} has dtype {y.dtype}, expected integer labels 0-{classes - 1}: use the dataset's "
                "official labels"
            )
        outside = (y < 0) | (y >= classes)
        if outside.any():
            raise DcganError(
                f"{source}: y_{split} holds {int(outside.sum()):,} labels outside 0-{classes - 1} (e.g. "
                f"{int(y[outside][0])} at index {int(np.argmax(outside))}): use the dataset's official labels"
            )
    return Mnist(**{key: arrays[key] for key in NPZ_KEYS}, dataset=dataset)


def to_model_range(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) in [0, 255] -> float32 (N, 28, 28, 1) in [-1, 1], the generator's tanh range."""
    return (images.astype(np.float32)[..., None] - 127.5) / 127.5


def to_uint8(images: np.ndarray) -> np.ndarray:
    """The inverse of `to_model_range`: float images in [-1, 1] (any trailing 1-channel) -> uint8."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    return np.clip(np.rint(images * 127.5 + 127.5), 0, 255).astype(np.uint8)


def training_images(mnist: Mnist, train_size: int | None) -> np.ndarray:
    """The first ``train_size`` training images (all when None), scaled for the models."""
    if train_size is not None and train_size > len(mnist.x_train):
        raise DcganError(
            f"--train-size {train_size} exceeds the {len(mnist.x_train)} training images available: lower it"
        )
    return to_model_range(mnist.x_train[:train_size])


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Full batches per epoch; the remainder is dropped so every step has the same static shape."""
    return num_images // batch_size


def epoch_order(num_images: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffle order of one epoch, a pure function of (seed, epoch) so that resuming repeats it."""
    return np.random.default_rng([seed, epoch]).permutation(num_images)


def training_labels(mnist: Mnist, train_size: int | None) -> np.ndarray:
    """The digit labels (N,) int32 of `training_images`, for conditional models."""
    return mnist.y_train[:train_size].astype(np.int32)


def make_dataset(images, labels, batch_size: int, seed: int, epoch: int, skip_batches: int = 0):
    """The ``tf.data`` pipeline of one epoch: shuffled full batches of ``(images, labels)``, starting
    after ``skip_batches`` (to resume mid-epoch), prefetched so the next batch is ready while a step runs.

    ``images`` is a float32 tensor (N, 28, 28, 1) and ``labels`` an int32 tensor (N,), both created
    once per run; batches are gathered from them by index, so the pixels are never copied into the
    pipeline or reshuffled in a buffer.
    """
    import tensorflow as tf

    order = epoch_order(int(images.shape[0]), seed, epoch)
    return (
        tf.data.Dataset.from_tensor_slices(order)
        .batch(batch_size, drop_remainder=True)
        .skip(skip_batches)
        # ((B, 28, 28, 1), (B,))
        .map(lambda index: (tf.gather(images, index), tf.gather(labels, index)), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
