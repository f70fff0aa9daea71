"""Pictures people look at: image grids (PNG), the training GIF, and the loss plot.

Plots use matplotlib's object API (``Figure``), never ``pyplot``, so they work the same with no
display, in a notebook, or in a thread, and leave no global figure state behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dcgan_tf.data import to_uint8
from dcgan_tf.files import atomic_write

GAP = 2  # pixels of white between tiles
SCALE = 4  # each 28x28 digit becomes 112x112 pixels, big enough to see...
MAX_PIXELS = 1_600  # ...as far as the grid's longer side stays within this (a 50-cluster epoch grid: 1x)


def grid_scale(rows: int, cols: int, size: int = 28) -> int:
    """How many times a grid of ``rows`` x ``cols`` tiles is enlarged: `SCALE`, less for a large grid, at least 1."""
    longest = max(rows, cols) * (size + GAP) + GAP
    return max(1, min(SCALE, MAX_PIXELS // longest))


def tile(images: np.ndarray, cols: int, scale: int | None = None) -> np.ndarray:
    """Images (N, 28, 28[, 1]) in [-1, 1] -> one uint8 grid image, ``cols`` per row, white gaps, enlarged
    ``scale`` times (default `grid_scale`)."""
    pixels = 255 - to_uint8(images)  # dark digits on white paper, like the tutorial's gray_r plots
    n, h, w = pixels.shape
    rows = -(-n // cols)
    scale = scale or grid_scale(rows, cols, max(h, w))
    grid = np.full((rows * (h + GAP) + GAP, cols * (w + GAP) + GAP), 255, np.uint8)
    for i, image in enumerate(pixels):
        r, c = divmod(i, cols)
        grid[GAP + r * (h + GAP) :][:h, GAP + c * (w + GAP) :][:, :w] = image
    return np.kron(grid, np.ones((scale, scale), np.uint8))


def save_grid(images: np.ndarray, path: str | Path, cols: int | None = None) -> Path:
    """Write images (N, 28, 28[, 1]) in [-1, 1] as one PNG grid (square by default)."""
    cols = cols or max(1, int(np.ceil(np.sqrt(len(images)))))
    with atomic_write(path) as tmp:
        iio.imwrite(tmp, tile(images, cols), extension=".png")
    return Path(path)


def save_gif(frames: Sequence[np.ndarray | str | Path], path: str | Path, seconds_per_frame: float = 0.2) -> Path:
    """Write an endlessly looping GIF from frames (arrays or image files of equal size)."""
    arrays = [iio.imread(f) if isinstance(f, (str, Path)) else f for f in frames]
    with atomic_write(path) as tmp:
        iio.imwrite(tmp, np.stack(arrays), extension=".gif", duration=int(seconds_per_frame * 1000), loop=0)
    return Path(path)


def plot_history(history: Sequence[dict[str, float]], path: str | Path, scores: str = "probability") -> Path:
    """Plot losses (left) and mean discriminator outputs (right) against epoch, as a PNG.

    ``scores``: ``probability`` (BCE: D's mean output in [0, 1]) or ``critic score`` (WGAN-GP: unbounded).
    """
    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(10, 4), layout="constrained")
    losses, outputs = fig.subplots(1, 2)
    losses.plot(epochs, [row["generator_loss"] for row in history], label="generator")
    losses.plot(epochs, [row["discriminator_loss"] for row in history], label="discriminator")
    losses.set(xlabel="epoch", ylabel="loss", title="Losses")
    outputs.plot(epochs, [row["d_real"] for row in history], label="D(x), real")
    outputs.plot(epochs, [row["d_fake"] for row in history], label="D(G(z)), generated")
    if scores == "probability":
        outputs.axhline(0.5, color="gray", linewidth=0.8, linestyle="--")
        outputs.set(ylabel="mean probability 'real'", ylim=(0, 1), title="Discriminator outputs")
    else:
        outputs.set(ylabel=f"mean {scores}", title="Critic scores")
    outputs.set(xlabel="epoch")
    style_epoch_axes(losses, outputs, legend_size="medium")
    return save_figure(fig, path)


def style_epoch_axes(*axes, legend_size: str = "small") -> None:
    """Whole-epoch ticks, a light grid and a legend on each plot against epoch."""
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=legend_size)


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write a matplotlib figure as a PNG, atomically."""
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return Path(path)
