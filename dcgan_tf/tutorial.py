"""The TensorFlow DCGAN tutorial's own checkpoints: recognising them, sampling from them, continuing them.

The tutorial's notebook saves ``tf.train.Checkpoint(generator_optimizer=..., discriminator_optimizer=...,
generator=..., discriminator=...)`` over its two ``Sequential`` models, the design card's generator and
discriminator, as ``training_checkpoints/ckpt-N`` (N counts the saves, one every 15 epochs), without a
``config.json``. This module owns everything about such a folder:

- `read_tutorial`: whether a checkpoint is the tutorial's, from the checkpoint's own object graph (the
  noise size from the first Dense kernel), in either layout: Keras 3 (TensorFlow 2.16 and later) stores a
  Sequential model's layers as ``generator/_functional/_operations/N``, Keras 2 (``tf-keras``, TensorFlow
  2.15 and earlier) as ``generator/layer_with_weights-N``. Anything else gets one line naming what was
  found and what was expected.
- `tutorial_generator`: the card's generator (`models.make_generator`) with the tutorial's weights and
  BatchNorm statistics, which is what ``sample``, ``interpolate``, ``export``, ``evaluate`` and
  `checkpoints.load_generator` use. There is no averaged generator in such a checkpoint.
- `continue_tutorial` and `TutorialStart`: ``python -m dcgan_tf.train --checkpoint-dir FOLDER`` continues a
  tutorial run with the card's recipe: both models, both optimizers' Adam moments and iteration counts, the
  averaged generator starting from the restored one. The tutorial's files are never written, moved or
  deleted: this project's run goes into the new subfolder ``FOLDER/dcgan_tf`` (`CONTINUED`), whose
  checkpoints can never be confused with the tutorial's ``ckpt-N`` beside it.

Why the object graph and not the checkpoint's keys: a key names a variable by its shortest path from the
checkpoint's root, so which key holds a weight depends on what else was saved (in a Keras 3 tutorial
checkpoint the generator's kernels are stored as ``generator_optimizer/_trainable_variables/N``, its
BatchNorm statistics as ``generator/_functional/_operations/N/moving_mean``). The object graph, saved in
every checkpoint, records every path, so each weight is found by where it sits in the model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf.config import TrainConfig, read_saved_config
from dcgan_tf.errors import DcganError

CONTINUED = "dcgan_tf"  # the subfolder of a tutorial's folder that holds this project's continuation of it
TUTORIAL_BATCH = 256  # the tutorial's BATCH_SIZE
_DEFAULT_NOISE = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "noise_dim")
_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VALUE = "VARIABLE_VALUE"
# The tutorial's own objects, as its notebook names them in tf.train.Checkpoint(...).
MODELS = ("generator", "discriminator")
OPTIMIZERS = ("generator_optimizer", "discriminator_optimizer")
# Continuing a tutorial run trains the design card's recipe, as the tutorial did; these settings must be its.
RECIPE_FIELDS = (
    "model",
    "loss",
    "recipe",
    "batch_size",
    "beta1",
    "beta2",
    "critic_steps",
    "lr_schedule",
    "r1",
    "spectral_norm",
    "augment",
    "precision",
    "top_k",
    "g_width",  # the tutorial's weights have the card's widths
    "d_width",
)
EXPECTED = (
    "expected a dcgan_tf training run (checkpoints beside their config.json) or the TensorFlow DCGAN tutorial's "
    "training_checkpoints (its generator and discriminator, saved by its notebook's tf.train.Checkpoint)"
)


class _Graph:
    """A checkpoint's object graph: which object holds which, and each variable's key in the checkpoint."""

    def __init__(self, reader: tf.train.CheckpointReader) -> None:
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        self.proto = trackable_object_graph_pb2.TrackableObjectGraph()
        self.proto.ParseFromString(reader.get_tensor(_GRAPH_KEY))

    def children(self, node: int) -> dict[str, int]:
        return {child.local_name: child.node_id for child in self.proto.nodes[node].children}

    def child(self, node: int | None, *names: str) -> int | None:
        """The node at ``names`` below ``node`` (None where the path does not exist)."""
        for name in names:
            if node is None:
                return None
            node = self.children(node).get(name)
        return node

    def key(self, node: int | None) -> str | None:
        """The checkpoint key of the variable ``node`` is (None if it is no variable)."""
        if node is None:
            return None
        return next((a.checkpoint_key for a in self.proto.nodes[node].attributes if a.name == _VALUE), None)

    def numbered(self, node: int | None, prefix: str = "") -> list[int]:
        """The children named ``{prefix}0``, ``{prefix}1``, ... of ``node``, in number order."""
        if node is None:
            return []
        found = {
            int(name[len(prefix) :]): child
            for name, child in self.children(node).items()
            if name.startswith(prefix) and name[len(prefix) :].isdigit()
        }
        return [found[number] for number in sorted(found)]


@dataclass(frozen=True)
class SavedOptimizer:
    """The keys of one Adam optimizer's state in the checkpoint: its update count, rate and moments, the
    moments in the order of its model's trainable variables."""

    iterations: str
    learning_rate: str | None
    momentums: tuple[str, ...]
    velocities: tuple[str, ...]


