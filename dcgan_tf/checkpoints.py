"""Checkpoints: what a run saves to resume exactly, and restoring a trained generator for use.

A checkpoint (``tf.train.Checkpoint``, numbered by the batches trained) holds both models and the
averaged generator, both optimizers, the dropout random streams, the fixed sample noise, the recipe's name, and the
position in training (completed epochs, batches done in the current epoch, and that epoch's running sums). Together
with the run's ``config.json`` that is everything needed to continue as if never stopped.
"""

from __future__ import annotations

import gc
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from dcgan_tf.clusters import sampler
from dcgan_tf.config import CONFIG_FILE, GENERATORS, read_saved_config
from dcgan_tf.data import dataset_of_run
from dcgan_tf.errors import DcganError
from dcgan_tf.files import archive_folder, write_text
from dcgan_tf.models import MODELS, NUM_CLASSES, build_generator, model_spec

CHECKPOINT_NAME = "ckpt"
BEST_FILE = "best.json"  # which checkpoint scored the best FID so far (written by --eval-every runs)
BEST = "best"  # the --checkpoint value that means "the one best.json names"
# Checkpoint objects that runs of earlier versions did not save; a restore without them leaves them as built
# (training.py then derives them: the batch counter from the optimizer's, the average from the generator).
# The first version (2026-11-22) saved neither of the first two; `batches` arrived on 2026-12-01.
OPTIONAL_OBJECTS = ("generator_ema", "recipe", "batches")
# Checkpoint objects saved under another name by earlier versions: new name -> old name.
RENAMED = {"epoch_batches": "step"}
# Variables, as tf.train.Checkpoint stores them (name -> key in the checkpoint file).
_EPOCH_KEY = "epoch/.ATTRIBUTES/VARIABLE_VALUE"
_EPOCH_BATCHES_KEYS = tuple(f"{name}/.ATTRIBUTES/VARIABLE_VALUE" for name in ("epoch_batches", "step"))
_RECIPE_KEY = "recipe/.ATTRIBUTES/VARIABLE_VALUE"
# What reading a damaged checkpoint raises: a failed checksum is an OpError (DataLossError), a
# truncated file an IndexError ("Read less bytes than requested").
_READ_ERRORS = (tf.errors.OpError, ValueError, IndexError)


@dataclass(frozen=True)
class CheckpointInfo:
    """One saved checkpoint: its path prefix, file name, and where in training it was taken."""

    path: str
    name: str
    epoch: int  # completed epochs
    epoch_batches: int  # batches done in the next, unfinished epoch (0 at an epoch boundary)

    @property
    def number(self) -> int:
        """The checkpoint's number: the batches trained when it was saved."""
        return int(self.name.rsplit("-", 1)[-1])

    @property
    def label(self) -> str:
        if self.epoch < 0:  # a damaged checkpoint, or one of the TensorFlow tutorial's (which saves no position)
            return self.name
        where = f"epoch {self.epoch}" + (f" + {self.epoch_batches} batches" if self.epoch_batches else "")
        return f"{self.name} ({where})"


class CheckpointStore:
    """A ``tf.train.CheckpointManager`` over named objects that keeps every checkpoint it writes."""

    def __init__(self, directory: str | Path, **objects) -> None:
        self.directory = Path(directory)
        self.objects = objects
        self.checkpoint = tf.train.Checkpoint(**objects)
        # max_to_keep=None: keep them all, so epoch 60 and epoch 90 can be compared later.
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.directory), max_to_keep=None, checkpoint_name=CHECKPOINT_NAME
        )
        self._current: set[str] = set()  # checkpoints whose files hold this process's state

    @property
    def latest(self) -> str | None:
        """The newest checkpoint in the folder (see `list_checkpoints`), or None."""
        infos = list_checkpoints(self.directory)
        return infos[-1].path if infos else None

    def save(self, number: int) -> str:
        """Write a checkpoint numbered ``number`` (batches trained) unless this run wrote or restored it.

        A checkpoint of that number left by an earlier run (one resumed from an older checkpoint with
        ``--checkpoint``, e.g. past a damaged one) is moved to ``archive/<time>/`` first, never overwritten.
        """
        path = str(self.directory / f"{CHECKPOINT_NAME}-{number}")
        if path in self._current:
            return path
        old = sorted(self.directory.glob(f"{CHECKPOINT_NAME}-{number}.*"))
        if old:
            target = archive_folder(self.directory)
            for file in old:
                shutil.move(str(file), target / file.name)
        path = self.manager.save(checkpoint_number=number)
        self._current.add(path)
        return path

    def restore(self, path: str) -> list[str]:
        """Restore every object from ``path``, or raise `DcganError` if the checkpoint does not fit.

        Returns the `OPTIONAL_OBJECTS` the checkpoint does not hold (left as they were built).
        """
        saved = saved_objects(path)
        missing = [name for name in OPTIONAL_OBJECTS if name in self.objects and name not in saved]
        # Each object under the name this checkpoint saved it as (an older version's, where it was renamed).
        names = {name: RENAMED[name] if name in RENAMED and name not in saved else name for name in self.objects}
        checkpoint = (
            tf.train.Checkpoint(**{names[k]: v for k, v in self.objects.items() if k not in missing})
            if missing or names != {name: name for name in self.objects}
            else self.checkpoint
        )
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as err:
            raise _mismatch(path, err) from None
        self._current.add(path)
        return missing


