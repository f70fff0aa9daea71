"""``python -m dcgan_tf.compare``: train (or resume) each GAN variant and compare them on one table.

Flags become a frozen `CompareConfig`; the work is `dcgan_tf.comparison.compare`. TensorFlow is
imported only after the flags are valid, so ``--help`` and flag errors are instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dcgan_tf.config import DATASETS, VARIANTS, flag, parse_config, parse_variants, require_positive
from dcgan_tf.errors import run_main

DESCRIPTION = (
    "Train each GAN variant (dcgan: the tutorial's; dense: fully connected; conditional: DCGAN conditioned "
    "on the digit; wgan-gp: the DCGAN with the WGAN-GP loss) in ROOT/<variant>/, on the same data and "
    "epochs, measure each with the same evaluator, and write ROOT/comparison.md and ROOT/comparison.png. "
    "Running it again resumes unfinished runs and re-measures."
)
ALL_VARIANTS = ",".join(VARIANTS)


@dataclass(frozen=True)
class CompareConfig:
    """What to compare and how (see ``python -m dcgan_tf.compare --help``)."""

    epochs: int = flag(5, "epochs of every variant", type=int)
    data: str | None = flag(
        None, "the --dataset as .npz or IDX folder (default: download with keras.datasets)", metavar="PATH"
    )
    dataset: str = flag("mnist", "mnist or fashion_mnist", choices=DATASETS)
    variants: str = flag(ALL_VARIANTS, "comma-separated variants to train and compare", metavar="LIST")
    root: str = flag("comparison", "folder that holds one run folder per variant and the results", metavar="DIR")
    train_size: int | None = flag(None, "train on the first N training images (default: all)", type=int, metavar="N")
    batch_size: int = flag(256, "images per training step", type=int)
    eval_every: int | None = flag(
        None, "evaluate every K epochs during training, for the curves (default: epochs / 5)", type=int, metavar="K"
    )
    num_samples: int = flag(10_000, "generated digits per variant for the final table", type=int, metavar="N")
    evaluator_dir: str | None = flag(None, "cache folder of evaluator CNNs (default: ~/.cache/dcgan_tf)", metavar="DIR")
    seed: int = flag(0, "seed of every run and of the evaluation noise", type=int)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "num_samples"):
            require_positive(name, getattr(self, name))
        for name in ("train_size", "eval_every"):
            if getattr(self, name) is not None:
                require_positive(name, getattr(self, name))
        parse_variants(self.variants)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv, CompareConfig, description=DESCRIPTION)
    from dcgan_tf.comparison import compare, describe

    print("dcgan_tf comparison with:\n" + describe(config), flush=True)
    compare(config)
    return 0


if __name__ == "__main__":
    run_main(main)