@dataclass(frozen=True)
class TutorialCheckpoint:
    """A checkpoint of the tutorial's notebook, as read from its object graph."""

    path: str
    layout: str  # "Keras 3" or "Keras 2", as printed
    noise_dim: int
    # Per saved layer with weights, in layer order: variable name (kernel, gamma, moving_mean, ...) -> key.
    generator: tuple[dict[str, str], ...]
    discriminator: tuple[dict[str, str], ...]
    optimizers: dict[str, SavedOptimizer]  # the ones saved, by their names in the checkpoint
    # Optimizers saved in a form this module does not read (TensorFlow 2.10's and earlier Keras optimizers).
    unreadable: tuple[str, ...]
    shapes: dict[str, tuple[int, ...]]  # every key's shape

    @property
    def name(self) -> str:
        return Path(self.path).name

    def generator_weights(self, generator: keras.Model) -> list[tuple[keras.Variable, str]]:
        """(variable of ``generator``, key) for every weight; `DcganError` unless they pair up exactly."""
        pairs = _pair(generator, self.generator, self.shapes)
        if isinstance(pairs, str):
            raise DcganError(f"{self.path}: its generator: {pairs}; {EXPECTED}")
        return pairs

    def restore_generator(self, generator: keras.Model) -> None:
        """Give ``generator`` (the card's, with this noise size) the tutorial's weights and BatchNorm statistics."""
        reader = tf.train.load_checkpoint(self.path)
        for variable, key in self.generator_weights(generator):
            variable.assign(reader.get_tensor(key))


def read_tutorial(path: str) -> TutorialCheckpoint:
    """The tutorial's checkpoint at ``path``, or `DcganError`: one line naming what it holds instead."""
    try:
        reader = tf.train.load_checkpoint(path)
        graph = _Graph(reader) if reader.has_tensor(_GRAPH_KEY) else None
    except (tf.errors.OpError, ValueError, IndexError) as err:
        raise DcganError(f"{path} cannot be read ({str(err).strip().splitlines()[0][:200]}); {EXPECTED}") from None
    if graph is None:  # TensorFlow 1's tf.compat.v1.train.Saver writes no object graph
        raise DcganError(f"{path} is a name-based (TensorFlow 1) checkpoint; {EXPECTED}")
    shapes = {key: tuple(shape) for key, shape in reader.get_variable_to_shape_map().items()}
    objects = graph.children(0)
    if "generator" not in objects:
        held = ", ".join(sorted(name for name in objects if name != "save_counter")) or "nothing"
        raise DcganError(f"{path} holds {held}, no generator; {EXPECTED}")
    layers = {name: _layers(graph, objects.get(name)) for name in MODELS}
    generator = layers["generator"][1]
    if not generator or "kernel" not in generator[0] or len(shapes.get(generator[0]["kernel"], ())) != 2:
        raise DcganError(f"{path} holds a generator that does not start with a Dense layer; {EXPECTED}")
    optimizers, unreadable = {}, []
    for name in OPTIMIZERS:
        state = _optimizer(graph, objects.get(name))
        if state is not None:
            optimizers[name] = state
        elif name in objects:
            unreadable.append(name)
    checkpoint = TutorialCheckpoint(
        path=path,
        layout=layers["generator"][0],
        noise_dim=shapes[generator[0]["kernel"]][0],
        generator=tuple(generator),
        discriminator=tuple(layers["discriminator"][1]),
        optimizers=optimizers,
        unreadable=tuple(unreadable),
        shapes=shapes,
    )
    from dcgan_tf.models import make_generator

    checkpoint.generator_weights(make_generator(checkpoint.noise_dim))  # raises unless it is the card's generator
    return checkpoint