def saved_objects(path: str) -> set[str]:
    """The names of the objects the checkpoint at ``path`` holds (reads only its index)."""
    return {key.split("/")[0] for key, _ in tf.train.list_variables(path)}


def is_run_checkpoint(path: str) -> bool:
    """Whether the checkpoint at ``path`` is this project's: every run saves its position (``epoch``)."""
    return has_object(path, "epoch")


def generator_choices(path: str, which: str | None) -> tuple[str, ...]:
    """The generators that ``--generator which`` (``ema``, ``raw``, ``both``, or None: the averaged one where the
    checkpoint has one) names in the checkpoint at ``path``; `DcganError` where it has no such generator."""
    if not is_run_checkpoint(path):  # the TensorFlow tutorial's: only the trained generator
        from dcgan_tf.tutorial import check_no_average, read_tutorial

        check_no_average(read_tutorial(path).name, which)
        return ("raw",)
    if not has_object(path, "generator_ema"):
        if which in ("ema", "both"):
            raise DcganError(
                f"{Path(path).name} was saved by a version of this project before the averaged generator existed: "
                "use --generator raw, or leave --generator out (the raw one is then used)"
            )
        return ("raw",)
    if which is None:
        return ("ema",)
    return GENERATORS if which == "both" else (which,)


def has_object(path: str, name: str) -> bool:
    """Whether the checkpoint at ``path`` holds the object saved as ``name``."""
    return name in saved_objects(path)


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _mismatch(path: str, err: Exception) -> DcganError:
    return DcganError(
        f"checkpoint {path} does not match the model being built ({_first_line(err)}): it comes from a different "
        "architecture or version; use the settings it was trained with, or --fresh / another --checkpoint-dir"
    )


def list_checkpoints(directory: str | Path) -> list[CheckpointInfo]:
    """Every checkpoint in ``directory``, oldest first (maybe none), found by file name.

    The folder's own files are the truth, not the paths in TensorFlow's ``checkpoint`` state file: those
    may be relative to another working folder, or point to where a moved or copied run used to be.
    A checkpoint whose position cannot be read (a file missing, truncated or altered) is listed with epoch
    and epoch_batches -1: it is damaged, and `find_checkpoint` says so when it is asked for.
    """
    directory = Path(directory)
    numbers = set()
    for file in directory.glob(f"{CHECKPOINT_NAME}-*.*"):  # ckpt-N.index, ckpt-N.data-00000-of-00001
        number = file.name[len(CHECKPOINT_NAME) + 1 :].split(".", 1)[0]
        if number.isdigit():
            numbers.add(int(number))
    infos = []
    for number in sorted(numbers):
        path = str(directory / f"{CHECKPOINT_NAME}-{number}")
        try:
            reader = tf.train.load_checkpoint(path)
            key = next((key for key in _EPOCH_BATCHES_KEYS if reader.has_tensor(key)), _EPOCH_BATCHES_KEYS[0])
            epoch, epoch_batches = int(reader.get_tensor(_EPOCH_KEY)), int(reader.get_tensor(key))
        except _READ_ERRORS:
            epoch = epoch_batches = -1
        infos.append(CheckpointInfo(path=path, name=Path(path).name, epoch=epoch, epoch_batches=epoch_batches))
    return infos


