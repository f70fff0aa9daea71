"""A folder of images as the dataset (--data FOLDER): reading, the resize rule, the held-out split, training,
resuming, sampling and evaluating by class name, and every bad folder refused in one line with nothing written.

The folders are real MNIST digits written by the tests: 28x28 grey PNG files, some as JPEG, some larger and
in colour.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import assert_one_line_error, snapshot

from dcgan_tf import data
from dcgan_tf.config import TrainConfig
from dcgan_tf.errors import DcganError
from dcgan_tf.evaluate import EvaluateConfig
from dcgan_tf.image_folder import HOLD_OUT_EVERY, load_image_folder, to_mnist_pixels
from dcgan_tf.training import fit

CLASSES = {"one": 1, "seven": 7, "zero": 0}  # folder name -> MNIST digit; sorted names give labels 0, 1, 2
PER_CLASS = 40  # 36 training and 4 held-out images each: 108 training images, 3 batches of 32


@pytest.fixture(scope="module")
def digits(mnist_path) -> dict[str, np.ndarray]:
    """``PER_CLASS`` real MNIST training digits (uint8 28x28) of each class."""
    with np.load(mnist_path) as full:
        x, y = full["x_train"][:3000], full["y_train"][:3000]
    return {name: x[y == digit][:PER_CLASS] for name, digit in CLASSES.items()}


def write_folder(root: Path, digits: dict[str, np.ndarray], mixed: bool = True) -> Path:
    """One subfolder per class of PNG files; with ``mixed`` every 5th (from the 2nd) a JPEG and every 5th
    (from the 3rd) a 56x42 colour PNG (the digit enlarged 1.5x, tinted, on a 56x42 canvas), plus a notes file."""
    for name, images in digits.items():
        (root / name).mkdir(parents=True)
        for i, image in enumerate(images):
            if mixed and i % 5 == 1:
                iio.imwrite(root / name / f"{i:03d}.jpg", image, extension=".jpg", quality=95)
            elif mixed and i % 5 == 2:
                big = np.kron(image, np.ones((3, 3), np.uint8))[::2, ::2]  # (42, 42)
                canvas = np.zeros((42, 56), np.uint8)
                canvas[:, 7:49] = big
                iio.imwrite(root / name / f"{i:03d}.png", np.stack([canvas, canvas // 2, canvas], axis=-1))
            else:
                iio.imwrite(root / name / f"{i:03d}.png", image)
    (root / "notes.txt").write_text("not an image: ignored")
    return root


def test_28x28_grey_pngs_give_the_npz_training_images_bit_for_bit(digits, tmp_path):
    folder = load_image_folder(write_folder(tmp_path / "pngs", digits, mixed=False))
    assert folder.info.class_names == tuple(sorted(CLASSES)) and folder.dataset == "folder"
    # The documented split and order: every tenth image of a class held out, the rest interleaved by class.
    names = sorted(CLASSES)
    kept = {n: [im for i, im in enumerate(digits[n]) if i % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1] for n in names}
    x_train = np.stack([kept[n][k] for k in range(len(kept[names[0]])) for n in names])
    y_train = np.array([c for _ in range(len(kept[names[0]])) for c in range(len(names))], np.uint8)
    held = np.stack([digits[n][i] for n in names for i in range(HOLD_OUT_EVERY - 1, PER_CLASS, HOLD_OUT_EVERY)])
    npz = tmp_path / "same.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=held, y_test=np.repeat(np.arange(3), 4).astype(np.uint8))
    from_npz = data.load_mnist(npz)
    np.testing.assert_array_equal(data.training_images(folder, None), data.training_images(from_npz, None))
    np.testing.assert_array_equal(data.training_labels(folder, None), data.training_labels(from_npz, None))
    np.testing.assert_array_equal(folder.x_test, from_npz.x_test)
    assert len(folder.x_train) == 108 and len(folder.x_test) == 12


def test_larger_colour_and_jpeg_images_are_grey_28x28_with_the_aspect_ratio_kept(digits):
    digit = digits["seven"][0]
    as_jpeg = iio.imwrite("<bytes>", digit, extension=".jpg", quality=95)
    assert np.abs(to_mnist_pixels(as_jpeg).astype(int) - digit).mean() < 3  # lossy, but the same digit
    # 84x56 light background (200), a dark 56x56 digit in the middle: padded to 84x84 with the background.
    wide = np.full((56, 84), 200, np.uint8)
    wide[:, 14:70] = 255 - np.kron(digit, np.ones((2, 2), np.uint8))
    pixels = to_mnist_pixels(iio.imwrite("<bytes>", np.stack([wide] * 3, axis=-1), extension=".png"))
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
    assert (pixels[:4] == 200).all() and (pixels[-4:] == 200).all()  # top and bottom padding: the background
    # Padded to a square and shrunk (here by 3: a 3x3 box mean is close to antialiased bilinear), not stretched.
    square = np.full((84, 84), 200.0)
    square[14:70] = wide
    padded = square.reshape(28, 3, 28, 3).mean(axis=(1, 3))
    stretched = wide.astype(float).reshape(28, 2, 28, 3).mean(axis=(1, 3))
    assert np.abs(pixels - padded).mean() < 6 and np.abs(pixels - stretched).mean() > 18


def test_a_folder_trains_resumes_samples_by_class_name_and_evaluates(digits, tmp_path, evaluator_dir, capsys):
    folder = write_folder(tmp_path / "images", digits)
    run = tmp_path / "run"
    flags = dict(data=str(folder), model="conditional", batch_size=32, checkpoint_every=1, checkpoint_dir=str(run))
    config = TrainConfig(**flags, epochs=1)
    assert config.dataset == "folder"  # implied by a folder without the IDX files
    fit(config)
    history = fit(TrainConfig(**flags, epochs=2))
    out = capsys.readouterr().out
    assert "resuming from" in out and [row["epoch"] for row in history] == [1, 2]
    assert "skipped" not in out  # every JPEG and colour PNG was readable
    recorded = json.loads((run / "dataset.json").read_text())
    assert recorded["class_names"] == ["one", "seven", "zero"] and recorded["identity"]
    assert json.loads((run / "config.json").read_text())["dataset"] == "folder"

    from dcgan_tf.sampling import parse_digit, sample_checkpoint

    shutil.move(folder, tmp_path / "moved")  # sampling needs only the run folder
    sample_checkpoint(run, tmp_path / "sevens.npz", num=5, seed=1, digit=parse_digit("seven"))
    assert np.load(tmp_path / "sevens.npz")["labels"].tolist() == [1] * 5  # "seven" is class 1
    with pytest.raises(DcganError, match=r"one of this run's classes \(one, seven, zero\)"):
        sample_checkpoint(run, tmp_path / "cats.png", digit=parse_digit("cat"))
    shutil.move(tmp_path / "moved", folder)

    from dcgan_tf.evaluation import evaluate

    records = evaluate(EvaluateConfig(checkpoint_dir=str(run), num_samples=60, evaluator_dir=str(evaluator_dir)))
    out = capsys.readouterr().out
    assert "images evaluator" in out and "trained on 108 training images" in out and "12 test images" in out
    assert "requested class recognised in" in out and "seven: " in out  # shares named by class
    assert len(records[0]["class_histogram"]) == 3 and np.isfinite(records[0]["fid"])

    flat = tmp_path / "flat"
    flat.mkdir()
    for i, image in enumerate(digits["one"][:5]):
        iio.imwrite(flat / f"{i}.png", image)
    with pytest.raises(DcganError, match="evaluate needs labelled classes"):
        evaluate(EvaluateConfig(checkpoint_dir=str(run), data=str(flat), evaluator_dir=str(evaluator_dir)))

    # A changed folder (one image more) is refused in one line, and nothing in the run changes.
    iio.imwrite(folder / "zero" / "new.png", digits["zero"][0])
    before = snapshot(run)
    with pytest.raises(DcganError, match="its images changed"):
        fit(TrainConfig(**flags, epochs=3))
    assert snapshot(run) == before


def _bad(kind: str, root: Path, digits: dict[str, np.ndarray]) -> tuple[Path, dict]:
    """A bad folder of ``kind`` under ``root`` and the flags that meet it."""
    folder = root / kind
    folder.mkdir()
    flags: dict = {}
    if kind == "unreadable":  # image names, nothing Pillow can decode
        for i in range(3):
            (folder / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    elif kind == "too-few":
        write_folder(folder, {"one": digits["one"][:20]}, mixed=False)
    elif kind == "too-many-classes":  # 101 classes of 2 images: one more than a conditional model takes
        for c in range(101):
            (folder / f"class{c:03d}").mkdir()
            for i in range(2):
                iio.imwrite(folder / f"class{c:03d}" / f"{i}.png", digits["zero"][i])
        flags = {"model": "conditional"}
    elif kind in ("flat-conditional", "flat-eval"):
        for i, image in enumerate(digits["seven"]):
            iio.imwrite(folder / f"{i:03d}.png", image)
        flags = {"model": "conditional"} if kind == "flat-conditional" else {"eval_every": 1}
    elif kind == "mixed-levels":
        write_folder(folder, {"one": digits["one"][:5]}, mixed=False)
        iio.imwrite(folder / "stray.png", digits["one"][0])
    return folder, flags


@pytest.mark.parametrize(
    "kind, message",
    [
        ("empty", "holds no images"),
        ("unreadable", "none of its 3 image files could be read (e.g. 0.png: not an image Pillow can decode)"),
        ("too-few", "its training split has 18 images, fewer than one batch of 32"),
        ("too-many-classes", "101 classes, more than the 100 a conditional model allows"),
        ("flat-conditional", "a conditional model needs labelled classes"),
        ("flat-eval", "--eval-every needs labelled classes"),
        ("mixed-levels", "holds images both at its top (e.g. stray.png) and in class subfolders (one)"),
    ],
)
def test_every_bad_folder_is_one_line_and_nothing_is_written(kind, message, digits, tmp_path):
    folder, flags = _bad(kind, tmp_path, digits)
    run = tmp_path / "run"
    with pytest.raises(DcganError) as caught:
        fit(TrainConfig(data=str(folder), batch_size=32, epochs=1, checkpoint_dir=str(run), **flags))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not run.exists()


def test_unreadable_files_among_good_ones_are_skipped_with_one_counted_warning(digits, tmp_path, capsys):
    folder = write_folder(tmp_path / "images", digits, mixed=False)
    (folder / "one" / "broken.png").write_bytes(b"not a png")
    (folder / "zero" / "empty.jpg").write_bytes(b"")
    mnist = load_image_folder(folder)
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "skipped 2 of the 122 image files" in warnings[0]
    assert len(mnist.x_train) + len(mnist.x_test) == 3 * PER_CLASS


def test_the_command_line_says_a_bad_folder_in_one_line(tmp_path, capsys):
    from dcgan_tf.errors import run_main
    from dcgan_tf.train import main

    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:  # in this process: TensorFlow is already loaded
        run_main(main, [f"--data={tmp_path / 'empty'}", f"--checkpoint-dir={tmp_path / 'run'}"])
    captured = capsys.readouterr()
    result = subprocess.CompletedProcess([], exit_info.value.code, captured.out, captured.err)
    assert_one_line_error(result, "holds no images", "point --data at your images")
    assert not (tmp_path / "run").exists()
