"""What a run trains and checkpoints: the models, their optimizers and averaged generator, the fixed
grid noise, and the run's position (the counters a resume continues from).

`build_gan(config)` builds it all, identically for identical seeds; `Gan.make_step` compiles the
training step over it (`step.make_train_step`). The counters are named once, here:

- ``batches``: the run's batch counter, advanced once per batch trained. It numbers checkpoints and
  TensorBoard steps, seeds each batch's random draws, places the learning-rate schedule, and says
  whether the generator is due (`generator_due`: every ``--critic-steps``-th batch; the epoch loop keeps
  the counter's value on the host for this, so that no batch waits on a read from the device).
- ``epoch``: epochs finished; ``epoch_batches``: batches trained of the unfinished epoch (a resume
  mid-epoch skips them); ``sums``: that epoch's running sums (`EpochSums`).
- The optimizers' own ``iterations`` count their updates only (a skipped mixed_float16 step, a
  generator that waits for the critic), which is why they are not the run's counter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf.averaging import WeightAverage
from dcgan_tf.clusters import Clusters, sampler
from dcgan_tf.config import TrainConfig
from dcgan_tf.data import DATASETS
from dcgan_tf.losses import METRICS, get_loss
from dcgan_tf.models import build_generator, build_models, model_spec, random_state
from dcgan_tf.players import Players
from dcgan_tf.precision import Precision
from dcgan_tf.sampling import grid_images, grid_noise
from dcgan_tf.step import LearningRates, TopK, make_train_step


@dataclass
class EpochSums:
    """Running sums over the unfinished epoch's batches: each of METRICS, and the seconds spent training."""

    metrics: np.ndarray = field(default_factory=lambda: np.zeros(len(METRICS)))  # (4,) float64
    seconds: float = 0.0

    def to_vector(self) -> np.ndarray:
        """The checkpoint's form: METRICS' sums then the seconds, (5,) float64."""
        return np.append(self.metrics, self.seconds).astype(np.float64)

    @classmethod
    def from_vector(cls, vector: np.ndarray) -> EpochSums:
        return cls(np.array(vector[: len(METRICS)], np.float64), float(vector[len(METRICS)]))


def generator_due(batch_number: int, critic_steps: int) -> bool:
    """Whether the generator is updated in the batch that brings the batch counter to ``batch_number``
    (from 1): on every ``critic_steps``-th batch, after as many discriminator (critic) updates."""
    return batch_number % critic_steps == 0


def _counter() -> tf.Variable:
    return tf.Variable(0, dtype=tf.int64, trainable=False)


@dataclass
class Gan:
    """Everything a run trains and checkpoints, built for one config."""

    generator: keras.Model
    discriminator: keras.Model
    generator_optimizer: keras.optimizers.Optimizer
    discriminator_optimizer: keras.optimizers.Optimizer
    generator_ema: keras.Model  # the averaged generator (see `averaging`); never trained directly
    average: WeightAverage  # keeps generator_ema the average of generator
    sample_noise: tf.Variable  # (K, noise_dim): the epoch grids' noise (`sampling.grid_noise`), fixed for the run
    recipe: tf.Variable  # the --recipe name (a string), so a checkpoint says how it was trained
    batches: tf.Variable = field(default_factory=_counter)  # the run's batch counter (see the module's docstring)
    epoch: tf.Variable = field(default_factory=_counter)  # epochs finished
    epoch_batches: tf.Variable = field(default_factory=_counter)  # batches trained of the unfinished epoch
    sums: tf.Variable = field(  # EpochSums.to_vector() of the unfinished epoch
        default_factory=lambda: tf.Variable(tf.zeros(len(METRICS) + 1, tf.float64), trainable=False)
    )
    clusters: Clusters | None = None  # --model self-conditioned: what its images are conditioned on

    def make_step(
        self, config: TrainConfig, strategy: tf.distribute.Strategy | None, steps_per_epoch: int
    ) -> Callable[..., dict[str, tf.Tensor]]:
        """The compiled training step over these models and optimizers (see `step.make_train_step`);
        ``steps_per_epoch`` places --epochs, where a learning-rate schedule ends, and top-k's epochs in batches."""
        players = Players(self.generator, self.discriminator, self.generator_optimizer, self.discriminator_optimizer)
        rates = LearningRates(
            config.g_learning_rate, config.d_learning_rate, config.lr_schedule, config.epochs * steps_per_epoch
        )
        return make_train_step(
            players,
            get_loss(config.loss, config.r1),
            config.seed,
            self.batches,
            strategy=strategy,
            average=self.average,
            jit_compile=config.jit_compile,
            learning_rates=rates,
            augmentations=config.augmentations,
            top_k=TopK(config.top_k, config.top_k_decay, steps_per_epoch),
            relabel=None if self.clusters is None else self.clusters.labels_of,
        )

    @property
    def batches_trained(self) -> int:
        """The number of batches trained so far, which names checkpoints (one per training position)."""
        return int(self.batches.numpy())

    def position(self) -> tuple[int, int, EpochSums]:
        """Where the run is: (epochs finished, batches of the next epoch done, that epoch's running sums)."""
        return int(self.epoch), int(self.epoch_batches), EpochSums.from_vector(self.sums.numpy())

    def set_position(self, epoch: int, epoch_batches: int = 0, sums: EpochSums | None = None) -> None:
        """Record the position a checkpoint saved now resumes from (`position`)."""
        self.epoch.assign(epoch)
        self.epoch_batches.assign(epoch_batches)
        self.sums.assign((sums or EpochSums()).to_vector())

    def sampling_view(self, generator: keras.Model) -> keras.Model:
        """``generator`` as the tools sample it: a self-conditioned one draws its clusters by their shares
        (`clusters.sampler`); any other is itself."""
        return generator if self.clusters is None else sampler(generator, self.clusters.shares.numpy())

    def epoch_grid(self, generator: keras.Model | None = None) -> tuple[np.ndarray, int]:
        """The averaged generator's (or ``generator``'s) digits from the fixed noise, and the grid's column count."""
        return grid_images(generator or self.generator_ema, self.sample_noise.numpy())

    def checkpoint_objects(self) -> dict:
        # The keys are the checkpoint's names: a new one restores older checkpoints through checkpoints.RENAMED,
        # and one that older checkpoints lack is in checkpoints.OPTIONAL_OBJECTS.
        return {
            "generator": self.generator,
            "generator_ema": self.generator_ema,
            "discriminator": self.discriminator,
            "generator_optimizer": self.generator_optimizer,
            "discriminator_optimizer": self.discriminator_optimizer,
            "dropout_state": random_state(self.discriminator),
            "sample_noise": self.sample_noise,
            "recipe": self.recipe,
            "batches": self.batches,
            "epoch": self.epoch,
            "epoch_batches": self.epoch_batches,  # saved as "step" before 2026-12-03 (checkpoints.RENAMED)
            "sums": self.sums,
            **({} if self.clusters is None else {"clusters": self.clusters}),
        }


