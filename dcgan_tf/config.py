"""The run configuration: one frozen dataclass, its validation, and the argparse parser built from it.

Every field is a command-line flag (``noise_dim`` -> ``--noise-dim``) and every flag is a field, so
`config.json` beside the checkpoints records a run completely. This module imports no TensorFlow
(only NumPy, through `data`) until the flags are valid, so ``--help`` and flag errors are instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from dcgan_tf.data import DATASETS as DATASET_INFO
from dcgan_tf.data import IMAGE_FOLDER, resolve_dataset
from dcgan_tf.errors import DcganError
from dcgan_tf.precision import POLICIES, Precision
from dcgan_tf.startup import import_tensorflow

CONFIG_FILE = "config.json"

# The most classes (or self-conditioning clusters) a conditional pair takes: Liu et al. 2020 cluster into up
# to 100. Its epoch grid has a row per class and at most `sampling.GRID_COLUMNS` columns.
MAX_CLASSES = 100
# Registries of what a run can be built from; each name has its entry in data.py / models.py / losses.py.
DATASETS = (*DATASET_INFO, IMAGE_FOLDER)  # mnist, fashion_mnist; folder: --data is a folder of images
MODELS = ("dcgan", "dense", "conditional", "conditional-concat", "self-conditioned")
SELF_CONDITIONING = {"clusters": 10, "recluster_every": 5}  # its settings' defaults, for --model self-conditioned
LOSSES = ("bce", "hinge", "wgan-gp")
# What --critic-steps, --beta1 and --beta2 are when not given, per loss: the tutorial's Adam for BCE,
# the WGAN-GP paper's defaults (Gulrajani et al. 2017: 5 critic steps, Adam betas 0 and 0.9).
LOSS_DEFAULTS = {
    "bce": {"critic_steps": 1, "beta1": 0.9, "beta2": 0.999},
    "hinge": {"critic_steps": 1, "beta1": 0.9, "beta2": 0.999},
    "wgan-gp": {"critic_steps": 5, "beta1": 0.0, "beta2": 0.9},
}
LR_SCHEDULES = ("constant", "linear", "cosine")  # implemented in schedules.py
AUGMENTATIONS = ("translation", "cutout")  # DiffAugment's policies for grayscale digits, in augment.py
# The training options' values when neither a flag nor the recipe sets them: "off" (and the card's batch). A
# run saved before an option existed was trained with it off, so these are also what an older config.json is
# compared with.
OPTIONS_OFF: dict[str, Any] = {
    "model": "dcgan",
    "batch_size": 256,
    "lr_schedule": "constant",
    "r1": 0.0,
    "spectral_norm": False,
    "augment": "none",
    "ema_half_life": 0.0,
    "top_k": 1.0,
    "g_width": 1.0,  # not None by default: listed so that a config.json saved before widths existed reads as 1
    "d_width": 1.0,
}
# Named training settings (`--recipe`). A recipe's values fill the fields left unset on the command line
# (explicit flags win) and win over the loss's defaults above; config.json records the recipe and the values,
# and a resume keeps the recorded ones where a recipe has changed since (`TrainConfig.as_recorded`).
RECIPES: dict[str, dict[str, Any]] = {
    # The design card: the TensorFlow DCGAN tutorial's Adam(1e-4) with Keras' default betas.
    "tutorial": {"learning_rate": 1e-4},
    # Radford et al. 2015 (the DCGAN paper): Adam(2e-4, beta_1 0.5). Reaches good digits several times sooner.
    "dcgan-paper": {"learning_rate": 2e-4, "beta1": 0.5, "beta2": 0.999},
    # dcgan-paper on batches of 64 (four times the updates per epoch for the same images/s on a CPU; the winner
    # of benchmarks/recipe_search.py: at 30 epochs its FID was half of dcgan-paper's), with the self-conditioned
    # model since issue 28 (after 30 epochs: FID 4.92 against the DCGAN's 10.66; docs/recipes.md), on 30 clusters
    # from 2026-12-06 (after 30 epochs: FID 2.03, classifier score 9.06 against 10 clusters' 4.92, 8.56), and on 100
    # since (after 21 epochs: FID 1.48, score 9.32 against 50 clusters' 1.81, 9.23 and 30 clusters' 2.53, 9.04),
    # with R1 from 2026-12-07 (after 30 epochs, seeds 1 and 2: score 9.49 and 9.46 against 9.23 and 9.24, FID
    # 1.52 and 1.60 against 1.47 and 1.62, recall 0.77 and 0.76; its epochs took 1.10x as long side by side).
    # Runs started before keep resuming as they recorded (the DCGAN, 10 or 30 clusters, no R1). The clusters
    # apply only where the model is self-conditioned, and R1 gives way to WGAN-GP's own penalty; R1 needs
    # float32 (`TrainConfig.check_precision`).
    "fast": {
        "learning_rate": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "batch_size": 64,
        "model": "self-conditioned",
        "clusters": 100,
        "r1": 1.0,
    },
}
STRATEGIES = ("default", "mirrored", "multiworker")
# Keras dtype policies --precision accepts: weights always float32, compute in the named type; "auto" picks
# one for the machine when training starts (precision.auto_precision) and config.json records the choice.
PRECISIONS = (*POLICIES, "auto")
# The GAN family that python -m dcgan_tf.compare trains: name -> the fields that make the variant.
VARIANTS: dict[str, dict[str, str]] = {
    "dcgan": {"model": "dcgan", "loss": "bce"},
    "dense": {"model": "dense", "loss": "bce"},
    "conditional": {"model": "conditional", "loss": "bce"},
    "wgan-gp": {"model": "dcgan", "loss": "wgan-gp"},
}

# Fields that define what a checkpoint folder holds. Resuming with any of them changed would
# silently mix two different runs (or fail to restore), so we refuse and explain instead.
RUN_IDENTITY = (
    "dataset",
    "model",
    "loss",
    "noise_dim",
    "batch_size",
    "recipe",
    "learning_rate",
    "g_learning_rate",
    "d_learning_rate",
    "lr_schedule",
    "r1",
    "spectral_norm",  # adds the power iteration's vectors to the checkpoint
    "augment",
    "ema_half_life",
    "beta1",
    "beta2",
    "train_size",
    "seed",
    "critic_steps",  # the generator's update schedule
    "precision",  # mixed_float16 adds loss-scale state to the optimizers' checkpoint
    "top_k",
    "g_width",
    "d_width",
)
# Fields that are part of the identity only where they change what is trained (`TrainConfig.identity`), and
# free to change elsewhere.
IDENTITY_WHERE = {
    "epochs": "with a decaying --lr-schedule, which ends at --epochs",
    "ema_decay": "unless --ema-half-life replaces it",
    "top_k_decay": "with --top-k below 1",
    "clusters": "with --model self-conditioned",
    "recluster_every": "with --model self-conditioned",
}
# What a branch (resuming from an older checkpoint with --checkpoint) may change of the identity above.
BRANCH_MAY_CHANGE = ("learning_rate", "g_learning_rate", "d_learning_rate")
# Fields a resume may change freely, and why none of them changes what a batch computes. Every field of
# TrainConfig is in exactly one of RUN_IDENTITY, IDENTITY_WHERE and FREE_TO_CHANGE (tests/test_config.py).
FREE_TO_CHANGE = {
    "data": "where the dataset file is (--dataset and --train-size say which images)",
    "max_minutes": "when the run stops",
    "checkpoint_dir": "where the run folder is (it may be moved)",
    "checkpoint": "which checkpoint to resume from (an older one starts a branch)",
    "checkpoint_every": "how often checkpoints are kept",
    "output_dir": "where the pictures and history go",
    "logdir": "where TensorBoard's files go",
    "log_every": "how often the losses are read back",
    "eval_every": "how often quality is measured",
    "evaluator_dir": "where evaluator networks are cached",
    "strategy": "which devices compute the same global batch",
    "mixed_precision": "a shorthand, recorded as --precision (which is identity)",
    "jit_compile": "how the same step is compiled",
    "fresh": "starts a new run instead of resuming",
    "dry_run": "trains nothing",
}

# Which of a checkpoint's generators the tools use: the averaged weights (default) or the trained ones.
GENERATORS = ("ema", "raw")
GENERATOR_NAMES = {"ema": "averaged", "raw": "raw"}  # as printed


def flag(default: Any, help: str, **argparse_kwargs: Any) -> Any:
    """A dataclass field that `build_parser` turns into ``--field-name`` with this help text."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


