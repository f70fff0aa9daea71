"""``python -m dcgan_tf.interpolate``: walk between random points of a trained generator's latent space.

Writes a grid PNG (one row per walk, endpoints in the first and last column) and a looping GIF.
Flags become a frozen `InterpolateConfig`; the work is `dcgan_tf.sampling.interpolate_checkpoint`.
TensorFlow is imported only after the flags are valid, so ``--help`` and flag errors are instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dcgan_tf.config import checkpoint_flag, flag, generator_flag, parse_config
from dcgan_tf.errors import run_main
from dcgan_tf.sampling import METHODS, check_walk_out, check_walks, parse_digit

DESCRIPTION = (
    "Walk between random latent points of a trained generator: a grid PNG with one row per walk, "
    "and an animated GIF of all walks side by side."
)


@dataclass(frozen=True)
class InterpolateConfig:
    """Which walks to draw and where to (see ``python -m dcgan_tf.interpolate --help``)."""

    checkpoint_dir: str = flag("training_checkpoints", "folder of the training run", metavar="DIR")
    checkpoint: str | None = checkpoint_flag()
    generator: str | None = generator_flag()
    walks: int = flag(8, "how many walks (rows of the grid)", type=int, metavar="W")
    steps: int = flag(10, "digits per walk, both endpoints included", type=int, metavar="S")
    method: str = flag(
        "slerp",
        "slerp: along the great circle (keeps the noise's norm); lerp: straight line",
        choices=METHODS,
    )
    seed: int = flag(0, "seed of the walks' endpoints (same seed, same walks)", type=int)
    out: str = flag("interpolation.png", "grid PNG to write", metavar="FILE.png")
    gif: str | None = flag(None, "animated GIF to write (default: --out with .gif)", metavar="FILE.gif")
    digit: str | None = flag(
        None,
        "conditional models: keep this class (a name, or a number: 0-9 for MNIST) along every walk (default: walk i "
        "draws class i modulo the class count)",
        metavar="CLASS",
    )

    def __post_init__(self) -> None:
        parse_digit(self.digit)
        check_walks(self.walks, self.steps, self.method)
        check_walk_out(self.out)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv, InterpolateConfig, description=DESCRIPTION)
    from dcgan_tf.sampling import interpolate_checkpoint

    png, gif = interpolate_checkpoint(
        config.checkpoint_dir,
        config.out,
        walks=config.walks,
        steps=config.steps,
        seed=config.seed,
        method=config.method,
        checkpoint=config.checkpoint,
        gif=config.gif,
        which=config.generator,
        digit=parse_digit(config.digit),
    )
    print(f"wrote {config.walks} {config.method} walks of {config.steps} steps to {png} and {gif}")
    return 0


if __name__ == "__main__":
    run_main(main)