def _layers(graph: _Graph, model: int | None) -> tuple[str, list[dict[str, str]]]:
    """(layout, the variables of each layer that has any, in layer order) of a saved Sequential model."""
    layers = graph.numbered(model, "layer_with_weights-")  # Keras 2: only the layers with weights are numbered
    layout = "Keras 2"
    if not layers:  # Keras 3: a Sequential model keeps its layers in a functional model's operations
        layout = "Keras 3"
        operations = graph.child(model, "_functional", "_operations")
        layers = graph.numbered(operations if operations is not None else graph.child(model, "_operations"))
    saved = []
    for layer in layers:
        # Keras 3 keeps a Dense kernel as "_kernel" (behind a property); the variable is named "kernel".
        variables = {name.lstrip("_"): graph.key(node) for name, node in graph.children(layer).items()}
        variables = {name: key for name, key in variables.items() if key is not None}
        if variables:
            saved.append(variables)
    return layout, saved


def _optimizer(graph: _Graph, node: int | None) -> SavedOptimizer | None:
    """The saved state of an Adam optimizer (Keras 3's, or Keras 2's since TensorFlow 2.11), or None."""
    iterations = graph.key(graph.child(node, "_iterations"))
    if iterations is None:
        return None
    return SavedOptimizer(
        iterations=iterations,
        learning_rate=graph.key(graph.child(node, "_learning_rate")),
        momentums=tuple(graph.key(n) for n in graph.numbered(graph.child(node, "_momentums"))),
        velocities=tuple(graph.key(n) for n in graph.numbered(graph.child(node, "_velocities"))),
    )


def _pair(
    model: keras.Model, saved: tuple[dict[str, str], ...], shapes: dict[str, tuple[int, ...]]
) -> list[tuple[keras.Variable, str]] | str:
    """(variable, key) for every weight of ``model`` against the saved layers, or what does not fit.

    Layer by layer in order, each variable by name and shape: every saved tensor is used once and
    every variable of the model filled, or nothing is paired.
    """
    layers = [layer for layer in model.layers if layer.weights]
    if len(saved) != len(layers):
        return f"{len(saved)} layers with weights where the tutorial's has {len(layers)}"
    pairs = []
    for number, (layer, variables) in enumerate(zip(layers, saved), start=1):
        weights = {weight.name: weight for weight in layer.weights}
        if set(weights) != set(variables):
            return (
                f"layer {number} holds {', '.join(sorted(variables))} where the tutorial's "
                f"{type(layer).__name__} holds {', '.join(sorted(weights))}"
            )
        for name, weight in weights.items():
            if shapes[variables[name]] != tuple(weight.shape):
                return (
                    f"layer {number}'s {name} is {shapes[variables[name]]} where the tutorial's "
                    f"{type(layer).__name__} has {tuple(weight.shape)}"
                )
            pairs.append((weight, variables[name]))
    return pairs


