"""``python -m dcgan_tf.export``: export a trained generator as a ``.keras`` file or a SavedModel.

Flags become a frozen `ExportConfig`; the work is `dcgan_tf.exporting.export_generator`.
TensorFlow is imported only after the flags are valid, so ``--help`` and flag errors are instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dcgan_tf.config import GENERATOR_NAMES, checkpoint_flag, flag, generator_flag, parse_config
from dcgan_tf.errors import run_main
from dcgan_tf.exporting import export_kind

DESCRIPTION = (
    "Export a trained generator. --out FILE.keras writes Keras' native format (keras.saving.load_model); "
    "--out DIR/ writes a TensorFlow SavedModel whose serving_default signature maps 'noise' "
    "(None, noise_dim) float32 to 'images' (None, 28, 28, 1) in [-1, 1]."
)


@dataclass(frozen=True)
class ExportConfig:
    """What to export and where to (see ``python -m dcgan_tf.export --help``)."""

    checkpoint_dir: str = flag("training_checkpoints", "folder of the training run", metavar="DIR")
    checkpoint: str | None = checkpoint_flag()
    generator: str | None = generator_flag()
    out: str = flag("generator.keras", "FILE.keras or DIR/ (SavedModel)", metavar="PATH")
    overwrite: bool = flag(False, "replace an existing export at --out (otherwise refuse)")

    def __post_init__(self) -> None:
        export_kind(self.out)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv, ExportConfig, description=DESCRIPTION)
    from dcgan_tf.checkpoints import find_checkpoint, generator_choices
    from dcgan_tf.exporting import export_generator

    # The generator the default means here (a tutorial's checkpoint has only the raw one), named in the message.
    [which] = generator_choices(find_checkpoint(config.checkpoint_dir, config.checkpoint).path, config.generator)
    path = export_generator(config.checkpoint_dir, config.out, config.checkpoint, config.overwrite, which)
    print(f"exported the {GENERATOR_NAMES[which]} generator to {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
