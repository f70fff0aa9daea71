"""Reading MNIST or Fashion-MNIST (Keras download, Keras-layout ``.npz``, or the official IDX files),
scaling it to [-1, 1], and the ``tf.data`` pipeline that feeds training batches.

Both datasets share one layout: 28x28 uint8 images in ten classes, the same IDX file names, a Keras
downloader of the same name (``keras.datasets.<name>``). `DATASETS` holds what differs (display name,
class names). A folder of image files (``--dataset folder``, see `image_folder`) is read into the same
layout; its `DatasetInfo` (class names from its subfolders, its identity) is then a value the `Mnist`
carries rather than a registry entry, and `dataset_of_run` finds it again from a run folder.

The pipeline is a pure function of ``(seed, epoch)``: each epoch's shuffle order is derived from
them, so a run resumed in the middle of an epoch sees exactly the batches it would have seen.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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


IMAGE_FOLDER = "folder"  # the --dataset of a folder of image files (image_folder.py); not in DATASETS


@dataclass(frozen=True)
class DatasetInfo:
    """What one dataset of the MNIST layout is called and how its classes are named."""

    title: str  # as printed: "MNIST", "Fashion-MNIST", "image folder letters"
    class_names: tuple[str, ...]  # label i is class_names[i]
    item: str  # what one image is, for messages: "digit", "image"
    # An image folder's identity (`image_folder.folder_identity`); None for the named datasets, which
    # --dataset and --data identify.
    identity: str | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> DatasetInfo:
        return cls(
            title=str(record["title"]),
            class_names=tuple(str(name) for name in record["class_names"]),
            item=str(record.get("item", "image")),
            identity=record.get("identity"),
        )


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
    dataset: str = "mnist"  # a key of DATASETS, or IMAGE_FOLDER
    info: DatasetInfo = None  # type: ignore[assignment]  # None: DATASETS[dataset]'s

    def __post_init__(self) -> None:
        if self.info is None:
            object.__setattr__(self, "info", DATASETS[self.dataset])


def is_image_folder(path: str | Path | None) -> bool:
    """Whether ``--data path`` is a folder of image files rather than a folder of the IDX files."""
    if path is None or not Path(path).is_dir():
        return False
    name = IDX_FILES["x_train"]
    return not any((Path(path) / candidate).exists() for candidate in (name, f"{name}.gz"))


def resolve_dataset(path: str | Path | None, dataset: str) -> str:
    """The --dataset ``path`` holds: ``folder`` for a folder of images given with the default ``mnist``."""
    return IMAGE_FOLDER if dataset == "mnist" and is_image_folder(path) else dataset


def load_mnist(path: str | Path | None = None, dataset: str = "mnist") -> Mnist:
    """Load ``dataset`` (MNIST or Fashion-MNIST) from ``path`` (an ``.npz`` file or an IDX folder), or
    download it with Keras when ``path`` is None; ``dataset`` ``folder``: read the folder of images ``path``."""
    if dataset == IMAGE_FOLDER:
        from dcgan_tf.image_folder import load_image_folder  # Keras' image loading, only when asked for

        if path is None or not Path(path).is_dir():
            raise DcganError(f"--dataset folder needs --data FOLDER, a folder of images (got {path})")
        return load_image_folder(path)
    if dataset not in DATASETS:
        raise DcganError(f"unknown --dataset {dataset!r}: choose from {', '.join(DATASETS)} or {IMAGE_FOLDER}")
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


def check_trainable(
    mnist: Mnist,
    batch_size: int,
    train_size: int | None,
    max_classes: int | None,
    evaluates: bool,
    clusters: int | None = None,
) -> None:
    """Refuse, in one line and before anything is written, data a run cannot train on: fewer training images
    than one batch, or than self-conditioning's ``clusters``; for a conditional model (``max_classes``: its limit,
    None for unconditional ones) one class or more than it allows; ``evaluates`` (--eval-every) with one class
    or nothing held out."""
    info, count = mnist.info, len(mnist.x_train[:train_size])
    where = "its training split" if mnist.dataset == IMAGE_FOLDER else "the training set"
    if count < batch_size:  # an epoch would train nothing (config.py refuses a --train-size under one batch)
        raise DcganError(
            f"{info.title}: {where} has {count} {info.item}s, fewer than one batch of {batch_size}: pass "
            f"--batch-size {count} or less, or add images"
        )
    if clusters is not None and count < clusters:  # k-means needs an image for each centre
        raise DcganError(
            f"{info.title}: {where} has {count} {info.item}s, fewer than --clusters {clusters}: pass "
            f"--clusters {count} or less, or add images"
        )
    if max_classes is not None and info.num_classes < 2:
        raise DcganError(
            f"{info.title} is one class (no class subfolders), and a conditional model needs labelled classes: put "
            "the images into one subfolder per class, or train an unconditional --model (dcgan, dense)"
        )
    if max_classes is not None and info.num_classes > max_classes:
        raise DcganError(
            f"{info.title} has {info.num_classes} classes, more than the {max_classes} a conditional model allows: "
            "merge classes, or train an unconditional --model (dcgan, dense)"
        )
    if evaluates and info.num_classes < 2:
        raise DcganError(
            f"{info.title} is one class (no class subfolders), and --eval-every needs labelled classes to train "
            "its evaluator: put the images into one subfolder per class, or drop --eval-every"
        )
    if evaluates and len(mnist.x_test) <= 3:
        raise DcganError(
            f"{info.title} holds out {len(mnist.x_test)} images (every tenth of a class), too few for --eval-every: "
            "add images (at least ten per class) or drop --eval-every"
        )


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Full batches per epoch; the remainder is dropped so every step has the same static shape."""
    return num_images // batch_size


def epoch_order(num_images: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffle order of one epoch, a pure function of (seed, epoch) so that resuming repeats it."""
    return np.random.default_rng([seed, epoch]).permutation(num_images)


def dataset_of_run(run_dir: str | Path, saved: dict[str, Any] | None) -> DatasetInfo:
    """The `DatasetInfo` a run was trained on, from its ``config.json`` (``saved``): a named dataset's
    registry entry, or the image folder's description that training recorded in the run folder."""
    saved = saved or {}
    dataset = saved.get("dataset", "mnist")
    if dataset == IMAGE_FOLDER:
        from dcgan_tf.image_folder import read_run_dataset

        return read_run_dataset(run_dir)
    return DATASETS.get(dataset, DATASETS["mnist"])


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
