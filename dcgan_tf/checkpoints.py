"""Checkpoints: what a run saves to resume exactly, and restoring a trained generator for use.

A checkpoint (``tf.train.Checkpoint``, numbered by global training step) holds both models, both
optimizers, the dropout random streams, the fixed sample noise, and the position in training
(completed epochs, batches done in the current epoch, and that epoch's running sums). Together
with the run's ``config.json`` that is everything needed to continue as if never stopped.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf.config import CONFIG_FILE, read_saved_config
from dcgan_tf.errors import DcganError
from dcgan_tf.models import build_models

CHECKPOINT_NAME = "ckpt"
# Position variables, as tf.train.Checkpoint stores them (name -> key in the checkpoint file).
_EPOCH_KEY = "epoch/.ATTRIBUTES/VARIABLE_VALUE"
_STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


@dataclass(frozen=True)
class CheckpointInfo:
    """One saved checkpoint: its path prefix, file name, and where in training it was taken."""

    path: str
    name: str
    epoch: int  # completed epochs
    step: int  # batches done in the next, unfinished epoch (0 at an epoch boundary)

    @property
    def label(self) -> str:
        where = f"epoch {self.epoch}" + (f" + {self.step} batches" if self.step else "")
        return f"{self.name} ({where})"


class CheckpointStore:
    """A ``tf.train.CheckpointManager`` over named objects that keeps every checkpoint it writes."""

    def __init__(self, directory: str | Path, **objects) -> None:
        self.directory = Path(directory)
        self.checkpoint = tf.train.Checkpoint(**objects)
        # max_to_keep=None: keep them all, so epoch 60 and epoch 90 can be compared later.
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.directory), max_to_keep=None, checkpoint_name=CHECKPOINT_NAME
        )

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def save(self, number: int) -> str:
        """Write a checkpoint numbered ``number`` (the global step) unless that one exists already."""
        if self.latest is not None and self.latest.endswith(f"-{number}"):
            return self.latest
        return self.manager.save(checkpoint_number=number)

    def restore(self, path: str) -> None:
        """Restore every object from ``path``, or raise `DcganError` if the checkpoint does not fit."""
        try:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as err:
            raise _mismatch(path, err) from None


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _mismatch(path: str, err: Exception) -> DcganError:
    return DcganError(
        f"checkpoint {path} does not match the model being built ({_first_line(err)}): it comes from a different "
        "architecture or version; use the settings it was trained with, or --fresh / another --checkpoint-dir"
    )


def list_checkpoints(directory: str | Path) -> list[CheckpointInfo]:
    """Every checkpoint recorded in ``directory``, oldest first (empty if there are none)."""
    state = tf.train.get_checkpoint_state(str(directory))
    if state is None:
        return []
    infos = []
    for path in state.all_model_checkpoint_paths:
        path = path if Path(path).is_absolute() else str(Path(directory) / path)
        try:
            reader = tf.train.load_checkpoint(path)
            epoch, step = int(reader.get_tensor(_EPOCH_KEY)), int(reader.get_tensor(_STEP_KEY))
        except (tf.errors.OpError, ValueError):  # listed in the index but deleted or unreadable
            continue
        infos.append(CheckpointInfo(path=path, name=Path(path).name, epoch=epoch, step=step))
    return infos


def find_checkpoint(directory: str | Path, checkpoint: str | None = None) -> CheckpointInfo:
    """The checkpoint named ``checkpoint`` (a name such as ``ckpt-282`` or a path) or the latest."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DcganError(f"checkpoint folder {directory} does not exist: pass the --checkpoint-dir of a training run")
    infos = list_checkpoints(directory)
    if not infos:
        raise DcganError(
            f"{directory} holds no checkpoints: train first (python -m dcgan_tf.train --checkpoint-dir {directory})"
        )
    if checkpoint is None:
        return infos[-1]
    wanted = Path(checkpoint).name
    for info in infos:
        if info.name == wanted:
            return info
    available = ", ".join(info.label for info in infos)
    raise DcganError(f"no checkpoint {checkpoint!r} in {directory}: choose one of {available}")


def load_generator(checkpoint_dir: str | Path, checkpoint: str | None = None) -> keras.Model:
    """A ready generator restored from a training run's folder (the latest checkpoint by default).

    The architecture (model name, noise dimension) comes from the run's ``config.json``, so callers
    never repeat training flags. ``model.input_shape[-1]`` is the noise dimension.
    """
    info = find_checkpoint(checkpoint_dir, checkpoint)
    saved = read_saved_config(checkpoint_dir)
    config_path = Path(checkpoint_dir) / CONFIG_FILE
    if saved is None:
        raise DcganError(
            f"{config_path} is missing, so the generator's shape is unknown: "
            "copy config.json from the training run into that folder"
        )
    try:
        model, noise_dim = str(saved.get("model", "dcgan")), int(saved["noise_dim"])
    except (KeyError, TypeError, ValueError):
        raise DcganError(
            f"{config_path} has no valid noise_dim: restore the config.json of that training run"
        ) from None
    generator, _ = build_models(model, noise_dim)
    failure = None
    # A failed restore leaves half-matched objects whose clean-up logs dozens of warnings; keep
    # them out of the user's one-line error.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        tf.train.Checkpoint(generator=generator).restore(info.path).expect_partial().assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as err:
        failure = DcganError(
            f"checkpoint {info.path} does not match the generator that {config_path} describes "
            f"({_first_line(err)}): keep each run's config.json beside its own checkpoints"
        )
        del generator
        gc.collect()
    finally:
        logger.setLevel(level)
    if failure is not None:
        raise failure  # outside `except`, so no traceback keeps the half-restored objects alive
    return generator


def generate(generator: keras.Model, noise: np.ndarray | tf.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Generator outputs (N, 28, 28, 1) in [-1, 1] for noise (N, noise_dim), in inference mode."""
    noise = tf.convert_to_tensor(noise, tf.float32)
    outputs = [generator(noise[i : i + batch_size], training=False) for i in range(0, int(noise.shape[0]), batch_size)]
    return np.concatenate([np.asarray(o) for o in outputs]) if outputs else np.zeros((0, 28, 28, 1), np.float32)
