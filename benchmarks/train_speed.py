"""Training speed of this project against the TensorFlow tutorial's recipe, on the same machine, in one run.

    python benchmarks/train_speed.py --data PATH [--quick] [--rounds N] [--variants LIST] [--json FILE] [--check]

Worker processes are started in rotating order (reference, float32, mixed_bfloat16, then float32,
mixed_bfloat16, reference, ...), each a fresh interpreter, because some settings (``TF_ENABLE_ONEDNN_OPTS``,
thread pools, XLA flags, TF32) are fixed per process once TensorFlow is imported:

* ``reference``: the tutorial's code (https://www.tensorflow.org/tutorials/generative/dcgan): the same
  generator and discriminator, ``tf.data`` ``shuffle(60000).batch(256)`` over the images, a
  ``@tf.function`` step without XLA and with two gradient tapes, a Python loop over the batches, an
  image grid after every epoch, a checkpoint at the end, and TensorFlow's default settings.
* a project variant: ``python -m dcgan_tf.train --data PATH --train-size N --epochs E --checkpoint-dir TMP``
  exactly as the command runs it (``dcgan_tf.train.main`` in a fresh process), with the variant's precision:
  ``float32`` (the default; on a GPU with TF32 switched off), ``tf32`` (TensorFlow's default on Ampere-or-newer
  GPUs), ``mixed_bfloat16`` and ``mixed_float16`` (``--precision``). By default every precision runs on an
  NVIDIA GPU, and float32 plus, where the CPU has AVX512-BF16 or AMX units, mixed_bfloat16 on a CPU.

Both workers start from the caller's environment with the TensorFlow performance variables removed
(`SCRUBBED_ENV`), so the reference gets TensorFlow's defaults and the project gets its own.

Each worker reports

* the whole run's wall-clock seconds, from spawning the process to the end of training (interpreter
  and TensorFlow start-up, data loading, tracing, every epoch's outputs and the final checkpoint);
* steady-state training images/s: the images of epochs 2..E over the seconds their batch loops took
  (epoch 1 is the warm-up; it includes tracing and compilation);
* after training, in the same process and so under the same settings, the dense float32 matmul
  throughput of the device (the ceiling the convolutions are compared with);
* peak memory: the process's peak resident set and, on a GPU, TensorFlow's peak device memory.

The parent prints the medians over the rounds: images/s of each, the speed-up over the reference, the
seconds per epoch of 60,000 digits and minutes for 100 such epochs, the analytic FLOPs of one training
image, the achieved GFLOP/s and its fraction of the matmul ceiling, the whole-run times, and the peak
memory; ``--json FILE`` writes the same numbers and every round's raw results. ``--check`` exits 1 unless
the targets hold: on a CPU float32 >= 1.3x the reference; on a GPU the fastest precision >= 3x the
reference and 100 epochs of 60,000 digits in <= 5 minutes.

FLOPs per training image (analytic, `train_flops_per_image`): with ``G`` and ``D`` the forward
multiply-accumulates (MACs) of one image through the generator and discriminator (Dense: in*out;
Conv2D: out_h*out_w*k*k*c_in*c_out; Conv2DTranspose: in_h*in_w*k*k*c_in*c_out), a weight gradient
costing the forward MACs of its layer and an input gradient the same again, except for a model's first
layer whose input is never differentiated (``G'`` and ``D'`` are those sums without the first layer):

    MACs = G + 2D                 forward: G(z), D(x), D(G(z))
         + 2 (D + D')             d_tape: D's weight and inner input gradients, real and fake images
         + D                      g_tape: input gradients back through D(G(z)) ...
         + G + G'                 ... then G's weight and inner input gradients
    FLOPs = 2 MACs                (elementwise work, batch norm and Adam are left out: under 1%)

For the tutorial's models that is 0.452 GFLOP per image (the "3 x forward" rule of thumb gives 0.435).

Run times: ``--quick`` is one round on 2,560 digits (about 1.5-2 minutes on a 2-core CPU); the default is
three rounds of the 2-epoch, 5,120-digit run (about 7 minutes there when idle, 13 when busy). On a GPU the
same command works and the matmul ceiling is measured with larger matrices.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Process-wide TensorFlow settings that a worker must not inherit from the caller's shell: with them
# removed, the reference runs with TensorFlow's defaults and the project with the defaults it sets itself.
SCRUBBED_ENV = (
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_XLA_FLAGS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "NVIDIA_TF32_OVERRIDE",
)
BATCH_SIZE = 256
NOISE_DIM = 100
MNIST_TRAIN = 60_000  # seconds per epoch are reported for the full MNIST training set
WORKER_TIMEOUT_S = 1800
TARGET_SPEEDUP = 1.3  # CPU: the project's float32 run against the tutorial's code
GPU_TARGET_SPEEDUP = 3.0  # GPU: the fastest precision against the tutorial's code on the same GPU
GPU_TARGET_100_EPOCHS_MIN = 5.0
TARGET_CEILING_FRACTION = 0.85
# The project's runs to time, by name: extra train flags and environment. TensorFlow computes float32
# matmuls and convolutions on Ampere-or-newer GPUs in TF32 by default; NVIDIA_TF32_OVERRIDE=0 switches
# that off, so "float32" is true float32 and "tf32" is TensorFlow's default (no effect on a CPU).
VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "float32": ([], {"NVIDIA_TF32_OVERRIDE": "0"}),
    "tf32": ([], {}),
    "mixed_bfloat16": (["--precision", "mixed_bfloat16"], {}),
    "mixed_float16": (["--precision", "mixed_float16"], {}),
    "xla": (["--jit-compile"], {}),  # float32 (TF32 on GPUs, as TensorFlow's default) with the step under XLA
    # The model --recipe fast trains (float32), at the same batch: what its conditioning costs per image; then
    # with the R1 penalty --recipe fast adds (since 2026-12-07): a second backward pass through D on real images.
    "self-conditioned": (["--model", "self-conditioned"], {"NVIDIA_TF32_OVERRIDE": "0"}),
    "self-conditioned+r1": (["--model", "self-conditioned", "--r1", "1"], {"NVIDIA_TF32_OVERRIDE": "0"}),
}


# --------------------------------------------------------------------------- the parent


def default_variants() -> list[str]:
    """Every precision on an NVIDIA GPU; on a CPU float32, plus mixed_bfloat16 where the CPU has bf16 units."""
    if shutil.which("nvidia-smi") and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0:
        return list(VARIANTS)
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return ["float32"] + (["mixed_bfloat16"] if "avx512_bf16" in flags or "amx_bf16" in flags else [])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Training images/s of dcgan_tf against the TensorFlow tutorial's recipe, alternating runs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", help="MNIST .npz in Keras layout (default: keras.datasets.mnist download)")
    parser.add_argument("--rounds", type=int, help="rounds of every run (default: 3; 1 with --quick)")
    parser.add_argument("--train-size", type=int, help="digits per epoch (default: 5120; 2560 with --quick)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run; epoch 1 is the warm-up")
    parser.add_argument("--quick", action="store_true", help="one round on 2,560 digits (about 2 minutes on CPU)")
    parser.add_argument(
        "--variants",
        help=f"comma-separated project runs to time, from {', '.join(VARIANTS)} (default: every precision "
        "on a GPU; float32 and, on CPUs with AVX512-BF16 or AMX, mixed_bfloat16)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the numbers (and every round's) to FILE")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the speed targets are met")
    parser.add_argument(
        "--project-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set an environment variable for the project's runs only, to try a process-wide setting "
        "(e.g. TF_ENABLE_ONEDNN_OPTS=1) before making it a default; repeatable",
    )
    parser.add_argument("--worker", choices=("reference", "project"), help=argparse.SUPPRESS)
    parser.add_argument("--project-args", default="", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.train_size is None:
        args.train_size = 2560 if args.quick else 5120
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: epoch 1 is the warm-up")
    if any("=" not in item for item in args.project_env):
        parser.error("--project-env takes NAME=VALUE")
    if args.train_size < BATCH_SIZE or args.rounds < 1:
        parser.error(f"--train-size must be at least {BATCH_SIZE} and --rounds at least 1")
    if args.worker is None:
        args.variants = args.variants.split(",") if args.variants else default_variants()
        unknown = [name for name in args.variants if name not in VARIANTS]
        if unknown:
            parser.error(f"unknown --variants {', '.join(unknown)}: choose from {', '.join(VARIANTS)}")
    return args


def run_worker(kind: str, args: argparse.Namespace) -> dict:
    """Run one worker process (``reference`` or a project variant) and return its result, with the whole
    run's wall-clock seconds added."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.setdefault("MPLBACKEND", "Agg")
    worker, extra = ("reference", []) if kind == "reference" else ("project", VARIANTS[kind][0])
    if kind != "reference":
        env.update(item.split("=", 1) for item in args.project_env)
        env.update(VARIANTS[kind][1])
    with tempfile.TemporaryDirectory(prefix=f"train_speed_{kind}_") as tmp:
        result_path = Path(tmp) / "result.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", worker, "--result", str(result_path)]
        command += ["--workdir", str(Path(tmp) / "run"), "--train-size", str(args.train_size)]
        command += ["--epochs", str(args.epochs)] + (["--data", args.data] if args.data else [])
        command += [f"--project-args={' '.join(extra)}"]
        spawned = time.time()
        proc = subprocess.run(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=WORKER_TIMEOUT_S
        )
        if proc.returncode != 0 or not result_path.is_file():
            sys.exit(f"the {kind} worker failed (exit status {proc.returncode}); its output:\n{proc.stdout[-6000:]}")
        result = json.loads(result_path.read_text())
    result["whole_run_s"] = result.pop("finished_at") - spawned
    return result


