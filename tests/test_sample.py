"""Using a trained model: sampling files, seeds, checkpoint choice, export, latent walks, bad input.

Most checks call the library in-process on the session's tiny trained run; a few run the real CLIs
in a subprocess to prove the user sees one clean line (no traceback) and the right exit code.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import assert_one_line_error, run_tool

from dcgan_tf import export, interpolate, sample
from dcgan_tf.errors import DcganError, run_main


@pytest.fixture(scope="module")
def generator(trained_run):
    from dcgan_tf.checkpoints import load_generator

    return load_generator(trained_run)


@pytest.fixture(scope="module")
def other_architecture(trained_run, tmp_path_factory):
    """A copy of the run whose config.json claims a different noise dimension than its checkpoints."""
    run = tmp_path_factory.mktemp("other_arch") / "run"
    shutil.copytree(trained_run, run)
    config = json.loads((run / "config.json").read_text())
    config["noise_dim"] = 50
    (run / "config.json").write_text(json.dumps(config))
    return run


# --- sampling -----------------------------------------------------------------------------------


def test_sample_writes_png_grid_npz_and_folder(trained_run, tmp_path):
    from dcgan_tf.sampling import sample_checkpoint
    from dcgan_tf.visualize import GAP, SCALE

    [png] = sample_checkpoint(trained_run, tmp_path / "grid.png", num=5, seed=7)
    # 5 digits -> a 3-wide, 2-high grid of 28-pixel tiles with gaps, enlarged SCALE times.
    assert iio.imread(png).shape == ((2 * (28 + GAP) + GAP) * SCALE, (3 * (28 + GAP) + GAP) * SCALE)

    [npz] = sample_checkpoint(trained_run, tmp_path / "digits.npz", num=5, seed=7)
    with np.load(npz) as saved:
        assert saved.files == ["images"]
        images = saved["images"]
    assert images.shape == (5, 28, 28) and images.dtype == np.uint8

    files = sample_checkpoint(trained_run, str(tmp_path / "digits") + "/", num=5, seed=7)
    assert [f.name for f in files] == [f"sample_{i:04d}.png" for i in range(5)]
    # The single PNGs are the same MNIST-style digits as the .npz.
    np.testing.assert_array_equal(np.stack([iio.imread(f) for f in files]), images)


def test_same_seed_same_digits_and_checkpoint_choice(trained_run, generator):
    from dcgan_tf.checkpoints import list_checkpoints, load_generator
    from dcgan_tf.sampling import latent_noise, sample

    np.testing.assert_array_equal(sample(generator, 6, seed=3), sample(generator, 6, seed=3))
    assert not np.array_equal(sample(generator, 6, seed=3), sample(generator, 6, seed=4))
    # Noise is NumPy's, not the device's: the same numbers on any machine.
    np.testing.assert_array_equal(
        latent_noise(2, 100, 3), np.random.default_rng(3).standard_normal((2, 100), dtype=np.float32)
    )

    first, last = list_checkpoints(trained_run)
    assert first.epoch == 1 and last.epoch == 2
    earlier = load_generator(trained_run, first.name)
    assert not np.allclose(sample(earlier, 4, seed=0), sample(generator, 4, seed=0))
    np.testing.assert_array_equal(sample(load_generator(trained_run, last.name), 4), sample(generator, 4))


# --- export -------------------------------------------------------------------------------------


def test_exported_keras_model_reproduces_checkpoint(generator, tmp_path):
    import keras

    from dcgan_tf.exporting import export_keras
    from dcgan_tf.sampling import generate, latent_noise

    path = export_keras(generator, tmp_path / "generator.keras")
    noise = latent_noise(8, 100, seed=1)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(generate(loaded, noise), generate(generator, noise), atol=1e-6)

    # An existing export is never replaced unless asked.
    before = path.read_bytes()
    with pytest.raises(DcganError, match="already exists.*--overwrite"):
        export_keras(generator, path)
    assert path.read_bytes() == before
    export_keras(generator, path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["generator.keras"]  # no staging leftovers


def test_saved_model_serving_signature(generator, tmp_path):
    import tensorflow as tf

    from dcgan_tf.exporting import export_saved_model
    from dcgan_tf.sampling import generate, latent_noise

    path = export_saved_model(generator, str(tmp_path / "generator") + "/")
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    [spec] = serve.structured_input_signature[1].values()
    assert spec.name == "noise" and spec.shape.as_list() == [None, 100] and spec.dtype == tf.float32
    noise = latent_noise(3, 100, seed=2)
    images = serve(noise=tf.constant(noise))["images"].numpy()
    np.testing.assert_allclose(images, generate(generator, noise), atol=1e-5)

    with pytest.raises(DcganError, match="already exists"):
        export_saved_model(generator, path)
    export_saved_model(generator, path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generator"]


# --- latent walks -------------------------------------------------------------------------------


def test_lerp_and_slerp_paths():
    from dcgan_tf.sampling import latent_noise, lerp, slerp

    a, b = latent_noise(2, 100, seed=5)
    for walk in (lerp, slerp):
        path = walk(a, b, 7)
        assert path.shape == (7, 100) and path.dtype == np.float32
        np.testing.assert_array_equal(path[0], a)
        np.testing.assert_array_equal(path[-1], b)
    np.testing.assert_allclose(lerp(a, b, 3)[1], (a + b) / 2, rtol=1e-6)
    # The arc keeps the noise's norm between the endpoints'; the straight line sags in the middle.
    low, high = sorted([np.linalg.norm(a), np.linalg.norm(b)])
    assert low - 1e-3 <= np.linalg.norm(slerp(a, b, 3)[1]) <= high + 1e-3
    assert np.linalg.norm(lerp(a, b, 3)[1]) < low
    np.testing.assert_allclose(slerp(a, 2 * a, 3)[1], 1.5 * a, rtol=1e-6)  # parallel: falls back to the line


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_walk_endpoints_are_the_generators_digits(generator, method):
    from dcgan_tf.sampling import generate, latent_noise, walk_images

    images = walk_images(generator, 3, 5, seed=4, method=method)  # (W, S, 28, 28, 1)
    assert images.shape == (3, 5, 28, 28, 1)
    ends = latent_noise(6, 100, seed=4)  # walk i goes from row 2i to row 2i + 1
    np.testing.assert_allclose(images[:, 0], generate(generator, ends[0::2]), atol=1e-6)
    np.testing.assert_allclose(images[:, -1], generate(generator, ends[1::2]), atol=1e-6)


def test_interpolate_writes_grid_and_gif(trained_run, tmp_path):
    from dcgan_tf.sampling import interpolate_checkpoint
    from dcgan_tf.visualize import GAP, SCALE

    png, gif = interpolate_checkpoint(trained_run, tmp_path / "walk.png", walks=2, steps=4, seed=1)
    assert gif == tmp_path / "walk.gif"
    assert iio.imread(png).shape == ((2 * (28 + GAP) + GAP) * SCALE, (4 * (28 + GAP) + GAP) * SCALE)
    frames = iio.imread(gif, index=None)
    assert len(frames) == 2 * 4 - 2  # forward, then back without repeating the ends


# --- bad input ----------------------------------------------------------------------------------


def _run_in_process(tool, argv, capsys) -> subprocess.CompletedProcess:
    """`run_main` as the CLI calls it, captured like a finished subprocess."""
    with pytest.raises(SystemExit) as exited:
        run_main(tool.main, argv)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(argv, exited.value.code, out, err)


BAD_INPUT = {
    "missing folder": (sample, ["--checkpoint-dir", "{tmp}/nowhere"], "does not exist"),
    "no checkpoints": (sample, ["--checkpoint-dir", "{tmp}"], "holds no checkpoints"),
    "other architecture": (sample, ["--checkpoint-dir", "{other}"], "does not match"),
    "unknown checkpoint": (sample, ["--checkpoint-dir", "{run}", "--checkpoint", "ckpt-999"], "choose one of"),
    "num zero": (sample, ["--num", "0"], "--num must be a positive integer"),
    "num negative": (sample, ["--num", "-3"], "--num must be a positive integer"),
    "unknown extension": (sample, ["--out", "{tmp}/digits.jpg"], "unknown output type '.jpg'"),
    "unwritable destination": (sample, ["--checkpoint-dir", "{run}", "--out", "{file}/x.png"], "cannot write"),
    "one-step walk": (interpolate, ["--steps", "1"], "--steps must be at least 2"),
    "walk not png": (interpolate, ["--out", "{tmp}/walk.gif"], "ending in .png"),
    "walk unwritable": (interpolate, ["--checkpoint-dir", "{run}", "--out", "{file}/w.png"], "cannot write"),
    "export extension": (export, ["--out", "{tmp}/generator.h5"], "unknown export type '.h5'"),
    "export exists": (export, ["--checkpoint-dir", "{run}", "--out", "{file}"], "--overwrite"),
    "export unwritable": (export, ["--checkpoint-dir", "{run}", "--out", "{file}/g.keras"], "cannot write"),
    "export other architecture": (export, ["--checkpoint-dir", "{other}", "--out", "{tmp}/g.keras"], "does not match"),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_is_one_line_error(case, trained_run, other_architecture, tmp_path, capsys):
    tool, argv, fragment = BAD_INPUT[case]
    (tmp_path / "a_file").write_text("not a folder")
    paths = dict(tmp=tmp_path, run=trained_run, other=other_architecture, file=tmp_path / "a_file")
    result = _run_in_process(tool, [arg.format(**paths) for arg in argv], capsys)
    assert_one_line_error(result, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing written on failure


# --- the real command line ----------------------------------------------------------------------


def test_cli_sample_npz(trained_run, tmp_path):
    out = tmp_path / "digits.npz"
    result = run_tool("dcgan_tf.sample", "--checkpoint-dir", str(trained_run), "--num", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    with np.load(out) as saved:
        assert saved["images"].shape == (3, 28, 28) and saved["images"].dtype == np.uint8


def test_cli_errors(other_architecture, tmp_path):
    result = run_tool("dcgan_tf.sample", "--checkpoint-dir", str(other_architecture), "--out", str(tmp_path / "s.png"))
    assert_one_line_error(result, "does not match")
    assert_one_line_error(run_tool("dcgan_tf.sample", "--num", "0"), "--num")
