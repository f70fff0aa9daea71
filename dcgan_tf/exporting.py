"""Exporting a trained generator for use without this project (``python -m dcgan_tf.export``).

Two formats, chosen by the destination's name (`export_kind`):

- ``FILE.keras``: Keras' native format; ``keras.saving.load_model(FILE)`` gives the same model.
- ``DIR/`` (or a name without an extension): a TensorFlow SavedModel for TF Serving, whose
  ``serving_default`` signature maps ``noise`` (None, noise_dim) float32 to ``images``
  (None, 28, 28, 1) in [-1, 1].

Every export is written beside its destination under a temporary name, loaded back and checked
against the generator on a few noise vectors, and only then moved into place, so a failed export
leaves nothing half-written and an existing export is replaced only when ``overwrite`` is asked for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from dcgan_tf.errors import DcganError

KERAS, SAVED_MODEL = "keras", "saved_model"
SIGNATURE = "serving_default"
# How closely a reloaded export must reproduce the generator (tanh outputs in [-1, 1]).
TOLERANCE = 1e-5


def export_kind(out: str | Path) -> str:
    """``keras`` for ``*.keras``, ``saved_model`` for a folder, or `DcganError` for anything else."""
    text = str(out)
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir() or not path.suffix:
        return SAVED_MODEL
    if path.suffix.lower() == ".keras":
        return KERAS
    raise DcganError(
        f"--out {text}: unknown export type {path.suffix!r}; use FILE.keras (Keras) or DIR/ (TensorFlow SavedModel)"
    )


def check_destination(out: str | Path, overwrite: bool = False) -> Path:
    """``out`` as a path, or `DcganError` if something is there already and ``overwrite`` is off."""
    path = Path(str(out).rstrip("/" + os.sep) or str(out))
    if path.exists() and not overwrite:
        raise DcganError(f"{path} already exists: choose another --out, or pass --overwrite to replace it")
    return path


def export_generator(
    checkpoint_dir: str | Path,
    out: str | Path,
    checkpoint: str | None = None,
    overwrite: bool = False,
    which: str | None = None,
) -> Path:
    """Restore a run's generator (``which``: ``ema``, ``raw`` or None, see `load_generator`) and export it to
    ``out`` as its name asks."""
    from dcgan_tf.checkpoints import load_generator

    kind = export_kind(out)
    check_destination(out, overwrite)  # fail before the slow restore
    generator = load_generator(checkpoint_dir, checkpoint, which)
    if kind == KERAS:
        return export_keras(generator, out, overwrite)
    return export_saved_model(generator, out, overwrite)


def export_keras(generator, out: str | Path, overwrite: bool = False) -> Path:
    """Save ``generator`` as a ``.keras`` file that reproduces its outputs when loaded."""
    import keras

    path = check_destination(out, overwrite)
    with _staging(path, is_dir=False) as tmp:
        generator.save(tmp)
        _verify(generator, keras.saving.load_model(tmp, compile=False), tmp)
    return path


def export_saved_model(generator, out: str | Path, overwrite: bool = False) -> Path:
    """Save ``generator`` as a TensorFlow SavedModel with a ``noise -> images`` serving signature
    (``noise, label -> images`` for a conditional generator)."""
    import keras
    import tensorflow as tf

    path = check_destination(out, overwrite)
    # The signature takes the generator's own inputs, by their names: noise, and a conditional one's label.
    specs = [tf.TensorSpec((None, *i.shape[1:]), i.dtype, name=i.name) for i in generator.inputs]
    names = [spec.name for spec in specs]
    archive = keras.export.ExportArchive()
    archive.track(generator)
    # The first endpoint becomes the SavedModel's serving_default signature. training=False:
    # BatchNorm uses its moving statistics, as when sampling here. Images (B, 28, 28, 1) in [-1, 1].
    call = lambda *inputs: {"images": generator(inputs[0] if len(inputs) == 1 else list(inputs), training=False)}  # noqa: E731
    archive.add_endpoint("serve", call, input_signature=specs)
    with _staging(path, is_dir=True) as tmp:
        archive.write_out(str(tmp), verbose=False)
        signature = tf.saved_model.load(str(tmp)).signatures[SIGNATURE]

        def loaded(inputs, training=False):
            inputs = inputs if isinstance(inputs, list) else [inputs]
            return signature(**dict(zip(names, inputs)))["images"]

        _verify(generator, loaded, tmp)
    return path


def _verify(generator, loaded, where: Path) -> None:
    """Raise `DcganError` unless ``loaded`` gives the generator's images for the same noise."""
    import numpy as np
    import tensorflow as tf

    from dcgan_tf.models import model_inputs
    from dcgan_tf.sampling import cycled_labels, noise_dim_of

    noise = tf.constant(np.random.default_rng(0).standard_normal((4, noise_dim_of(generator)), dtype=np.float32))
    labels = cycled_labels(generator, 4)  # None for an unconditional generator
    inputs = model_inputs(generator, noise, None if labels is None else tf.constant(labels))
    expected = np.asarray(generator(inputs, training=False))
    got = np.asarray(loaded(inputs, training=False))
    if got.shape != expected.shape or not np.allclose(got, expected, atol=TOLERANCE):
        raise DcganError(
            f"the export written to {where} does not reproduce the generator; nothing was replaced. "
            "Please report this with your TensorFlow and Keras versions"
        )


@contextlib.contextmanager
def _staging(path: Path, is_dir: bool):
    """Yield a temporary path beside ``path``; on success move it to ``path`` (replacing what is there)."""
    from dcgan_tf.files import ensure_writable

    parent = ensure_writable(path.parent, "--out")
    # Keras insists on the .keras extension, so the temporary name keeps the suffix.
    staging_dir = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}-"))
    tmp = staging_dir / path.name
    try:
        yield tmp
        _replace(tmp, path, is_dir)
    except OSError as err:
        raise DcganError(
            f"cannot write {path} ({err.strerror or err}): choose a writable --out with free space"
        ) from None
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)


def _replace(tmp: Path, path: Path, is_dir: bool) -> None:
    if not is_dir or not path.exists():
        os.replace(tmp, path)  # a file, or a folder into a free name: one atomic rename
        return
    # A folder cannot be renamed over another: move the old one aside first, delete it only once
    # the new one is in place, and put it back if that fails.
    old = tmp.with_name(tmp.name + ".old")
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except OSError:
        os.replace(old, path)
        raise