def summarize(runs: dict[str, list[dict]], args: argparse.Namespace) -> dict:
    """Medians per kind of run, and each project variant's ratios to the reference."""

    def median(kind: str, key: str) -> float | None:
        values = [r[key] for r in runs[kind] if r.get(key) is not None]
        return statistics.median(values) if values else None

    flops = runs["reference"][0]["flops_per_image"]
    device = runs["reference"][0]["device"]
    summary: dict = {"flops_per_image": flops, "device": device, "on_gpu": device.startswith("GPU"), "kinds": {}}
    for kind in runs:
        ips = median(kind, "images_per_s")
        kind_flops = runs[kind][0]["flops_per_image"]  # its own models' (another --model computes more or less)
        summary["kinds"][kind] = {
            "images_per_s": ips,
            "gflop_per_image": kind_flops / 1e9,
            "achieved_gflops": ips * kind_flops / 1e9,
            "matmul_gflops": median(kind, "matmul_gflops"),
            # per run (training and matmul timed in the same process, so under the same load), then the median
            "fraction_of_matmul": statistics.median(
                r["images_per_s"] * kind_flops / 1e9 / r["matmul_gflops"] for r in runs[kind]
            ),
            "seconds_per_60k_epoch": MNIST_TRAIN / ips,
            "minutes_per_100_epochs": 100 * MNIST_TRAIN / ips / 60,
            "whole_run_s": median(kind, "whole_run_s"),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[kind]),
            "peak_device_mb": median(kind, "peak_device_mb"),
            "settings": runs[kind][0]["settings"],
        }
    ref = summary["kinds"]["reference"]
    for kind, k in summary["kinds"].items():
        k["speedup"] = k["images_per_s"] / ref["images_per_s"]
        k["whole_run_speedup"] = ref["whole_run_s"] / k["whole_run_s"]
        # Ratios per round (each variant against the reference of the same round), then the median.
        k["speedup_per_round"] = [
            r["images_per_s"] / ref_r["images_per_s"] for r, ref_r in zip(runs[kind], runs["reference"])
        ]
    project = [kind for kind in summary["kinds"] if kind != "reference"]
    fastest = max(project, key=lambda kind: summary["kinds"][kind]["images_per_s"])
    if summary["on_gpu"]:
        best = summary["kinds"][fastest]
        summary["targets"] = {
            f"{fastest} >= {GPU_TARGET_SPEEDUP}x the tutorial's images/s": best["speedup"] >= GPU_TARGET_SPEEDUP,
            f"{fastest}: 100 epochs of 60,000 digits <= {GPU_TARGET_100_EPOCHS_MIN:g} min": (
                best["minutes_per_100_epochs"] <= GPU_TARGET_100_EPOCHS_MIN
            ),
        }
    elif "float32" in summary["kinds"]:
        f32 = summary["kinds"]["float32"]
        summary["targets"] = {
            f"float32 speedup >= {TARGET_SPEEDUP}": f32["speedup"] >= TARGET_SPEEDUP,
            f"float32 >= {TARGET_CEILING_FRACTION:.0%} of matmul GFLOP/s": (
                f32["fraction_of_matmul"] >= TARGET_CEILING_FRACTION
            ),
            "float32 whole run faster than reference": f32["whole_run_s"] < ref["whole_run_s"],
        }
    else:
        summary["targets"] = {}
    summary["params"] = {kind: runs[kind][0]["params"] for kind in runs}
    summary["config"] = {"rounds": args.rounds, "train_size": args.train_size, "epochs": args.epochs}
    summary["config"].update({"batch_size": BATCH_SIZE, "data": args.data, "project_env": args.project_env})
    summary["runs"] = runs
    return summary


