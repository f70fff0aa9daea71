"""Starting TensorFlow without its start-up chatter, for the command-line tools.

TensorFlow's C++ core logs a few lines while it loads and probes for GPUs, before its log level applies
(``WARNING: All log messages before absl::InitializeLog() ...``, "Could not find cuda drivers", CPU
instruction notes, and on machines with CUDA libraries but no GPU an ``E0000 ... failed call to cuInit``
that reads like a failure). `import_tensorflow` loads it with the process's stderr captured and passes on
every captured line that is not one of those known notes, so a real error still shows.
``DCGAN_TF_VERBOSE=1`` shows everything (and TensorFlow's C++ warnings after start-up too).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable

from dcgan_tf.errors import DcganError

VERBOSE_ENV = "DCGAN_TF_VERBOSE"
# Fragments of the start-up lines TensorFlow prints on every machine, as TensorFlow 2.21 words them.
CHATTER = (
    "All log messages before absl::InitializeLog() is called",
    "cudart_stub.cc",
    "cpu_feature_guard.cc",
    "To enable the following instructions",
    "oneDNN custom operations are on",
    "failed call to cuInit",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation_placer.cc",
    "TF-TRT Warning",
    "cuda_executor.cc",
    "gpu_device.cc",
)


def verbose() -> bool:
    """Whether ``DCGAN_TF_VERBOSE`` asks for TensorFlow's own start-up lines (1) or not (0 or unset)."""
    value = os.environ.get(VERBOSE_ENV, "").strip()
    if value not in ("", "0", "1"):
        raise DcganError(
            f"{VERBOSE_ENV}={value!r} is not 0 or 1: unset it, or set 1 to see TensorFlow's start-up lines"
        )
    return value == "1"


def import_tensorflow() -> None:
    """Import TensorFlow and list its GPUs (where CUDA is probed) with the known start-up lines hidden."""
    if "tensorflow" in sys.modules or verbose():
        return

    def load() -> None:
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")

    quietly(load)


def quietly(load: Callable[[], None]) -> None:
    """Call ``load`` with the process's stderr (file descriptor 2, where C++ code writes) captured, then pass
    on every captured line that is not a known start-up note (`CHATTER`)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            load()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines()
            kept = [line for line in lines if line.strip() and not any(known in line for known in CHATTER)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
