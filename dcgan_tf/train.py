"""``python -m dcgan_tf.train``: parse flags into a `TrainConfig` and call `dcgan_tf.training.fit`.

TensorFlow is imported only after the flags are valid, so ``--help`` and flag errors are instant.
"""

from __future__ import annotations

from collections.abc import Sequence

from dcgan_tf.config import TrainConfig, parse_config
from dcgan_tf.errors import run_main


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv, TrainConfig, description="Train the DCGAN on MNIST (resumes if checkpoints exist).")
    from dcgan_tf.training import fit

    fit(config)
    return 0


if __name__ == "__main__":
    run_main(main)