def tutorial_generator(path: str, which: str | None = None) -> keras.Model:
    """The card's generator with the weights of the tutorial's checkpoint at ``path``.

    ``which``: None or ``raw``; the tutorial keeps no averaged generator, so ``ema`` raises `DcganError`.
    """
    from dcgan_tf.models import make_generator

    checkpoint = read_tutorial(path)
    check_no_average(checkpoint.name, which)
    generator = make_generator(checkpoint.noise_dim)
    checkpoint.restore_generator(generator)
    return generator


def check_no_average(name: str, which: str | None) -> None:
    """Raise `DcganError` where the averaged generator (``ema`` or ``both``) is asked of a tutorial checkpoint."""
    if which in ("ema", "both"):
        raise DcganError(
            f"{name} is the TensorFlow tutorial's checkpoint, which has no averaged generator: "
            "use --generator raw, or leave --generator out (the raw one is then used)"
        )


@dataclass(frozen=True)
class TutorialStart:
    """A tutorial checkpoint that a new run of this project starts from (`continue_tutorial`)."""

    checkpoint: TutorialCheckpoint

    def restore(self, gan, num_images: int) -> None:
        """Load both models, both optimizers (Adam moments, iteration counts) and the position into ``gan``
        (a `gan.Gan` of the card's recipe); the averaged generator starts as the restored generator.

        The epochs done are the tutorial's optimizer steps over its batches per epoch on ``num_images``
        digits: ``ceil(num_images / 256)``, as its ``tf.data`` pipeline keeps the last, smaller batch.
        """
        checkpoint = self.checkpoint
        reader = tf.train.load_checkpoint(checkpoint.path)
        used = {_GRAPH_KEY} | {key for key in reader.get_variable_to_shape_map() if key.startswith("save_counter/")}
        pairs = checkpoint.generator_weights(gan.generator)
        discriminator = _pair(gan.discriminator, checkpoint.discriminator, checkpoint.shapes)
        if isinstance(discriminator, str):
            raise DcganError(f"{checkpoint.path}: its discriminator: {discriminator}; {EXPECTED}")
        pairs += discriminator
        for name, optimizer, model in (
            ("generator_optimizer", gan.generator_optimizer, gan.generator),
            ("discriminator_optimizer", gan.discriminator_optimizer, gan.discriminator),
        ):
            pairs += _optimizer_pairs(checkpoint, name, optimizer, model)
            if checkpoint.optimizers[name].learning_rate is not None:
                used.add(checkpoint.optimizers[name].learning_rate)  # checked against the run's by continue_tutorial
        for variable, key in pairs:
            variable.assign(reader.get_tensor(key))
            used.add(key)
        unused = sorted(set(reader.get_variable_to_shape_map()) - used)
        if unused:  # something this mapping does not know: continuing without it would not be the tutorial's run
            raise DcganError(f"{checkpoint.path} holds {unused[0]}, which the tutorial's models do not; {EXPECTED}")
        gan.average.reset()  # the averaged generator starts from the restored generator
        steps = int(reader.get_tensor(checkpoint.optimizers["discriminator_optimizer"].iterations))
        per_epoch = math.ceil(num_images / TUTORIAL_BATCH)
        epoch = steps // per_epoch
        gan.batches.assign(steps)
        gan.set_position(epoch)
        exact = "" if steps % per_epoch == 0 else f" (of {steps / per_epoch:.2f}: the tutorial trained other digits)"
        print(
            f"{checkpoint.name} of the tutorial ({checkpoint.layout}): both models and Adam optimizers restored, "
            f"{steps:,} steps = {epoch} epochs of {per_epoch} batches of {TUTORIAL_BATCH} on {num_images:,} "
            f"digits{exact}; continuing at epoch {epoch + 1}, the averaged generator starting from the restored one"
        )


