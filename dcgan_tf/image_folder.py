"""A folder of image files as a dataset (``--data FOLDER``, which implies ``--dataset folder``).

This module owns turning a folder of pictures into the MNIST layout the rest of the package trains on
(`data.Mnist`: uint8 (N, 28, 28) images and labels, a training split and a held-out split), and the
folder's description (`data.DatasetInfo`: class names, identity) that a run records beside its
config.json as ``dataset.json``, so that resuming, ``sample`` and ``evaluate`` find the classes again
even after the images have moved. The rules, also in docs/own-images.md:

- Files: ``.png``, ``.jpg``/``.jpeg``, ``.bmp``, ``.gif`` (any case; a GIF's first frame), any size,
  colour or grey; other files and hidden ones (``.name``) are ignored.
- Classes: each subfolder holding images is a class, named by the subfolder (sorted by name; label i
  is the i-th name), its images found at any depth below it. A folder with images only at its top is
  one class, named after the folder: only unconditional models train on it. Images both at the top
  and in subfolders are refused (which class would the top ones be?).
- Reading: Keras' own loader (`keras.utils.load_img`, Pillow underneath) converts to grey (Pillow's
  ITU-R 601-2 luma, L = 0.299 R + 0.587 G + 0.114 B, in integer arithmetic, so grey stays exact).
- Resizing: a 28x28 image is taken as it is, so 28x28 grey images come through bit for bit as from an
  ``.npz``. Any other size keeps its aspect ratio: `keras.ops.image.resize` with
  ``pad_to_aspect_ratio=True`` pads the short side evenly to a square with the median of the image's
  border pixels (its background, dark or light), then resizes to 28x28, bilinear with antialiasing.
  No colour inversion: dark-on-light images stay so, and the generator learns them as they are.
- Unreadable files (an image extension, but Pillow cannot decode them) are skipped with one warning
  that counts them; a class left with no readable image, or a folder with none, is refused.
- Held-out split, for ``evaluate`` and ``--eval-every``: within each class, in sorted path order,
  every tenth image (the 10th, 20th, ...) is held out; classes of fewer than ten images hold none out.
- Training order: the classes' training images interleaved (first image of every class, then the
  second, ...), so ``--train-size N`` takes the first N in that order and keeps the classes balanced.
- Identity: a hash of `READER_VERSION` and, in that order, each file's path relative to the folder
  with the SHA-256 of its contents. The contents, not sizes and times: copying or touching the folder
  keeps its identity, while any changed, added, removed or renamed image changes it, and a run
  refuses to resume on a folder whose identity differs from the one in its ``dataset.json``.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from dcgan_tf.data import IMAGE_FOLDER, IMAGE_SHAPE, DatasetInfo, Mnist
from dcgan_tf.errors import DcganError
from dcgan_tf.files import write_text

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")  # what keras.utils.image_dataset_from_directory reads
HOLD_OUT_EVERY = 10  # every tenth image of a class is held out for evaluation
RUN_DATASET_FILE = "dataset.json"  # the folder's description, beside config.json in the run folder
# Part of the identity: bump when the reading or resizing rule changes, since the same files would then
# give other training images.
READER_VERSION = 1


def load_image_folder(folder: str | Path) -> Mnist:
    """Read the images of ``folder`` into an `Mnist` (see the module's rules); one-line `DcganError`s."""
    folder = Path(folder)
    classes = find_classes(folder)
    digest = hashlib.sha256(f"dcgan_tf image folder v{READER_VERSION}\n".encode())
    pixels: list[list[np.ndarray]] = []
    unreadable: list[tuple[str, str]] = []
    total = 0
    for name, files in classes.items():
        readable = []
        for path in files:
            relative = path.relative_to(folder).as_posix()
            content = path.read_bytes()
            digest.update(f"{relative}\0{hashlib.sha256(content).hexdigest()}\n".encode())
            total += 1
            try:
                readable.append(to_mnist_pixels(content))
            except Exception as err:  # noqa: BLE001 - whatever Pillow raises, the file is not an image we can read
                unreadable.append((relative, _reason(err)))
        if not readable and len(classes) > 1:
            raise DcganError(
                f"--data {folder}: class folder {name!r} has no readable image (e.g. {unreadable[-1][0]}: "
                f"{unreadable[-1][1]}): add images to it or remove it"
            )
        pixels.append(readable)
    if not any(pixels):
        raise DcganError(
            f"--data {folder}: none of its {total} image files could be read (e.g. {unreadable[0][0]}: "
            f"{unreadable[0][1]}): give a folder of PNG, JPEG, BMP or GIF images"
        )
    if unreadable:
        print(
            f"warning: skipped {len(unreadable)} of the {total} image files in {folder} that could not be read "
            f"as images (e.g. {unreadable[0][0]}: {unreadable[0][1]})",
            flush=True,
        )
    x_train, y_train, x_test, y_test = _split(pixels)
    info = DatasetInfo(folder.name, tuple(classes), "image", identity=digest.hexdigest()[:16])
    return Mnist(x_train, y_train, x_test, y_test, dataset=IMAGE_FOLDER, info=info)


def _reason(err: Exception) -> str:
    """Pillow's complaint in a few words (it names the in-memory file object, which says nothing)."""
    text = (str(err).splitlines() or [type(err).__name__])[0]
    return "not an image Pillow can decode" if text.startswith("cannot identify image file") else text[:120]


def find_classes(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files in sorted path order: subfolders as classes, or the folder as one."""
    if not folder.is_dir():
        raise DcganError(f"--data {folder} is not a folder: give a folder of images")
    top = _images(folder.iterdir())
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = {p.name: _images(p.rglob("*"), below=p) for p in subfolders}
    classes = {name: files for name, files in classes.items() if files}
    if top and classes:
        raise DcganError(
            f"--data {folder} holds images both at its top (e.g. {top[0].name}) and in class subfolders "
            f"({', '.join(classes)}): move the top ones into a class folder, or give a folder of one kind"
        )
    if not top and not classes:
        raise DcganError(
            f"--data {folder} holds no images (PNG, JPEG, BMP or GIF files, in class subfolders or at its top) "
            "and no MNIST IDX files: point --data at your images"
        )
    return classes or {folder.name: top}


def _images(paths, below: Path | None = None) -> list[Path]:
    """The image files among ``paths``, sorted, skipping hidden files and anything in a hidden folder."""

    def hidden(path: Path) -> bool:
        parts = path.relative_to(below).parts if below is not None else (path.name,)
        return any(part.startswith(".") for part in parts)

    return sorted(p for p in paths if p.suffix.lower() in EXTENSIONS and p.is_file() and not hidden(p))


def to_mnist_pixels(content: bytes) -> np.ndarray:
    """One image file's bytes -> uint8 (28, 28) grey, by the module's resize rule (Keras' loader)."""
    import keras  # only a folder of images needs Keras' image utilities

    image = keras.utils.load_img(io.BytesIO(content), color_mode="grayscale")
    if image.mode in ("I", "I;16"):  # 16-bit grey stays 16-bit in Pillow: bring it to 0-255 first
        array = keras.utils.img_to_array(image) / 257.0
    elif image.size == IMAGE_SHAPE[::-1]:
        return np.asarray(image, dtype=np.uint8).copy()  # 28x28 grey: exactly as stored
    else:
        array = keras.utils.img_to_array(image)  # (H, W, 1) float32 0-255
    if array.shape[:2] != IMAGE_SHAPE:
        border = np.concatenate([array[0, :, 0], array[-1, :, 0], array[:, 0, 0], array[:, -1, 0]])
        array = keras.ops.image.resize(
            array,
            IMAGE_SHAPE,
            interpolation="bilinear",
            antialias=True,
            pad_to_aspect_ratio=True,
            fill_value=float(np.median(border)),  # pad with the background, not always black
        )
    return np.clip(np.rint(np.asarray(array)[..., 0]), 0, 255).astype(np.uint8)


def _split(pixels: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per class, every `HOLD_OUT_EVERY`-th image held out; the training images interleaved across classes."""
    train = [[im for i, im in enumerate(images) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1] for images in pixels]
    held = [[im for i, im in enumerate(images) if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1] for images in pixels]
    order = [(k, c) for k in range(max(map(len, train))) for c in range(len(train)) if k < len(train[c])]
    x_train = np.stack([train[c][k] for k, c in order])
    y_train = np.array([c for _, c in order], np.uint8)
    y_test = np.array([c for c, images in enumerate(held) for _ in images], np.uint8)
    x_test = (
        np.stack([im for images in held for im in images]) if len(y_test) else np.zeros((0, *IMAGE_SHAPE), np.uint8)
    )
    return x_train, y_train, x_test, y_test


def write_run_dataset(run_dir: str | Path, info: DatasetInfo, source: str) -> None:
    """Record the folder's description in the run folder (``dataset.json``), for resuming, sample and evaluate."""
    record = {**info.to_dict(), "source": source}
    write_text(Path(run_dir) / RUN_DATASET_FILE, json.dumps(record, indent=2) + "\n")


def read_run_dataset(run_dir: str | Path) -> DatasetInfo:
    """The image folder's description a run recorded (`write_run_dataset`); one-line error if it is missing."""
    path = Path(run_dir) / RUN_DATASET_FILE
    try:
        return DatasetInfo.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise DcganError(
            f"{path} is missing, so this image-folder run's classes are unknown: copy dataset.json from the "
            "training run into that folder"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DcganError(f"{path} is unreadable ({err}): copy dataset.json from the training run again") from None


def prepare_run_dataset(run_dir: str | Path, info: DatasetInfo, folder: str, fresh: bool, write: bool) -> None:
    """Before training on an image folder: a run folder holding checkpoints must have been trained on a folder
    of the same identity (else one-line refusal); a new run (or ``fresh``) records ``info`` if ``write``."""
    from dcgan_tf.checkpoints import list_checkpoints

    if not fresh and list_checkpoints(run_dir):
        check_same_folder(run_dir, info, folder)
    elif write:
        write_run_dataset(run_dir, info, folder)


def check_same_folder(run_dir: str | Path, info: DatasetInfo, folder: str) -> None:
    """Refuse to go on with a run folder whose recorded image folder had another identity than ``info``'s."""
    recorded = read_run_dataset(run_dir)
    if recorded.identity != info.identity:
        raise DcganError(
            f"{run_dir} was trained on an image folder with identity {recorded.identity} "
            f"({recorded.num_classes} classes) but --data {folder} now has identity {info.identity} "
            f"({info.num_classes} classes): its images changed; restore them to resume, or use --fresh (moves the "
            "run to archive/) or another --checkpoint-dir"
        )