def report(s: dict) -> str:
    kinds = s["kinds"]
    cfg = s["config"]
    width = max(16, *(len(kind) + 2 for kind in kinds))
    fmt = "  {:<44}" + "".join(f"{{:>{width}}}" for _ in kinds)

    def row(label: str, key: str, spec: str) -> str:
        return fmt.format(label, *("-" if k[key] is None else format(k[key], spec) for k in kinds.values()))

    lines = [
        f"device: {s['device']}",
        f"{cfg['rounds']} round(s) of every run, {cfg['epochs']} epochs on {cfg['train_size']} digits, batch "
        f"{cfg['batch_size']}, in alternating order; medians over rounds. reference = the TensorFlow tutorial's "
        "code; the others = python -m dcgan_tf.train with that precision (self-conditioned: that --model, float32; "
        "+r1: with --r1 1)",
        fmt.format("", *kinds),
        row("training images/s (epochs 2+)", "images_per_s", ".1f"),
        row("speed-up over the reference", "speedup", ".2f"),
        row("seconds per epoch of 60,000 digits", "seconds_per_60k_epoch", ".1f"),
        row("minutes for 100 epochs of 60,000 digits", "minutes_per_100_epochs", ".1f"),
        row("analytic GFLOP per training image", "gflop_per_image", ".3f"),
        row("achieved GFLOP/s (float32-equivalent)", "achieved_gflops", ".1f"),
        row("dense float32 matmul GFLOP/s, same process", "matmul_gflops", ".1f"),
        row("fraction of the matmul ceiling", "fraction_of_matmul", ".0%"),
        row("whole run, start-up included (s)", "whole_run_s", ".1f"),
        row("peak resident memory (MB)", "peak_rss_mb", ".0f"),
        row("peak device memory (MB)", "peak_device_mb", ".0f"),
        "speed-up per round: "
        + "; ".join(
            f"{kind} " + ", ".join(f"{x:.2f}" for x in k["speedup_per_round"])
            for kind, k in kinds.items()
            if kind != "reference"
        ),
        "settings: " + "; ".join(f"{kind}: {k['settings']}" for kind, k in kinds.items()),
    ]
    if s["targets"]:
        lines.append(
            "targets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in s["targets"].items())
        )
    if len({json.dumps(p) for p in s["params"].values()}) > 1:
        lines.append(f"WARNING: the models differ in size: {s['params']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        (reference_worker if args.worker == "reference" else project_worker)(args)
        return 0
    kinds = ["reference", *args.variants]
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for i in range(args.rounds):
        shift = i % len(kinds)  # rotate the order, so no kind always runs first (or right after another)
        for kind in kinds[shift:] + kinds[:shift]:
            result = run_worker(kind, args)
            runs[kind].append(result)
            print(
                f"round {i + 1}/{args.rounds} {kind:<15}: {result['images_per_s']:.1f} images/s, "
                f"matmul {result['matmul_gflops']:.1f} GFLOP/s, whole run {result['whole_run_s']:.1f}s",
                flush=True,
            )
    summary = summarize(runs, args)
    print(report(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if not args.check or all(summary["targets"].values()) else 1


# --------------------------------------------------------------------------- the workers


def project_worker(args: argparse.Namespace) -> None:
    import dcgan_tf  # first, so that whatever it sets before TensorFlow is imported applies, as in the CLI
    from dcgan_tf.train import main as train_main

    argv = ["--train-size", str(args.train_size), "--epochs", str(args.epochs), "--checkpoint-dir", args.workdir]
    train_main(argv + (["--data", args.data] if args.data else []) + args.project_args.split())
    finished_at = time.time()

    import tensorflow as tf

    from dcgan_tf.config import TrainConfig, read_saved_config
    from dcgan_tf.gan import build_gan
    from dcgan_tf.runs import HISTORY_FILE, read_history

    history = read_history(Path(args.workdir) / HISTORY_FILE)
    images_per_epoch = args.train_size // BATCH_SIZE * BATCH_SIZE
    steady = [row["seconds"] for row in history[1:]]
    model = read_saved_config(args.workdir)["model"]
    gan = build_gan(TrainConfig(checkpoint_dir=args.workdir, model=model))  # the run's models, for FLOPs and sizes
    write_result(
        args,
        finished_at=finished_at,
        images_per_s=images_per_epoch * len(steady) / sum(steady),
        epoch_seconds=[row["seconds"] for row in history],
        flops_per_image=train_flops_per_image(gan.generator, gan.discriminator),
        params=[gan.generator.count_params(), gan.discriminator.count_params()],
        settings=settings(tf, dcgan_tf.__version__),
    )


def reference_worker(args: argparse.Namespace) -> None:
    """The tutorial's training code, as published, with the run length and data path as parameters."""
    import keras
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf
    from keras import layers

    if args.data:
        with np.load(args.data) as npz:
            train_images = npz["x_train"]
    else:
        (train_images, _), (_, _) = keras.datasets.mnist.load_data()
    train_images = train_images[: args.train_size]
    train_images = train_images.reshape(train_images.shape[0], 28, 28, 1).astype("float32")
    train_images = (train_images - 127.5) / 127.5  # Normalize the images to [-1, 1]
    BUFFER_SIZE = 60000
    dataset = tf.data.Dataset.from_tensor_slices(train_images).shuffle(BUFFER_SIZE).batch(BATCH_SIZE)

    def make_generator_model():
        model = keras.Sequential()
        model.add(layers.Input(shape=(NOISE_DIM,)))
        model.add(layers.Dense(7 * 7 * 256, use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())
        model.add(layers.Reshape((7, 7, 256)))
        model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())
        model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())
        model.add(layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"))
        return model

    def make_discriminator_model():
        model = keras.Sequential()
        model.add(layers.Input(shape=(28, 28, 1)))
        model.add(layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"))
        model.add(layers.LeakyReLU())
        model.add(layers.Dropout(0.3))
        model.add(layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"))
        model.add(layers.LeakyReLU())
        model.add(layers.Dropout(0.3))
        model.add(layers.Flatten())
        model.add(layers.Dense(1))
        return model

    generator = make_generator_model()
    discriminator = make_discriminator_model()
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)

    def discriminator_loss(real_output, fake_output):
        real_loss = cross_entropy(tf.ones_like(real_output), real_output)
        fake_loss = cross_entropy(tf.zeros_like(fake_output), fake_output)
        return real_loss + fake_loss

    def generator_loss(fake_output):
        return cross_entropy(tf.ones_like(fake_output), fake_output)

    generator_optimizer = keras.optimizers.Adam(1e-4)
    discriminator_optimizer = keras.optimizers.Adam(1e-4)
    checkpoint_prefix = os.path.join(args.workdir, "ckpt")
    checkpoint = tf.train.Checkpoint(
        generator_optimizer=generator_optimizer,
        discriminator_optimizer=discriminator_optimizer,
        generator=generator,
        discriminator=discriminator,
    )
    seed = tf.random.normal([16, NOISE_DIM])

    @tf.function
    def train_step(images):
        noise = tf.random.normal([BATCH_SIZE, NOISE_DIM])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = generator_loss(fake_output)
            disc_loss = discriminator_loss(real_output, fake_output)
        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))

    def generate_and_save_images(model, epoch, test_input):
        predictions = model(test_input, training=False)
        fig = plt.figure(figsize=(4, 4))
        for i in range(predictions.shape[0]):
            plt.subplot(4, 4, i + 1)
            plt.imshow(predictions[i, :, :, 0] * 127.5 + 127.5, cmap="gray")
            plt.axis("off")
        plt.savefig(os.path.join(args.workdir, f"image_at_epoch_{epoch:04d}.png"))
        plt.close(fig)

    os.makedirs(args.workdir, exist_ok=True)
    epoch_seconds = []
    for epoch in range(args.epochs):
        start = time.perf_counter()
        for image_batch in dataset:
            train_step(image_batch)
        int(generator_optimizer.iterations.numpy())  # wait for the last step (asynchronous on a GPU)
        epoch_seconds.append(time.perf_counter() - start)
        generate_and_save_images(generator, epoch + 1, seed)
        if (epoch + 1) % 15 == 0 or epoch + 1 == args.epochs:
            checkpoint.save(file_prefix=checkpoint_prefix)
    finished_at = time.time()

    steady = epoch_seconds[1:]
    write_result(
        args,
        finished_at=finished_at,
        images_per_s=args.train_size // BATCH_SIZE * BATCH_SIZE * len(steady) / sum(steady),
        epoch_seconds=epoch_seconds,
        flops_per_image=train_flops_per_image(generator, discriminator),
        params=[generator.count_params(), discriminator.count_params()],
        settings=settings(tf),
    )


def settings(tf, version: str | None = None) -> str:
    words = [f"TF {tf.__version__}"] + ([f"dcgan_tf {version}"] if version else [])
    words += [f"{k}={os.environ[k]}" for k in SCRUBBED_ENV if k in os.environ] or ["TF defaults"]
    return ", ".join(words)


def write_result(args: argparse.Namespace, **fields) -> None:
    """Measure the matmul ceiling and peak memory in this process, then write everything as JSON."""
    import resource

    import tensorflow as tf

    gflops = matmul_gflops(tf)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    rss_mb = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
    gpus = tf.config.list_physical_devices("GPU")
    peak_device_mb = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20 if gpus else None
    device = device_name(tf, gpus)
    result = dict(fields, matmul_gflops=gflops, peak_rss_mb=rss_mb, peak_device_mb=peak_device_mb, device=device)
    Path(args.result).write_text(json.dumps(result))


def matmul_gflops(tf) -> float:
    """The device's dense float32 matmul throughput (median of timed reps), under this process's settings."""
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    n, reps = (8192, 30) if on_gpu else (2048, 8)
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])

    @tf.function
    def product():
        return tf.reduce_sum(tf.matmul(a, b))  # the scalar's copy to the host waits for the matmul

    for _ in range(2):
        product().numpy()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        product().numpy()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def device_name(tf, gpus) -> str:
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU {details.get('device_name', gpus[0].name)}"
    cpu = "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def layer_macs(model) -> list[int]:
    """Forward multiply-accumulates of one example through each Dense / Conv2D / Conv2DTranspose layer, in order,
    nested models included (the projection discriminator's feature extractor is one)."""
    import keras
    from keras import layers

    macs = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            macs.extend(layer_macs(layer))
        elif isinstance(layer, layers.Dense):
            macs.append(int(layer.kernel.shape[0]) * int(layer.kernel.shape[1]))
        elif isinstance(layer, layers.Conv2DTranspose):  # kernel (kh, kw, out, in); work scales with input
            kh, kw, c_out, c_in = layer.kernel.shape
            _, h, w, _ = layer.input.shape
            macs.append(h * w * kh * kw * c_in * c_out)
        elif isinstance(layer, layers.Conv2D):  # kernel (kh, kw, in, out); work scales with output
            kh, kw, c_in, c_out = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            macs.append(h * w * kh * kw * c_in * c_out)
    return macs


def train_flops_per_image(generator, discriminator) -> float:
    """FLOPs of one training image of the two-tape GAN step (formula in the module docstring)."""
    g, d = layer_macs(generator), layer_macs(discriminator)
    G, D = sum(g), sum(d)
    G_inner, D_inner = G - g[0], D - d[0]  # input gradients stop at the first layer
    macs = (G + 2 * D) + 2 * (D + D_inner) + D + (G + G_inner)
    return 2.0 * macs


if __name__ == "__main__":
    sys.exit(main())