def _optimizer_pairs(
    checkpoint: TutorialCheckpoint, name: str, optimizer, model: keras.Model
) -> list[tuple[keras.Variable, str]]:
    """(variable of ``optimizer``, key) for its iteration count and each trainable variable's two Adam moments."""
    saved = checkpoint.optimizers[name]
    trainable = model.trainable_variables
    if not len(saved.momentums) == len(saved.velocities) == len(trainable):
        raise DcganError(
            f"{checkpoint.path}: its {name} holds moments of {len(saved.momentums)} variables where the tutorial's "
            f"has {len(trainable)}; {EXPECTED}"
        )
    # Keras 3's Adam keeps the moments in these lists, in the order of the variables it was built for
    # (`gan.build_gan` builds it on the model's trainable variables); not public API, so checked.
    momentums, velocities = getattr(optimizer, "_momentums", None), getattr(optimizer, "_velocities", None)
    if momentums is None or velocities is None or not len(momentums) == len(velocities) == len(trainable):
        raise DcganError(
            f"this Keras {keras.__version__} keeps Adam's moments where this project does not look, so "
            f"{checkpoint.name} cannot be continued: sample from it, or train with the Keras of requirements.txt"
        )
    pairs = [(optimizer.iterations, saved.iterations)]
    for variable, momentum, velocity, m, v in zip(trainable, momentums, velocities, saved.momentums, saved.velocities):
        for key in (m, v):
            if checkpoint.shapes[key] != tuple(variable.shape):
                raise DcganError(
                    f"{checkpoint.path}: its {name}'s moments do not fit the tutorial's {variable.name} "
                    f"{tuple(variable.shape)}; {EXPECTED}"
                )
        pairs += [(momentum, m), (velocity, v)]
    return pairs


def trained_steps(path: str) -> int | None:
    """The batches the tutorial's checkpoint at ``path`` was trained on (its discriminator optimizer's
    updates), or None where it saved no optimizer."""
    saved = read_tutorial(path).optimizers.get("discriminator_optimizer")
    return None if saved is None else int(tf.train.load_checkpoint(path).get_tensor(saved.iterations))


def is_tutorial_folder(folder: Path) -> bool:
    """Whether ``folder`` holds checkpoints, none of them this project's (whose position, ``epoch``, every run
    saves): the tutorial's folder, or one `read_tutorial` will name.

    The checkpoints decide, not a ``config.json``: one copied into a tutorial's folder (as this project once
    advised) must not make it a run to resume, whose branching (``--checkpoint``) would move the tutorial's later
    checkpoints aside. Only where no checkpoint's index can be read does a ``config.json`` say it is a run (whose
    damage `runs` reports, and ``--fresh`` sets aside).
    """
    from dcgan_tf.checkpoints import list_checkpoints

    if not folder.is_dir():
        return False
    kinds = [_run_checkpoint_or_none(info.path) for info in list_checkpoints(folder)]
    readable = [kind for kind in kinds if kind is not None]
    if readable:
        return not any(readable)
    return bool(kinds) and read_saved_config(folder) is None


def _run_checkpoint_or_none(path: str) -> bool | None:
    """Whether the checkpoint at ``path`` is this project's; None where its index cannot be read."""
    from dcgan_tf.checkpoints import is_run_checkpoint

    try:
        return is_run_checkpoint(path)
    except (tf.errors.OpError, ValueError, IndexError):  # find_checkpoint names the damage when it is asked for
        return None


