"""``python -m dcgan_tf.evaluate``: measure a training run's digits (FID, classifier score, precision,
recall, class histogram) against the MNIST test split; see `dcgan_tf.evaluation`.

Flags become a frozen `EvaluateConfig`; TensorFlow is imported only after they are valid, so
``--help`` and flag errors are instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dcgan_tf.config import GENERATORS, checkpoint_flag, flag, generator_flag, parse_config
from dcgan_tf.errors import DcganError, run_main

# Kept in step with dcgan_tf.evaluation.DEFAULT_SAMPLES and metrics.DEFAULT_K (not imported: they
# live beside TensorFlow imports).
DEFAULT_SAMPLES = 10_000
DEFAULT_K = 3


@dataclass(frozen=True)
class EvaluateConfig:
    """What to evaluate and how (see ``python -m dcgan_tf.evaluate --help``)."""

    checkpoint_dir: str = flag(
        "training_checkpoints", "the training run's folder (its --checkpoint-dir)", metavar="DIR"
    )
    checkpoint: str | None = checkpoint_flag()
    generator: str | None = generator_flag((*GENERATORS, "both"))
    all_checkpoints: bool = flag(False, "evaluate every checkpoint in the folder and plot the metrics against epoch")
    num_samples: int = flag(
        DEFAULT_SAMPLES, "generated digits per checkpoint (and real digits for the floor)", type=int, metavar="N"
    )
    data: str | None = flag(
        None,
        "the run's dataset as .npz or IDX folder, whose test split is the reference and whose training split "
        "trains the evaluator (default: the --data the run was trained on, from its config.json)",
        metavar="PATH",
    )
    json: str | None = flag(
        None, "also write the metrics as JSON (a list with --all-checkpoints or --generator both)", metavar="FILE"
    )
    plot: str | None = flag(
        None,
        "a PNG to draw: with --all-checkpoints the metrics against epoch (default: DIR/metrics.png), otherwise "
        "each class's share of the samples, by class name (none by default)",
        metavar="FILE",
    )
    evaluator_dir: str | None = flag(
        None,
        "cache folder of trained evaluator CNNs (default: $XDG_CACHE_HOME/dcgan_tf or ~/.cache/dcgan_tf)",
        metavar="DIR",
    )
    retrain_evaluator: bool = flag(False, "train the evaluator CNN again even if a cached one fits the data")
    k: int = flag(DEFAULT_K, "nearest-neighbour count of improved precision and recall", type=int)
    seed: int = flag(0, "seed of the generated samples' noise and of the real digits drawn for the floor", type=int)

    def __post_init__(self) -> None:
        if self.checkpoint is not None and self.all_checkpoints:
            raise DcganError("--checkpoint and --all-checkpoints exclude each other: pass one of them")
        if self.k < 1:
            raise DcganError(f"--k must be a positive integer (got {self.k})")
        if self.num_samples <= max(self.k, 1):
            raise DcganError(f"--num-samples must exceed --k {self.k} (got {self.num_samples}); use e.g. 10000")


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(
        argv, EvaluateConfig, description="Measure a training run's digits against the MNIST test split."
    )
    from dcgan_tf.evaluation import evaluate

    evaluate(config)
    return 0


if __name__ == "__main__":
    run_main(main)