def checkpoint_flag() -> Any:
    """The ``--checkpoint NAME`` field every tool that reads a run shares."""
    return flag(
        None,
        "use this checkpoint (e.g. ckpt-282, or best: the best FID an --eval-every run recorded) instead of the latest",
        metavar="NAME",
    )


def generator_flag(choices: tuple[str, ...] = GENERATORS) -> Any:
    """The ``--generator`` field: which of a checkpoint's generators a tool uses."""
    # None, not "ema": a checkpoint without an averaged generator (the TensorFlow tutorial's) then uses its raw
    # one without a word, where an explicit --generator ema is refused.
    return flag(
        None,
        "ema: the averaged generator (smoother, usually better digits); raw: the trained weights"
        + ("; both: report each" if "both" in choices else "")
        + " (default: ema where the checkpoint has one, else raw)",
        choices=choices,
    )


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter and path of a training run (see ``python -m dcgan_tf.train --help``)."""

    data: str | None = flag(
        None,
        "the --dataset as a Keras-layout .npz (x_train, y_train, x_test, y_test) or a folder with the four "
        "official IDX files (plain or .gz), or a folder of your own images (PNG, JPEG, BMP, GIF; one subfolder "
        "per class), which implies --dataset folder (docs/own-images.md). Default: download with "
        "keras.datasets.<dataset>.load_data().",
        metavar="PATH",
    )
    dataset: str = flag(
        "mnist",
        "mnist (handwritten digits), fashion_mnist (Zalando's clothing images), or folder (the images in --data; "
        "set when --data is a folder without the IDX files)",
        choices=DATASETS,
    )
    model: str | None = flag(
        None,
        "generator/discriminator pair (default: the recipe's, else dcgan): dcgan (the tutorial's), dense (fully "
        "connected), conditional (DCGAN conditioned on the digit label), conditional-concat (the first "
        "conditional generator, which collapses to one style per digit; kept for older runs), self-conditioned "
        "(the conditional DCGAN conditioned on --clusters clusters of its discriminator's features instead of "
        "labels: an unconditional model, docs/recipes.md)",
        choices=MODELS,
    )
    clusters: int | None = flag(
        None,
        "with --model self-conditioned: how many clusters of real images it is conditioned on (default: the "
        "recipe's, 100 for fast, else 10)",
        type=int,
        metavar="K",
    )
    recluster_every: int | None = flag(
        None,
        "with --model self-conditioned: cluster the real images anew every E epochs, as the discriminator's "
        "features improve (default: 5)",
        type=int,
        metavar="E",
    )
    loss: str = flag(
        "bce",
        "GAN loss: bce (from-logits binary cross-entropy), hinge (the hinge loss of SAGAN and BigGAN) or wgan-gp "
        "(Wasserstein loss with gradient penalty)",
        choices=LOSSES,
    )
    critic_steps: int | None = flag(
        None,
        "discriminator (critic) updates per generator update; each takes its own batch (default: 1 for bce and "
        "hinge, 5 for wgan-gp)",
        type=int,
        metavar="N",
    )
    epochs: int = flag(
        100,
        "total epochs; a larger value continues a finished run (not with a decaying --lr-schedule, which ends at "
        "--epochs)",
        type=int,
    )
    max_minutes: float | None = flag(
        None,
        "stop (with a checkpoint) after the first epoch that brings the run's training time, resumed parts "
        "included, to M minutes; --epochs stays the upper limit",
        type=float,
        metavar="M",
    )
    batch_size: int | None = flag(None, "images per training step (default: the recipe's, else 256)", type=int)
    recipe: str = flag(
        "tutorial",
        "named training settings: tutorial (the TensorFlow tutorial's Adam 1e-4, default betas: the design card) "
        "dcgan-paper (Adam 2e-4, beta_1 0.5: good digits several times sooner), or fast (dcgan-paper on "
        "batches of 64 with --model self-conditioned on 100 clusters: the recipe search's winner, docs/recipes.md); "
        "flags override its values",
        choices=tuple(RECIPES),
    )
    learning_rate: float | None = flag(
        None, "Adam learning rate of both models (default: the recipe's, 1e-4 for tutorial)", type=float
    )
    beta1: float | None = flag(
        None,
        "Adam beta_1 of both models (default: the recipe's, else 0.9 for bce and hinge, 0 for wgan-gp)",
        type=float,
    )
    beta2: float | None = flag(
        None,
        "Adam beta_2 of both models (default: the recipe's, else 0.999 for bce and hinge, 0.9 for wgan-gp)",
        type=float,
    )
    g_learning_rate: float | None = flag(
        None, "the generator's Adam learning rate (default: --learning-rate)", type=float, metavar="LR"
    )
    d_learning_rate: float | None = flag(
        None,
        "the discriminator's Adam learning rate (default: --learning-rate); a higher one than the generator's is "
        "the two time-scale update rule (Heusel et al. 2017)",
        type=float,
        metavar="LR",
    )
    lr_schedule: str | None = flag(
        None,
        "both learning rates over the run: constant, or decayed to zero at --epochs along a line (linear) or a "
        "half cosine (cosine) (default: the recipe's, else constant)",
        choices=LR_SCHEDULES,
    )
    r1: float | None = flag(
        None,
        "weight GAMMA of the R1 penalty GAMMA/2 * |grad_x D(x)|^2 on real images (Mescheder et al. 2018), added to "
        "the discriminator's loss; for --loss bce and hinge; needs float32 (default: the recipe's, 1 for fast, "
        "else 0: off)",
        type=float,
        metavar="GAMMA",
    )
    spectral_norm: bool | None = flag(
        None,
        "spectral normalization of the discriminator's layers (Miyato et al. 2018) (default: the recipe's, else off)",
        action=argparse.BooleanOptionalAction,
    )
    augment: str | None = flag(
        None,
        "differentiable augmentation of the real and generated images the discriminator sees (Zhao et al. 2020): "
        f"a comma-separated list of {', '.join(AUGMENTATIONS)}, or none (default: the recipe's, else none)",
        metavar="LIST",
    )
    top_k: float | None = flag(
        None,
        "top-k generator updates (Sinha et al. 2020): the generator learns only from the k of each batch's generated "
        "images its discriminator rates most real, k = batch x max(FRACTION, --top-k-decay ^ epochs trained), so k "
        "anneals from the whole batch down to FRACTION of it (default: the recipe's, else 1: every image)",
        type=float,
        metavar="FRACTION",
    )
    top_k_decay: float | None = flag(
        None,
        "with --top-k: the factor k shrinks by after every epoch (default: the paper's 0.99)",
        type=float,
        metavar="G",
    )
    g_width: float = flag(
        1.0, "the generator's width: every layer's channels (units) times W; 1 is the card's", type=float, metavar="W"
    )
    d_width: float = flag(
        1.0,
        "the discriminator's width: every layer's channels (units) times W; 1 is the card's",
        type=float,
        metavar="W",
    )
    noise_dim: int = flag(100, "length of the generator's input noise vector", type=int)
    train_size: int | None = flag(None, "train on the first N training images (default: all)", type=int, metavar="N")
    ema_decay: float = flag(
        0.99,
        "decay of the averaged generator (an exponential moving average of the generator's weights, with a "
        "warm-up: min(decay, (1+t)/(10+t)) at step t) that sampling, evaluation and the epoch grids use; "
        "0 makes the average the raw generator",
        type=float,
        metavar="D",
    )
    ema_half_life: float | None = flag(
        None,
        "the averaged generator's window as a half-life in training images, but never more than 5%% of the images "
        "trained so far (StyleGAN2-ADA's ramp-up); replaces --ema-decay when > 0 (default: the recipe's, else 0: off)",
        type=float,
        metavar="IMAGES",
    )
    seed: int = flag(0, "seed for weights, noise, dropout and shuffling (same seed, same run)", type=int)
    checkpoint_dir: str = flag("training_checkpoints", "folder for checkpoints and config.json", metavar="DIR")
    checkpoint: str | None = flag(
        None,
        "resume from this checkpoint of --checkpoint-dir (e.g. ckpt-1425, or best) instead of the latest, as a new "
        "branch: the later checkpoints are moved to archive/<time>/ first; a branch may change "
        "--learning-rate, --g-learning-rate and --d-learning-rate",
        metavar="NAME",
    )
    checkpoint_every: int = flag(15, "keep a checkpoint every K epochs (and after the last one)", type=int, metavar="K")
    output_dir: str | None = flag(
        None, "folder for epoch grids, dcgan.gif, history.csv, losses.png (default: --checkpoint-dir)", metavar="DIR"
    )
    logdir: str | None = flag(
        None,
        "folder of the TensorBoard event files (losses every --log-every batches; per epoch both generators' grids, "
        "images/s and --eval-every metrics; the hyperparameters); view with tensorboard --logdir DIR "
        "(default: OUTPUT_DIR/logs)",
        metavar="DIR",
    )
    log_every: int = flag(
        10,
        "read the losses back from the device every N batches (progress bar, NaN check, TensorBoard), not every "
        "batch, so a GPU never waits",
        type=int,
        metavar="N",
    )
    eval_every: int | None = flag(
        None,
        "every K epochs (and after the last) measure FID, classifier score, precision/recall and class shares "
        "on 2,000 generated digits against the test split (python -m dcgan_tf.evaluate uses 10,000, so its FID "
        "is lower) and add them to history.csv and metrics.png; the first time trains the evaluator CNN "
        "(a few minutes on a CPU)",
        type=int,
        metavar="K",
    )
    evaluator_dir: str | None = flag(
        None, "cache folder of evaluator CNNs (default: $XDG_CACHE_HOME/dcgan_tf or ~/.cache/dcgan_tf)", metavar="DIR"
    )
    strategy: str = flag(
        "default",
        "tf.distribute strategy: default (one device), mirrored (all local GPUs), multiworker (machines listed "
        "in TF_CONFIG); --batch-size is the global batch, split across replicas",
        choices=STRATEGIES,
    )
    precision: str = flag(
        "float32",
        "compute type (weights stay float32): mixed_bfloat16 (CPUs with AMX, where it measured 1.7x float32's speed, "
        "and Ampere or newer GPUs; no loss scaling needed), mixed_float16 (GPUs with tensor cores; with loss "
        "scaling), or auto (the one known or measured fastest on this machine, decided at the run's first start, "
        "printed, and kept by every resume)",
        choices=PRECISIONS,
    )
    mixed_precision: bool = flag(False, "shorthand for --precision mixed_float16")
    jit_compile: bool = flag(
        False, "compile the training step with XLA (try it on a GPU; on CPUs it ran at 0.52-0.71x of the default)"
    )
    fresh: bool = flag(False, "start over: move an existing run in the folders into archive/<time>/ first")
    dry_run: bool = flag(False, "train one batch, print its losses and write nothing (checks the setup)")

    def __post_init__(self) -> None:
        # What was left unset (None), for `as_recorded`; not a field, so config.json and equality ignore it.
        object.__setattr__(
            self, "_unset", frozenset(f.name for f in dataclasses.fields(self) if getattr(self, f.name) is None)
        )
        # Resolve now so config.json records the values: explicit flag, else the recipe's, else the loss's.
        if self.recipe not in RECIPES:
            raise DcganError(f"unknown --recipe {self.recipe!r}: choose from {', '.join(RECIPES)}")
        for defaults in (RECIPES[self.recipe], LOSS_DEFAULTS.get(self.loss, {})):
            for name, default in defaults.items():
                if getattr(self, name) is None:
                    object.__setattr__(self, name, default)
        if self.model != "self-conditioned":  # a recipe's clusters wait for that model (--recipe fast --model dcgan)
            for name in SELF_CONDITIONING.keys() & self._unset:
                object.__setattr__(self, name, None)
        if self.loss == "wgan-gp" and "r1" in self._unset:  # a recipe's R1 gives way to WGAN-GP's own penalty
            object.__setattr__(self, "r1", None)
        for name, off in OPTIONS_OFF.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, off)
        for name in ("epochs", "batch_size", "noise_dim", "checkpoint_every", "log_every"):
            require_positive(name, getattr(self, name))
        if self.eval_every is not None:
            require_positive("eval_every", self.eval_every)
        if self.train_size is not None:
            require_positive("train_size", self.train_size)
            if self.train_size < self.batch_size:
                raise DcganError(
                    f"--train-size {self.train_size} is smaller than --batch-size {self.batch_size}, so an epoch "
                    "would have no full batch: raise --train-size or lower --batch-size"
                )
        for name in ("g_learning_rate", "d_learning_rate"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, self.learning_rate)
        self._check_options()
        if self.max_minutes is not None:
            if not self.max_minutes > 0:  # also rejects NaN
                raise DcganError(f"--max-minutes must be a positive number of minutes (got {self.max_minutes})")
            if self.strategy == "multiworker":  # workers' clocks differ, but saving is collective
                raise DcganError("--max-minutes does not work with --strategy multiworker: use --epochs instead")
        if self.critic_steps is not None:
            require_positive("critic_steps", self.critic_steps)
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise DcganError(f"--{name} must be in [0, 1) (got {value})")
        if self.fresh and self.checkpoint is not None:
            raise DcganError("--fresh starts a new run and --checkpoint resumes an old one: pass only one of them")
        if self.precision not in PRECISIONS:
            raise DcganError(f"unknown --precision {self.precision!r}: choose from {', '.join(PRECISIONS)}")
        if self.mixed_precision:
            if self.precision not in ("float32", "mixed_float16"):
                raise DcganError(
                    f"--mixed-precision means --precision mixed_float16, not {self.precision}: pass only one of them"
                )
            object.__setattr__(self, "precision", "mixed_float16")
        if not self._recipe_r1:  # a recipe's R1 waits for `check_precision`: an older run may resume without it
            self.check_precision()
        if not 0 <= self.ema_decay < 1:  # also rejects NaN
            raise DcganError(f"--ema-decay must be in [0, 1), e.g. 0.99 or 0.999 (got {self.ema_decay})")
        for name in ("learning_rate", "g_learning_rate", "d_learning_rate"):
            if not getattr(self, name) > 0:  # also rejects NaN
                raise DcganError(f"--{name.replace('_', '-')} must be a positive number (got {getattr(self, name)})")
        if self.data is not None:  # absolute, so tools reading config.json find it from any working folder
            object.__setattr__(self, "data", os.path.abspath(os.path.expanduser(self.data)))
            object.__setattr__(self, "dataset", resolve_dataset(self.data, self.dataset))  # a folder of images
        if self.output_dir is None:  # resolve now so config.json records where outputs went
            object.__setattr__(self, "output_dir", self.checkpoint_dir)
        if self.logdir is None:
            object.__setattr__(self, "logdir", str(Path(self.output_dir) / "logs"))

    def _check_options(self) -> None:
        """Validate the training options (schedule, R1, augmentation, averaging window); normalise --augment."""
        if self.lr_schedule not in LR_SCHEDULES:
            raise DcganError(f"unknown --lr-schedule {self.lr_schedule!r}: choose from {', '.join(LR_SCHEDULES)}")
        if not (0 <= self.r1 < math.inf):  # also rejects NaN
            raise DcganError(f"--r1 must be a penalty weight >= 0, e.g. 1 (got {self.r1})")
        if self.r1 and self.loss == "wgan-gp":
            raise DcganError("--r1 is for --loss bce and hinge; wgan-gp has its own gradient penalty: drop --r1")
        names = [name.strip() for name in self.augment.split(",") if name.strip() and name.strip() != "none"]
        unknown = [name for name in names if name not in AUGMENTATIONS]
        if unknown:
            raise DcganError(
                f"unknown --augment {', '.join(unknown)}: a comma-separated list of {', '.join(AUGMENTATIONS)}, or none"
            )
        object.__setattr__(self, "augment", ",".join(dict.fromkeys(names)) or "none")
        if self.spectral_norm and self.strategy != "default":  # Keras' wrapper assigns weights in each replica
            raise DcganError("--spectral-norm works with --strategy default only: drop one of them")
        if not (0 <= self.ema_half_life < math.inf):
            raise DcganError(f"--ema-half-life must be a number of images >= 0, e.g. 10000 (got {self.ema_half_life})")
        if not 0 < self.top_k <= 1:  # also rejects NaN
            raise DcganError(f"--top-k must be a fraction of the batch in (0, 1], e.g. 0.5 (got {self.top_k})")
        if self.top_k_decay is not None and self.top_k == 1:  # it would change nothing: say so, not ignore it
            raise DcganError("--top-k-decay is for --top-k below 1: drop it or pass --top-k FRACTION")
        if self.top_k_decay is None and self.top_k < 1:
            object.__setattr__(self, "top_k_decay", 0.99)
        if self.top_k_decay is not None and not 0 < self.top_k_decay <= 1:
            raise DcganError(f"--top-k-decay must be in (0, 1], e.g. 0.99 (got {self.top_k_decay})")
        for name, default in SELF_CONDITIONING.items():
            if self.model != "self-conditioned":
                if getattr(self, name) is not None:
                    flag_name = "--" + name.replace("_", "-")
                    raise DcganError(f"{flag_name} is for --model self-conditioned: drop it or pass that model")
                continue
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
            require_positive(name, getattr(self, name))
        if self.clusters is not None and not 2 <= self.clusters <= MAX_CLASSES:
            raise DcganError(f"--clusters must be from 2 to {MAX_CLASSES} (got {self.clusters})")
        if self.model == "self-conditioned" and self.strategy != "default":  # clustering runs outside replicas
            if "model" in self._unset:  # the recipe picked it
                raise DcganError(
                    f"--recipe {self.recipe} trains --model self-conditioned, which works with --strategy default "
                    "only: add --model dcgan for the recipe's other settings, or drop --strategy"
                )
            raise DcganError("--model self-conditioned works with --strategy default only: drop one of them")
        for name in ("g_width", "d_width"):
            if not 0.25 <= getattr(self, name) <= 8:
                raise DcganError(
                    f"--{name.replace('_', '-')} must be a width multiplier from 0.25 to 8 (got {getattr(self, name)})"
                )

    @property
    def needs_float32(self) -> str | None:
        """The option that rules out mixed precision (a penalty on input gradients), or None."""
        if self.loss == "wgan-gp":
            return "--loss wgan-gp"
        if not self.r1:
            return None
        return f"--recipe {self.recipe}'s --r1 {self.r1:g}" if self._recipe_r1 else "--r1"

    @property
    def _recipe_r1(self) -> bool:
        """Whether R1 is on because the recipe set it, not a flag."""
        return "r1" in self._unset and bool(self.r1)

    def check_precision(self) -> None:
        """Refuse a --precision that cannot train this run (`Precision.refusal`), naming the way out.

        Training calls it once more after `as_recorded`: where the recipe set --r1, a run of the recipe recorded
        without R1 (``fast`` before 2026-12-07) resumes in the mixed precision it was made with.
        """
        refusal = Precision(self.precision).refusal(self.needs_float32) if self.precision != "auto" else None
        if refusal:
            raise DcganError(refusal + (", or add --r1 0 for the recipe's other settings" if self._recipe_r1 else ""))

    @property
    def augmentations(self) -> tuple[str, ...]:
        """--augment as names (empty for none)."""
        return () if self.augment == "none" else tuple(self.augment.split(","))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    def describe(self) -> str:
        """The resolved configuration, one ``name = value`` line per field, for printing at start."""
        return "\n".join(f"  {f.name:<17}= {getattr(self, f.name)!r}" for f in dataclasses.fields(self))

    def identity(self) -> tuple[str, ...]:
        """The fields that define this run: `RUN_IDENTITY`, and those of `IDENTITY_WHERE` that apply to it."""
        where = {
            "epochs": self.lr_schedule != "constant",
            "ema_decay": not self.ema_half_life,
            "top_k_decay": self.top_k < 1,
            "clusters": self.model == "self-conditioned",
            "recluster_every": self.model == "self-conditioned",
        }
        return RUN_IDENTITY + tuple(name for name in IDENTITY_WHERE if where[name])

    def as_recorded(self, saved: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
        """This config for resuming the run whose config.json is ``saved``, and what that changed.

        Where the run was made with our recipe and the recipe has changed since (``fast`` picks the
        self-conditioned model since issue 28), the fields the recipe set, not a flag, take the run's recorded
        values, so the run resumes as what it is; the rest is resolved again from the flags given.
        """
        recorded = {**OPTIONS_OFF, **saved}
        kept = {
            name: recorded[name]
            for name in RECIPES[self.recipe]
            if saved.get("recipe") == self.recipe
            and name in self._unset
            and recorded.get(name, getattr(self, name)) != getattr(self, name)
            and recorded[name] is not None  # a setting its model has not (the DCGAN's clusters) follows the model
        }
        if not kept:
            return self, {}
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self._unset}
        return TrainConfig(**given, **kept), kept

    def conflicts_with(self, saved: dict[str, Any]) -> list[str]:
        """Identity fields whose saved value differs from ours, as ``name=saved (now new)`` strings.

        Going back with ``--checkpoint`` starts a branch, which may change `BRANCH_MAY_CHANGE` (e.g. a
        smaller learning rate after the run diverged).
        """
        free = BRANCH_MAY_CHANGE if self.checkpoint is not None else ()
        # A config saved before an option existed was trained with it off (one learning rate for both).
        one_rate = {name: saved.get("learning_rate") for name in ("g_learning_rate", "d_learning_rate")}
        saved = {**OPTIONS_OFF, **one_rate, **saved}
        changed = [name for name in self.identity() if name in saved and saved[name] != getattr(self, name)]
        if "learning_rate" in changed:  # a per-model rate that only followed it is the same change: name it once
            changed = [
                name
                for name in changed
                if name not in ("g_learning_rate", "d_learning_rate")
                or saved[name] != saved["learning_rate"]
                or getattr(self, name) != self.learning_rate
            ]
        return [f"{name}={saved[name]!r} (now {getattr(self, name)!r})" for name in changed if name not in free]


def require_positive(name: str, value: int) -> None:
    """Raise `DcganError` naming ``--name`` unless ``value`` is a positive integer."""
    if value <= 0:
        raise DcganError(f"--{name.replace('_', '-')} must be a positive integer (got {value})")


def parse_variants(text: str) -> list[str]:
    """``dcgan,wgan-gp`` -> the names, checked against `VARIANTS` (one-line error otherwise)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names:
        raise DcganError(f"unknown --variants {', '.join(unknown) or repr(text)}: choose from {', '.join(VARIANTS)}")
    return list(dict.fromkeys(names))