def continue_tutorial(config: TrainConfig) -> tuple[TrainConfig, TutorialStart | None]:
    """``config`` for training, and where it starts: a ``--checkpoint-dir`` of the tutorial's checkpoints
    becomes its subfolder `CONTINUED`, which starts from the tutorial's checkpoint (``--checkpoint`` or
    the latest) or, once it holds a run, resumes that one. Any other folder: ``config`` unchanged, None.
    """
    from dcgan_tf.checkpoints import find_checkpoint, list_checkpoints

    folder = Path(config.checkpoint_dir)
    if not is_tutorial_folder(folder):
        return config, None
    continued = folder / CONTINUED
    if list_checkpoints(continued) and not config.fresh:
        print(
            f"{folder} holds the TensorFlow tutorial's checkpoints, left as they are: resuming this project's run "
            f"of them in {continued}"
        )
        saved = read_saved_config(continued) or {}
        if config.noise_dim == _DEFAULT_NOISE and "noise_dim" in saved:  # the noise size is the checkpoint's
            config = dataclasses.replace(config, noise_dim=int(saved["noise_dim"]))
        return _moved(config, continued), None
    info = find_checkpoint(folder, config.checkpoint)
    checkpoint = read_tutorial(info.path)
    if checkpoint.unreadable:
        raise DcganError(
            f"{info.path} holds the tutorial's {' and '.join(checkpoint.unreadable)} in the form of TensorFlow 2.10 "
            "and earlier, whose Adam state this project does not read: sample from it (python -m dcgan_tf.sample "
            f"--checkpoint-dir {folder}), or train anew in another --checkpoint-dir"
        )
    missing = [name for name in MODELS[1:] if not checkpoint.discriminator] + [
        name for name in OPTIMIZERS if name not in checkpoint.optimizers
    ]
    if missing:
        raise DcganError(
            f"{info.path} holds the tutorial's generator but not its {' and '.join(missing)}, which continuing its "
            f"training needs: sample from it (python -m dcgan_tf.sample --checkpoint-dir {folder}), or train anew "
            "in another --checkpoint-dir"
        )
    config = _card_recipe(config, checkpoint)
    print(
        f"{folder} holds the TensorFlow tutorial's checkpoints, left as they are: this project's run continues "
        f"{info.name} in {continued}"
    )
    return _moved(dataclasses.replace(config, checkpoint=None), continued), TutorialStart(checkpoint)


def _card_recipe(config: TrainConfig, checkpoint: TutorialCheckpoint) -> TrainConfig:
    """``config`` with the tutorial checkpoint's noise size, or `DcganError` where it is not the card's recipe
    with the learning rates the checkpoint was trained with."""
    if config.noise_dim not in (_DEFAULT_NOISE, checkpoint.noise_dim):
        raise DcganError(
            f"{checkpoint.name}'s generator takes noise of {checkpoint.noise_dim}, not --noise-dim {config.noise_dim}: "
            "drop --noise-dim to continue it"
        )
    card = TrainConfig(data=config.data, noise_dim=checkpoint.noise_dim)
    changed = [
        f"--{name.replace('_', '-')} {getattr(config, name)}"
        for name in RECIPE_FIELDS
        if getattr(config, name) != getattr(card, name)
    ]
    if config.recipe != card.recipe:  # the recipe set the rest: naming it is enough
        changed = [f"--recipe {config.recipe}"]
    if changed:
        raise DcganError(
            f"{checkpoint.name} is the TensorFlow tutorial's, which continues with its own recipe only "
            f"(the design card's): drop {', '.join(changed)}"
        )
    reader = tf.train.load_checkpoint(checkpoint.path)
    for name, flag in (("generator_optimizer", "g_learning_rate"), ("discriminator_optimizer", "d_learning_rate")):
        key = checkpoint.optimizers[name].learning_rate
        saved = float(reader.get_tensor(key)) if key is not None else None
        if saved is not None and not np.isclose(saved, getattr(config, flag), rtol=1e-5, atol=0):
            raise DcganError(
                f"{checkpoint.name}'s {name} was trained with learning rate {saved:.6g}, not "
                f"{getattr(config, flag):g}: pass --{flag.replace('_', '-')} {saved:.6g} to continue it as it was"
            )
    return dataclasses.replace(config, noise_dim=checkpoint.noise_dim)


def _moved(config: TrainConfig, continued: Path) -> TrainConfig:
    """``config`` writing into ``continued`` wherever it would have written into the tutorial's folder."""
    folder = config.checkpoint_dir
    output_dir = str(continued) if config.output_dir == folder else config.output_dir
    logdir = config.logdir
    if logdir == str(Path(config.output_dir) / "logs"):
        logdir = str(Path(output_dir) / "logs")
    return dataclasses.replace(config, checkpoint_dir=str(continued), output_dir=output_dir, logdir=logdir)
