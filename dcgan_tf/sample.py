"""``python -m dcgan_tf.sample``: generate digits from a training run's checkpoint.

Flags become a frozen `SampleConfig`; the work is `dcgan_tf.sampling.sample_checkpoint`.
TensorFlow is imported only after the flags are valid, so ``--help`` and flag errors are instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dcgan_tf.config import checkpoint_flag, flag, generator_flag, parse_config
from dcgan_tf.errors import DcganError, run_main
from dcgan_tf.sampling import output_kind, parse_digit

DESCRIPTION = (
    "Generate digits with a trained generator. The output's type follows --out: FILE.png writes one "
    "grid, FILE.npz a uint8 array 'images' (N, 28, 28) like MNIST's x_train, DIR/ one PNG per digit."
)


@dataclass(frozen=True)
class SampleConfig:
    """What to sample and where to (see ``python -m dcgan_tf.sample --help``)."""

    checkpoint_dir: str = flag("training_checkpoints", "folder of the training run", metavar="DIR")
    checkpoint: str | None = checkpoint_flag()
    generator: str | None = generator_flag()
    num: int = flag(16, "how many digits to generate", type=int, metavar="N")
    seed: int = flag(0, "seed of the noise (same seed, same digits)", type=int)
    out: str = flag("samples.png", "FILE.png, FILE.npz or DIR/", metavar="PATH")
    digit: str | None = flag(
        None,
        "conditional models: draw only this class, by name (an image folder's subfolder, a Fashion-MNIST class "
        "such as Sandal) or number (0-9 for MNIST's digits), or 'all' (the default): one row per class "
        "(--num rounded up to a multiple of the class count); .npz output then also holds the 'labels' array",
        metavar="CLASS",
    )

    def __post_init__(self) -> None:
        parse_digit(self.digit)
        if self.num <= 0:
            raise DcganError(f"--num must be a positive integer (got {self.num})")
        output_kind(self.out)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv, SampleConfig, description=DESCRIPTION)
    from dcgan_tf.sampling import sample_checkpoint

    written = sample_checkpoint(
        config.checkpoint_dir,
        config.out,
        config.num,
        config.seed,
        config.checkpoint,
        config.generator,
        parse_digit(config.digit),
    )
    where = written[0] if len(written) == 1 else f"{len(written)} files in {written[0].parent}"
    print(f"wrote samples (seed {config.seed}) to {where}")
    return 0


if __name__ == "__main__":
    run_main(main)