def read_saved_config(directory: str | Path) -> dict[str, Any] | None:
    """The ``config.json`` saved in a run folder as a dict, or None if there is none."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DcganError(
            f"{path} is unreadable ({err}): restore it from a backup or start a new --checkpoint-dir"
        ) from None
    if not isinstance(saved, dict):
        raise DcganError(f"{path} is not a JSON object: restore it from a backup or start a new --checkpoint-dir")
    return saved


def _prog() -> str | None:
    """``python -m dcgan_tf.<tool>`` when run that way, so usage lines show the real command."""
    script = Path(sys.argv[0])
    return f"python -m dcgan_tf.{script.stem}" if script.parent.name == "dcgan_tf" else None


class Parser(argparse.ArgumentParser):
    """argparse with a short refusal: one usage line, the error, and where the flags are listed (the full
    usage block of a tool with 30 flags would bury the one line that matters)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"usage: {self.prog} [options]\nerror: {message} (see {self.prog} --help)\n")


def build_parser(cls: type = TrainConfig, description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per dataclass field, help and defaults taken from the field."""
    parser = Parser(prog=_prog(), description=description)
    for f in dataclasses.fields(cls):
        kwargs = dict(f.metadata)
        option = "--" + f.name.replace("_", "-")
        if f.default is False:
            parser.add_argument(option, action="store_true", **kwargs)
            continue
        if f.default is not None:
            kwargs["help"] = kwargs.get("help", "") + " (default: %(default)s)"
        parser.add_argument(option, default=f.default, **kwargs)
    return parser


def parse_config(argv: Sequence[str] | None, cls: type = TrainConfig, description: str | None = None) -> Any:
    """Parse command-line flags into a validated, frozen config of type ``cls``."""
    args = build_parser(cls, description).parse_args(argv)
    config = cls(**vars(args))
    import_tensorflow()  # the flags are valid, so the tool needs TensorFlow next: load it without its chatter
    return config
