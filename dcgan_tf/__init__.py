"""dcgan_tf: train the TensorFlow tutorial's DCGAN on MNIST, resume it, sample from it.

``import dcgan_tf`` is cheap: TensorFlow is imported only when a function that needs it is used.
"""

from __future__ import annotations

import os

# TensorFlow's C++ log off (Grappler logs a harmless "remapper failed" error on every run), unless the user set
# the level or DCGAN_TF_VERBOSE=1; `startup` also hides the lines logged while TensorFlow loads, before this
# level applies. This has to happen before TensorFlow is first imported. A real failure still raises a Python
# error, which is unaffected.
if os.environ.get("DCGAN_TF_VERBOSE", "").strip() != "1":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# oneDNN's CPU kernels train these models faster than TensorFlow's own (benchmarks/train_speed.py), but
# TensorFlow turns them on by default only on x86 CPUs with AVX-512 VNNI/BF16 or AMX. Same maths, but
# float round-off may differ; TF_ENABLE_ONEDNN_OPTS=0 turns them off. Like the line above, this only
# takes effect if dcgan_tf is imported before TensorFlow. GPU kernels are unaffected.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
__all__ = ["TrainConfig", "fit", "load_generator", "load_mnist"]


def __getattr__(name: str):
    if name == "TrainConfig":
        from dcgan_tf.config import TrainConfig

        return TrainConfig
    if name == "fit":
        from dcgan_tf.training import fit

        return fit
    if name == "load_generator":
        from dcgan_tf.checkpoints import load_generator

        return load_generator
    if name == "load_mnist":
        from dcgan_tf.data import load_mnist

        return load_mnist
    raise AttributeError(f"module 'dcgan_tf' has no attribute {name!r}")