def build_gan(
    config: TrainConfig,
    strategy: tf.distribute.Strategy | None = None,
    architecture: str | None = None,
    num_classes: int | None = None,
    num_images: int = 1,
) -> Gan:
    """Models, optimizers and sample noise for ``config``, identical for identical seeds; ``architecture``
    overrides ``config.model`` (the one an older checkpoint saved under that name holds); ``num_classes``
    is the data's class count (default: the named --dataset's; an image folder's comes from the folder), and
    ``num_images`` the training images a self-conditioned model assigns to clusters.

    Everything is created inside ``strategy.scope()`` so that variables are mirrored across replicas.
    """
    strategy = strategy or tf.distribute.get_strategy()
    architecture = architecture or config.model
    synchronized = strategy.num_replicas_in_sync > 1
    spec = model_spec(architecture)
    if spec.self_conditioned:  # conditioned on clusters, not on the dataset's classes
        num_classes = config.clusters
    elif num_classes is None:  # a conditional pair's label range
        num_classes = DATASETS.get(config.dataset, DATASETS["mnist"]).num_classes
    precision = Precision(config.precision)
    keras.utils.set_random_seed(config.seed)  # weight initialisation and dropout seeds
    with precision.building(), strategy.scope():
        generator, discriminator = build_models(
            architecture,
            config.noise_dim,
            seed=config.seed,
            synchronized=synchronized,
            spectral_norm=config.spectral_norm,
            num_classes=num_classes,
            widths=(config.g_width, config.d_width),
        )
        optimizers = []
        for model, rate in ((generator, config.g_learning_rate), (discriminator, config.d_learning_rate)):
            optimizer = precision.optimizer(rate, config.beta1, config.beta2)
            # Build now, in the strategy's scope: a checkpoint can then restore the Adam moments,
            # and Keras optimizers first built inside a replica step fail under tf.distribute.
            optimizer.build(model.trainable_variables)
            optimizers.append(optimizer)
        generator_ema = build_generator(architecture, config.noise_dim, synchronized, num_classes, config.g_width)
        images_per_update = config.batch_size * config.critic_steps  # trained per generator update
        average = WeightAverage(
            generator,
            generator_ema,
            decay=config.ema_decay,
            half_life=config.ema_half_life,
            images_per_step=images_per_update,
        )
        average.reset()  # the average starts at the raw generator's initial weights
        clusters = None
        if spec.self_conditioned:
            features = discriminator.get_layer("features").output.shape[-1]
            clusters = Clusters(config.clusters, num_images, features)
    return Gan(
        generator,
        discriminator,
        *optimizers,
        generator_ema=generator_ema,
        average=average,
        sample_noise=tf.Variable(grid_noise(generator, config.seed)),
        recipe=tf.Variable(config.recipe, trainable=False),
        clusters=clusters,
    )