def checkpoint_recipe(path: str) -> str | None:
    """The ``--recipe`` the checkpoint at ``path`` was trained with (None if saved before recipes existed)."""
    reader = tf.train.load_checkpoint(path)
    if not reader.has_tensor(_RECIPE_KEY):
        return None
    return reader.get_tensor(_RECIPE_KEY).decode()


def damage(path: str) -> str | None:
    """Why the checkpoint at ``path`` cannot be read in full (None if every tensor reads back intact).

    TensorFlow checksums each saved tensor, so reading them all finds truncated or altered files.
    """
    try:
        reader = tf.train.load_checkpoint(path)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except _READ_ERRORS as err:
        return _first_line(err)
    return None


def find_checkpoint(directory: str | Path, checkpoint: str | None = None) -> CheckpointInfo:
    """The checkpoint named ``checkpoint`` (``ckpt-282``, a path, or ``best``) or the latest, checked intact.

    A damaged checkpoint (truncated or altered files) raises `DcganError` naming it and the newest
    intact one, so the user can choose that one explicitly; nothing is deleted.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DcganError(f"checkpoint folder {directory} does not exist: pass the --checkpoint-dir of a training run")
    infos = list_checkpoints(directory)
    if not infos:
        raise DcganError(
            f"{directory} holds no checkpoints: train first (python -m dcgan_tf.train --checkpoint-dir {directory})"
        )
    chosen = infos[-1] if checkpoint is None else _named(directory, infos, checkpoint)
    problem = damage(chosen.path)
    if problem is None:
        return chosen
    older = [info for info in infos if info.name != chosen.name]
    intact = next((info for info in reversed(older) if damage(info.path) is None), None)
    fix = (
        f"use the newest intact one with --checkpoint {intact.label}"
        if intact
        else "no other checkpoint there is intact; restore the files from a backup or start again with --fresh"
    )
    raise DcganError(f"checkpoint {chosen.path} is damaged ({problem}): {fix}")


def _named(directory: Path, infos: list[CheckpointInfo], checkpoint: str) -> CheckpointInfo:
    wanted = Path(checkpoint).name
    if wanted == BEST:
        best = read_best(directory)
        if best is None:
            raise DcganError(
                f"{directory} has no {BEST_FILE}: only runs trained with --eval-every K record their best "
                "checkpoint; name a checkpoint instead (e.g. --checkpoint " + infos[-1].name + ")"
            )
        wanted = best["checkpoint"]
    for info in infos:
        if info.name == wanted:
            return info
    available = ", ".join(info.label for info in infos)
    raise DcganError(f"no checkpoint {wanted!r} in {directory}: choose one of {available}")


def read_best(directory: str | Path) -> dict[str, Any] | None:
    """The record in ``best.json`` (checkpoint name, epoch, metrics), or None if the run has none."""
    path = Path(directory) / BEST_FILE
    if not path.is_file():
        return None
    try:
        best = json.loads(path.read_text())
        str(best["checkpoint"]), float(best["fid"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DcganError(f"{path} is unreadable ({err}): delete it or restore it from a backup") from None
    return best


def write_best(directory: str | Path, record: dict[str, Any]) -> None:
    """Atomically record the best checkpoint so far (see `read_best`)."""
    write_text(Path(directory) / BEST_FILE, json.dumps(record, indent=2) + "\n")


def load_generator(checkpoint_dir: str | Path, checkpoint: str | None = None, which: str | None = None) -> keras.Model:
    """A ready generator restored from a training run's folder (the latest checkpoint by default), or from a
    folder of the TensorFlow tutorial's checkpoints (see `tutorial`).

    ``which``: ``ema`` the averaged generator, ``raw`` the trained one (see `averaging`), None (default) the
    averaged one where the checkpoint has one, else the raw one. A checkpoint saved before averaging existed
    holds only the raw one, and so does the tutorial's: ``ema`` is refused there (`generator_choices`).
    ``checkpoint`` may be ``best``. The architecture (model name, noise dimension) comes from the
    run's ``config.json``, so callers never repeat training flags. ``model.inputs[0].shape[-1]`` is the
    noise dimension; a conditional generator takes ``[noise, label]``.
    """
    if which is not None:
        check_generator_choice(which)
    info = find_checkpoint(checkpoint_dir, checkpoint)
    if not is_run_checkpoint(info.path):  # no config.json to expect: the tutorial's checkpoint, or one line why not
        from dcgan_tf.tutorial import tutorial_generator

        return tutorial_generator(info.path, which)
    saved = read_saved_config(checkpoint_dir)
    config_path = Path(checkpoint_dir) / CONFIG_FILE
    if saved is None:
        raise DcganError(
            f"{config_path} is missing, so the generator's shape is unknown: "
            "copy config.json from the training run into that folder"
        )
    try:
        model, noise_dim = str(saved.get("model", "dcgan")), int(saved["noise_dim"])
        width = float(saved.get("g_width", 1.0))  # runs before --g-width existed: the card's width
    except (KeyError, TypeError, ValueError):
        raise DcganError(
            f"{config_path} has no valid noise_dim or g_width: restore the config.json of that training run"
        ) from None
    key = "generator_ema" if generator_choices(info.path, which) == ("ema",) else "generator"
    spec = model_spec(model) if model in MODELS else None
    if spec is not None and spec.self_conditioned:  # labels are its clusters
        num_classes = int(saved.get("clusters") or 0)
    elif spec is not None and spec.conditional:  # only its labels need the run's classes
        num_classes = dataset_of_run(checkpoint_dir, saved).num_classes
    else:
        num_classes = NUM_CLASSES
    generator, _ = _restore_generator(info.path, key, model, noise_dim, num_classes, width)
    if isinstance(generator, str):
        raise DcganError(
            f"checkpoint {info.path} does not match the generator that {config_path} describes "
            f"({generator}): keep each run's config.json beside its own checkpoints"
        )
    if spec is not None and spec.self_conditioned:  # sampled as an unconditional generator
        shares = tf.train.load_checkpoint(info.path).get_tensor("clusters/shares/.ATTRIBUTES/VARIABLE_VALUE")
        return sampler(generator, shares)
    return generator


def generator_architecture(
    path: str, model: str, noise_dim: int, num_classes: int = NUM_CLASSES, width: float = 1.0
) -> str:
    """The registry entry whose generator the checkpoint at ``path``, saved as ``--model model``, holds:
    ``model`` itself, or the entry an earlier version built under that name (`ModelSpec.formerly`)."""
    return _restore_generator(path, "generator", model, noise_dim, num_classes, width)[1]


def _restore_generator(
    path: str, key: str, model: str, noise_dim: int, num_classes: int = NUM_CLASSES, width: float = 1.0
) -> tuple[keras.Model | str, str]:
    """(the generator restored from the checkpoint's ``key``, its registry entry), trying ``model`` and then
    the entry earlier versions built under that name; (why ``model`` does not fit, ``model``) if neither does."""
    formerly = model_spec(model).formerly if model in MODELS else None
    first = _restored_generator(path, key, model, noise_dim, num_classes, width)
    if isinstance(first, str) and formerly is not None:
        older = _restored_generator(path, key, formerly, noise_dim, num_classes, width)
        if not isinstance(older, str):
            return older, formerly
    return first, model


def _restored_generator(
    path: str, key: str, model: str, noise_dim: int, num_classes: int, width: float
) -> keras.Model | str:
    """The generator ``model`` with the checkpoint's ``key`` weights, or one line saying why they do not fit."""
    generator = build_generator(model, noise_dim, num_classes=num_classes, width=width)
    # A failed restore leaves half-matched objects whose clean-up logs dozens of warnings; keep
    # them out of the user's one-line error.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        tf.train.Checkpoint(**{key: generator}).restore(path).expect_partial().assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as err:
        why = _first_line(err)  # a string: the error's traceback would keep the half-restored objects alive
        del generator, err
        gc.collect()
        return why
    finally:
        logger.setLevel(level)
    return generator


def check_generator_choice(which: str, allowed: tuple[str, ...] = GENERATORS) -> None:
    """Raise `DcganError` unless ``which`` names one of the checkpoint's generators (``--generator``)."""
    if which not in allowed:
        raise DcganError(f"unknown --generator {which!r}: choose {' or '.join(allowed)}")
