"""Using a trained generator: seeded noise, sample files, and walks through the latent space.

This module owns what ``python -m dcgan_tf.sample`` and ``python -m dcgan_tf.interpolate`` do, as
plain functions the notebook can call too:

- `generate` runs a generator on noise, with the labels a conditional one is asked for (by default
  every class in turn); `grid_noise` and `grid_images` make the fixed grid training shows each epoch.
  Whether a generator takes labels, and how many, is asked of `models` here and nowhere else.
- `latent_noise` draws noise from a NumPy ``default_rng(seed)``, so the same seed gives the same
  digits on any machine (CPU or GPU draw the same numbers; only the generator runs on the device).
- `write_samples` writes images as one ``.png`` grid, an ``.npz`` of uint8 digits, or a folder of
  single 28x28 PNGs, chosen by `output_kind` from the destination's name.
- `lerp` / `slerp` / `latent_walks` build straight and great-circle paths between random points;
  `write_walks` draws them as a grid (one row per walk) and a looping GIF.
- `sample_checkpoint` / `interpolate_checkpoint` do the whole job from a training run's folder.

Matplotlib (through `visualize`) and TensorFlow are imported inside the functions that need them,
so `output_kind` can validate command-line flags instantly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dcgan_tf.config import require_positive
from dcgan_tf.data import to_uint8
from dcgan_tf.errors import DcganError
from dcgan_tf.files import atomic_write, ensure_writable

# Destination kinds of `write_samples`, by the name of --out.
PNG, NPZ, FOLDER = "png", "npz", "folder"
METHODS = ("slerp", "lerp")
GIF_SECONDS_PER_FRAME = 0.1
GRID_EXAMPLES = 16  # an unconditional generator's epoch grid (4x4)
GRID_COLUMNS = 10  # a conditional one's: a row per class, each column one noise vector drawn as every class
GRID_NOISE = 32  # the vectors a conditional run stores: one per class up to 32, as before GRID_COLUMNS (restorable)


def generate(generator, noise, labels: np.ndarray | None = None, batch_size: int = 1024) -> np.ndarray:
    """Generator outputs (N, 28, 28, 1) in [-1, 1] for noise (N, noise_dim), in inference mode.

    A conditional generator draws the classes ``labels`` (N,); by default `cycled_labels` (0, 1, ..., 9, 0, ...).
    """
    import tensorflow as tf

    from dcgan_tf.models import model_inputs

    noise = tf.convert_to_tensor(noise, tf.float32)
    count = int(noise.shape[0])
    labels = cycled_labels(generator, count) if labels is None else labels
    if labels is not None:
        labels = tf.convert_to_tensor(np.asarray(labels), tf.int32)
    outputs = []
    for i in range(0, count, batch_size):
        batch_labels = None if labels is None else labels[i : i + batch_size]
        outputs.append(generator(model_inputs(generator, noise[i : i + batch_size], batch_labels), training=False))
    return np.concatenate([np.asarray(o) for o in outputs]) if outputs else np.zeros((0, 28, 28, 1), np.float32)


def cycled_labels(generator, num: int) -> np.ndarray | None:
    """Labels (num,) asking a conditional generator for each class in turn (0, 1, ..., 0, ...); None: it takes none."""
    from dcgan_tf.models import num_classes_of

    classes = num_classes_of(generator)
    return (np.arange(num) % classes).astype(np.int32) if classes else None


def grid_noise(generator, seed: int) -> np.ndarray:
    """The fixed noise (K, noise_dim) of a run's epoch grids: `GRID_EXAMPLES` vectors, or for a conditional
    generator one per class up to `GRID_NOISE` (see `grid_images`)."""
    from dcgan_tf.models import num_classes_of

    count = min(num_classes_of(generator), GRID_NOISE) or GRID_EXAMPLES
    return np.random.default_rng([seed, 1 << 20]).standard_normal((count, noise_dim_of(generator))).astype(np.float32)


def grid_images(generator, noise: np.ndarray) -> tuple[np.ndarray, int]:
    """The epoch grid's images for fixed ``noise`` (K, noise_dim), and its column count.

    Unconditional: one digit per noise vector in a square grid. Conditional: row ``c`` draws class
    ``c`` from each of the first `GRID_COLUMNS` noise vectors, so each column keeps one style across classes.
    """
    from dcgan_tf.models import num_classes_of

    classes = num_classes_of(generator)
    if not classes:
        return generate(generator, noise), int(np.ceil(np.sqrt(len(noise))))
    noise = noise[:GRID_COLUMNS]  # a 50-cluster grid of 50 x 50 digits would be too large to look at
    rows = np.tile(noise, (classes, 1))  # (CK, noise_dim): the K vectors once per class
    labels = np.repeat(np.arange(classes), len(noise))  # (CK,) 0..0, 1..1, ...
    return generate(generator, rows, labels), len(noise)


def output_kind(out: str | Path) -> str:
    """``png``, ``npz`` or ``folder`` for a sample destination, or `DcganError` for anything else.

    A name ending in ``/``, an existing folder, or a name without an extension is a folder.
    """
    text = str(out)
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir() or not path.suffix:
        return FOLDER
    suffix = path.suffix.lower()
    if suffix == ".png":
        return PNG
    if suffix == ".npz":
        return NPZ
    raise DcganError(
        f"--out {text}: unknown output type {path.suffix!r}; use FILE.png (one grid), FILE.npz "
        "(uint8 array 'images') or DIR/ (one PNG per digit)"
    )


def latent_noise(num: int, noise_dim: int, seed: int) -> np.ndarray:
    """Standard-normal noise (num, noise_dim) float32, a pure function of ``seed``."""
    return np.random.default_rng(seed).standard_normal((num, noise_dim), dtype=np.float32)


def sample(generator, num: int, seed: int = 0, digit: int | None = None) -> np.ndarray:
    """``num`` generated digits (num, 28, 28, 1) in [-1, 1] from the noise of ``seed``.

    A conditional generator draws class ``digit``, or with None one row per class (0s to 9s for MNIST;
    ``num`` rounded up to a multiple of the class count, see `digit_labels`).
    """
    return sample_with_labels(generator, num, seed, digit)[0]


def sample_with_labels(
    generator, num: int, seed: int = 0, digit: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """`sample`'s images and, for a conditional generator, the digit labels they were drawn as (else None).

    Raises `DcganError` for a ``digit`` outside the generator's classes, or any ``digit`` for an unconditional
    generator.
    """
    from dcgan_tf.models import num_classes_of

    if not check_digit_for(generator, digit):
        return generate(generator, latent_noise(num, noise_dim_of(generator), seed)), None
    labels = digit_labels(num, digit, num_classes_of(generator))
    return generate(generator, latent_noise(len(labels), noise_dim_of(generator), seed), labels), labels


def digit_labels(num: int, digit: int | None, num_classes: int) -> np.ndarray:
    """Labels for ``num`` conditional samples: all ``digit``, or with None a row of 0s, of 1s, ..., per class.

    With None, ``num`` is rounded up to a multiple of ``num_classes`` so every class gets as many samples.
    """
    check_digit(digit, num_classes)
    if digit is not None:
        return np.full(num, digit, np.int32)
    return np.repeat(np.arange(num_classes, dtype=np.int32), -(-num // num_classes))


def check_digit_for(generator, digit: int | None) -> bool:
    """Whether ``generator`` is conditional; raises `DcganError` if it is not but a ``digit`` was asked for."""
    from dcgan_tf.models import num_classes_of

    if num_classes_of(generator):
        return True
    if digit is not None:
        raise DcganError(
            "--digit needs a conditional model, and this run's generator is unconditional: "
            "train one with --model conditional, or leave out --digit"
        )
    return False


def check_digit(digit: int | None, num_classes: int = 10) -> None:
    """Raise `DcganError` unless ``digit`` is None or a class index 0 to ``num_classes - 1``."""
    if digit is not None and not 0 <= digit < num_classes:
        raise DcganError(f"--digit must be a class 0-{num_classes - 1} or 'all' (got {digit})")


def parse_digit(text: str | None) -> int | str | None:
    """The ``--digit`` flag's value: None for unset or ``all``, an int for a number, else a class name
    (checked against the run's classes by `class_index` once the run is known)."""
    if text is None or text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        return text


def class_index(choice: int | str | None, class_names: tuple[str, ...]) -> int | None:
    """``--digit``'s class as a label: a class name of the run (an image folder's subfolder, "Sandal", "7"),
    else a number as the class index; None stays None (every class)."""
    if choice is None:
        return None
    if str(choice) in class_names:  # a name first: an image folder's classes may be named "1", "2", ...
        return class_names.index(str(choice))
    if isinstance(choice, int) and 0 <= choice < len(class_names):
        return choice
    shown = ", ".join(class_names) if len(class_names) <= 12 else ", ".join(class_names[:12]) + ", ..."
    raise DcganError(
        f"--digit must name one of this run's classes ({shown}) or be a class 0-{len(class_names) - 1}, or 'all' "
        f"(got {str(choice)!r})"
    )


def run_class(checkpoint_dir: str | Path, generator, choice: int | str | None) -> int | None:
    """``--digit`` resolved against the classes the run in ``checkpoint_dir`` was trained on (None: all)."""
    from dcgan_tf.config import read_saved_config
    from dcgan_tf.data import dataset_of_run

    if not check_digit_for(generator, choice):
        return None
    return class_index(choice, dataset_of_run(checkpoint_dir, read_saved_config(checkpoint_dir)).class_names)


def noise_dim_of(generator) -> int:
    """The length of the noise vector the generator takes."""
    return int(generator.inputs[0].shape[-1])  # inputs: [noise] or [noise, label]


def write_samples(
    images: np.ndarray, out: str | Path, labels: np.ndarray | None = None, cols: int | None = None
) -> list[Path]:
    """Write images (N, 28, 28[, 1]) in [-1, 1] to ``out`` as its name says (see `output_kind`).

    ``.png``: one grid (``cols`` wide, square by default), dark digits on white, 4x enlarged.
    ``.npz``: ``images`` uint8 (N, 28, 28), 0-255 white on black exactly like MNIST's ``x_train``, and
    ``labels`` (N,) when given (a conditional model's requested digits). Folder: ``sample_0000.png``
    ... , one 28x28 MNIST-style PNG each. Returns the files written. Files are replaced atomically,
    so a failure never leaves a half-written file.
    """
    kind = output_kind(out)
    path = Path(out)
    if kind == FOLDER:
        import imageio.v3 as iio

        folder = ensure_writable(path, "--out folder")
        pixels = to_uint8(images)  # (N, 28, 28)
        width = max(4, len(str(len(pixels) - 1)))
        written = []
        for i, image in enumerate(pixels):
            target = folder / f"sample_{i:0{width}d}.png"
            with atomic_write(target) as tmp:
                iio.imwrite(tmp, image, extension=".png")
            written.append(target)
        return written
    ensure_writable(path.parent, "--out")
    if kind == PNG:
        from dcgan_tf.visualize import save_grid

        return [save_grid(images, path, cols=cols)]
    arrays = {"images": to_uint8(images)} | ({} if labels is None else {"labels": np.asarray(labels)})
    with atomic_write(path) as tmp:
        # Write through a file object: np.savez given a name would append ".npz" to the temp name.
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return [path]


def sample_checkpoint(
    checkpoint_dir: str | Path,
    out: str | Path,
    num: int = 16,
    seed: int = 0,
    checkpoint: str | None = None,
    which: str | None = None,
    digit: int | str | None = None,
) -> list[Path]:
    """Restore a run's generator (``which``: ``ema``, ``raw`` or None, see `load_generator`), generate ``num``
    digits from ``seed`` (a conditional model: all of class ``digit``, a name or an index, or with None one row
    per class) and write them to ``out``."""
    from dcgan_tf.checkpoints import load_generator
    from dcgan_tf.models import num_classes_of

    require_positive("num", num)
    output_kind(out)  # reject a bad destination before the slow restore
    generator = load_generator(checkpoint_dir, checkpoint, which)
    label = run_class(checkpoint_dir, generator, digit)
    images, labels = sample_with_labels(generator, num, seed, label)
    rows_of_classes = labels is not None and label is None
    return write_samples(
        images, out, labels, cols=len(labels) // num_classes_of(generator) if rows_of_classes else None
    )


def lerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` evenly spaced points on the straight line from ``a`` to ``b`` (steps, D), both included."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]  # (steps, 1)
    path = (1.0 - t) * a.astype(np.float64) + t * b.astype(np.float64)
    return _pin_ends(path.astype(np.float32), a, b)


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points on the great-circle arc from ``a`` to ``b`` (steps, D), both included.

    The norm varies smoothly between the endpoints' norms instead of dipping in the middle as on a
    straight line; Gaussian noise lives near a sphere, so the middle digits look less washed out.
    """
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:  # (anti)parallel: the arc is undefined, the line is as good
        return lerp(a, b, steps)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]  # (steps, 1)
    path = (np.sin((1.0 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)
    return _pin_ends(path.astype(np.float32), a, b)


def _pin_ends(path: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Rounding can move the endpoints by an ulp; pin them so a walk starts and ends exactly at
    # the random points (and so at exactly the digits those points generate).
    path[0], path[-1] = a, b
    return path


def latent_walks(num_walks: int, steps: int, noise_dim: int, seed: int = 0, method: str = "slerp") -> np.ndarray:
    """Noise (num_walks, steps, noise_dim): each walk goes between two fresh random points of ``seed``.

    The endpoints are ``latent_noise(2 * num_walks, noise_dim, seed)``: walk ``i`` goes from row
    ``2i`` to row ``2i + 1``.
    """
    check_walks(num_walks, steps, method)
    walk = slerp if method == "slerp" else lerp
    ends = latent_noise(2 * num_walks, noise_dim, seed)  # (2W, D)
    return np.stack([walk(ends[2 * i], ends[2 * i + 1], steps) for i in range(num_walks)])


def walk_images(
    generator, num_walks: int, steps: int, seed: int = 0, method: str = "slerp", digit: int | None = None
) -> np.ndarray:
    """The generator's digits along `latent_walks`: (num_walks, steps, 28, 28, 1) in [-1, 1].

    A conditional generator keeps the label fixed along each walk: ``digit``, or class ``i % classes``
    for walk ``i`` with None.
    """
    from dcgan_tf.models import num_classes_of

    noise = latent_walks(num_walks, steps, noise_dim_of(generator), seed, method)  # (W, S, D)
    labels = None
    if check_digit_for(generator, digit):
        check_digit(digit, num_classes_of(generator))
        per_walk = cycled_labels(generator, num_walks) if digit is None else np.full(num_walks, digit)
        labels = np.repeat(per_walk, steps)  # (W*S,) one label along each walk
    images = generate(generator, noise.reshape(num_walks * steps, -1), labels)  # (W*S, 28, 28, 1)
    return images.reshape(num_walks, steps, *images.shape[1:])


def check_walks(num_walks: int, steps: int, method: str) -> None:
    """Raise `DcganError` unless the walk settings make sense."""
    if method not in METHODS:
        raise DcganError(f"unknown interpolation --method {method!r}: choose one of {', '.join(METHODS)}")
    require_positive("walks", num_walks)
    if steps < 2:
        raise DcganError(f"--steps must be at least 2, the two endpoints (got {steps})")


def walk_frames(images: np.ndarray) -> list[np.ndarray]:
    """GIF frames for walk images (W, S, 28, 28, 1): frame t shows step t of every walk side by side.

    The walk plays forward then back, so the looping GIF never jumps.
    """
    from dcgan_tf.visualize import tile

    num_walks, steps = images.shape[:2]
    order = list(range(steps)) + list(range(steps - 2, 0, -1))
    return [tile(images[:, t], cols=num_walks) for t in order]


def write_walks(images: np.ndarray, png: str | Path, gif: str | Path | None = None) -> list[Path]:
    """Write walk images (W, S, 28, 28, 1) as a grid PNG (one row per walk) and an animated GIF.

    ``gif`` defaults to ``png`` with a ``.gif`` extension. Returns both paths.
    """
    from dcgan_tf.visualize import save_gif, save_grid

    png = Path(png)
    gif = Path(gif) if gif is not None else png.with_suffix(".gif")
    for path in (png, gif):
        ensure_writable(path.parent, "--out")
    num_walks, steps = images.shape[:2]
    save_grid(images.reshape(num_walks * steps, *images.shape[2:]), png, cols=steps)
    save_gif(walk_frames(images), gif, seconds_per_frame=GIF_SECONDS_PER_FRAME)
    return [png, gif]


def check_walk_out(out: str | Path) -> None:
    """Raise `DcganError` unless ``out`` names a PNG file (the GIF goes beside it)."""
    if Path(out).suffix.lower() != ".png":
        raise DcganError(f"--out {out}: the walk grid is a picture; give a file name ending in .png")


def interpolate_checkpoint(
    checkpoint_dir: str | Path,
    out: str | Path,
    walks: int = 8,
    steps: int = 10,
    seed: int = 0,
    method: str = "slerp",
    checkpoint: str | None = None,
    gif: str | Path | None = None,
    which: str | None = None,
    digit: int | str | None = None,
) -> list[Path]:
    """Restore a run's generator (``which``: ``ema``, ``raw`` or None, see `load_generator`) and write its latent
    walks as ``out`` (PNG grid) and a GIF; a conditional one keeps class ``digit`` (a name or an index) along
    every walk."""
    from dcgan_tf.checkpoints import load_generator

    check_walk_out(out)
    check_walks(walks, steps, method)  # before the slow restore
    generator = load_generator(checkpoint_dir, checkpoint, which)
    label = run_class(checkpoint_dir, generator, digit)
    return write_walks(walk_images(generator, walks, steps, seed, method, label), out, gif)
