"""Precision: everything ``--precision`` decides, in one place.

`Precision` is one ``--precision``: the Keras dtype policy the models are built with, whether the
optimizers scale the losses (mixed_float16, whose small gradients would underflow), and which
training options it cannot run. The training step applies the loss scale to every objective's
gradients (`players.Players.apply`), so no objective can forget it.

The rest is advice: what ``--precision auto`` picks on this machine, and the tip a float32 run
prints. The advice follows what was measured, per kind of unit, never a flag that merely exists:
- x86 CPUs with AMX (``amx_bf16``): ``mixed_bfloat16`` trained 1.72x the images/s of float32 (Intel Xeon);
- x86 CPUs with AVX512-BF16 but no AMX: it depends on the CPU. bfloat16 ran at 0.50x float32's speed on an
  Intel Xeon and at 1.61x on an AMD EPYC (Zen 4), so ``auto`` times a few steps of each there and picks
  the faster, and no tip is printed;
- NVIDIA GPUs of compute capability 7.0 or newer (tensor cores): ``mixed_float16``, TensorFlow's own
  advice for them (not measured by this project);
- WGAN-GP and R1 (``--recipe fast`` sets it) always float32: their gradient penalties need float32 second
  derivatives.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CPUINFO = "/proc/cpuinfo"
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")  # Keras dtype policies: weights float32, compute these


@dataclass(frozen=True)
class Precision:
    """One ``--precision`` (a name in `POLICIES`): how the models are built and how their gradients are taken."""

    policy: str

    @property
    def loss_scaling(self) -> bool:
        """Whether losses are scaled before their gradients are taken: float16's small gradients underflow."""
        return self.policy == "mixed_float16"

    def refusal(self, needs_float32: str | None) -> str | None:
        """Why this precision cannot train a run whose ``needs_float32`` option (`TrainConfig.needs_float32`) is set,
        or None if it can: a gradient penalty differentiates input gradients, which need float32."""
        if self.policy == "float32" or not needs_float32:
            return None
        return (
            f"--precision {self.policy} does not support {needs_float32} (its gradient penalty needs float32 "
            "second derivatives): use float32"
        )

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        """Layers built inside take this policy; the process's previous policy is restored after, so the
        choice stays with this run and does not leak into other models of the process."""
        import keras

        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.policy)
        try:
            yield
        finally:
            keras.config.set_dtype_policy(previous)

    def optimizer(self, learning_rate: float, beta_1: float, beta_2: float):
        """An Adam optimizer for this precision: wrapped in Keras' loss scaling where `loss_scaling` says so
        (its ``scale_loss`` then multiplies by the dynamic scale and ``apply_gradients`` divides it out)."""
        import keras

        optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2)
        return keras.optimizers.LossScaleOptimizer(optimizer) if self.loss_scaling else optimizer


def cpu_flags(cpuinfo: str | Path | None = None) -> set[str]:
    """The CPU's feature flags as Linux reports them in ``cpuinfo`` (default `CPUINFO`; empty where unknown)."""
    try:
        return set(Path(cpuinfo or CPUINFO).read_text().split())
    except OSError:
        return set()


def _tensor_core_gpu() -> str | None:
    """The name of the first local GPU with compute capability 7.0 or newer, if any."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        if tuple(details.get("compute_capability", (0, 0))) >= (7, 0):
            return str(details.get("device_name", gpu.name))
    return None


def auto_precision(
    needs_float32: str | None, cpuinfo: str | Path | None = None, measure: Callable[[str], float] | None = None
) -> tuple[str, str]:
    """``(precision, why)``: the precision ``--precision auto`` picks for this machine; ``needs_float32`` names
    the run's option that rules out mixed precision (`TrainConfig.needs_float32`), if any.

    ``measure(precision)`` returns training images/s; it is called where the kind of unit does not
    decide (AVX512-BF16 without AMX). Without it such a CPU keeps float32.
    """
    import tensorflow as tf

    if needs_float32:
        return "float32", f"{needs_float32} needs float32 for its gradient penalty"
    if tf.config.list_physical_devices("GPU"):
        gpu = _tensor_core_gpu()
        if gpu:
            return "mixed_float16", f"{gpu} has tensor cores (TensorFlow's advice; not measured by this project)"
        return "float32", "this GPU has no tensor cores"
    flags = cpu_flags(cpuinfo)
    if "amx_bf16" in flags:
        return "mixed_bfloat16", "this CPU has AMX units, where bfloat16 trained 1.7x as fast as float32"
    if "avx512_bf16" in flags:
        if measure is None:
            return "float32", "this CPU has AVX512-BF16 but no AMX, where bfloat16 is faster only on some CPUs"
        speeds = {precision: measure(precision) for precision in ("float32", "mixed_bfloat16")}
        fastest = max(speeds, key=speeds.get)
        timed = ", ".join(f"{name} {speed:.0f}" for name, speed in speeds.items())
        return fastest, f"AVX512-BF16 without AMX: timed here, images/s {timed}"
    return "float32", "this CPU has no bfloat16 units"


def precision_hint(precision: str, cpuinfo: str | Path | None = None, needs_float32: str | None = None) -> str | None:
    """A one-line tip when a float32 run is on a CPU where bfloat16 measured faster (one with AMX); where the
    run's ``needs_float32`` option rules bfloat16 out, the tip says what that option costs instead."""
    import tensorflow as tf

    if precision != "float32" or tf.config.list_physical_devices("GPU") or "amx_bf16" not in cpu_flags(cpuinfo):
        return None
    if needs_float32:
        return (
            f"tip: this CPU has AMX units, where --precision mixed_bfloat16 trained 1.7x as many images/s as "
            f"float32, but {needs_float32} needs float32 (docs/performance.md)"
        )
    return (
        "tip: this CPU has AMX units: --precision mixed_bfloat16 (or auto) trained 1.7x as many images/s as "
        "float32 on such a CPU (docs/performance.md)"
    )
