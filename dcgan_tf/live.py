"""Live pictures while training in a notebook: the epoch's fixed-noise grid and the loss curves so far,
redrawn in place after every epoch, as the TensorFlow tutorial's notebook does.

`training.fit(config, on_epoch=...)` calls its callback once per epoch with an `EpochReport`;
`LivePictures` is such a callback. It draws one PNG (grid left, losses right) and shows it in a single
output area: the first epoch creates it (``display(..., display_id=True)``) and every later epoch
replaces its content (``handle.update``), so a notebook shows one picture that changes, not a new
figure per epoch. Without a notebook kernel (the command line, a script, the tests' own process) it
draws nothing: the progress bar and TensorBoard are the live view there. IPython is imported only when
a kernel is running, so the package never depends on it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from dcgan_tf.data import DatasetInfo
from dcgan_tf.losses import get_loss
from dcgan_tf.models import num_classes_of
from dcgan_tf.visualize import style_epoch_axes, tile


@dataclass(frozen=True)
class EpochReport:
    """What an epoch's end hands to ``fit``'s ``on_epoch`` callback."""

    epoch: int  # epochs trained so far, from 1
    epochs: int  # the run's --epochs
    history: Sequence[dict[str, float]]  # one history.csv row per epoch so far
    grid: np.ndarray  # the averaged generator's fixed-noise grid (K, 28, 28, 1) in [-1, 1]
    cols: int  # the grid's columns
    row_names: tuple[str, ...] | None  # a conditional grid: row c draws class c; None when unconditional
    scores: str  # what the discriminator's outputs are: "probability" or "critic score"
    title: str  # the dataset's, e.g. "MNIST" or an image folder's name


def epoch_report(session, history: Sequence[dict[str, float]], info: DatasetInfo) -> EpochReport:
    """The `EpochReport` of the epoch ``history[-1]`` describes, for a `loop.Session` (one grid drawn)."""
    images, cols = session.gan.epoch_grid()
    classes = num_classes_of(session.gan.generator_ema)  # 0: unconditional, a square grid of noise
    row_names = tuple(info.class_names[:classes]) if classes else None
    return EpochReport(
        epoch=int(history[-1]["epoch"]),
        epochs=session.config.epochs,
        history=list(history),
        grid=images,
        cols=cols,
        row_names=row_names,
        scores=get_loss(session.config.loss).scores,
        title=info.title,
    )


def draw(report: EpochReport) -> bytes:
    """The report as one PNG: the grid (rows named by class when conditional) and the losses per epoch."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    grid_ax, loss_ax = fig.subplots(1, 2, width_ratios=(1, 1.3))
    picture = tile(report.grid, report.cols, scale=1)
    grid_ax.imshow(picture, cmap="gray", vmin=0, vmax=255)
    grid_ax.set_xticks([])
    if report.row_names:  # tile's rows are 28 pixels plus a 2-pixel gap, starting after a gap
        grid_ax.set_yticks([2 + 14 + 30 * r for r in range(len(report.row_names))], report.row_names, fontsize=8)
    else:
        grid_ax.set_yticks([])
    grid_ax.set_title(f"{report.title}: epoch {report.epoch}/{report.epochs}, the same noise every epoch")
    epochs = [row["epoch"] for row in report.history]
    loss_ax.plot(epochs, [row["generator_loss"] for row in report.history], marker="o", label="generator")
    loss_ax.plot(epochs, [row["discriminator_loss"] for row in report.history], marker="o", label="discriminator")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Losses so far", xlim=(0.5, max(report.epochs, 1) + 0.5))
    style_epoch_axes(loss_ax, legend_size="medium")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


class LivePictures:
    """``fit``'s ``on_epoch`` callback for notebooks: one output area, updated in place every epoch.

    Outside a notebook kernel it does nothing. ``updates`` counts the epochs it has drawn.
    """

    def __init__(self) -> None:
        self._handle = None
        self.updates = 0

    def __call__(self, report: EpochReport) -> None:
        if not in_notebook():
            return
        from IPython.display import display

        picture = _Picture(draw(report), f"dcgan_tf live: {report.title}, epoch {report.epoch}/{report.epochs}")
        if self._handle is None:
            self._handle = display(picture, display_id=True)
        else:
            self._handle.update(picture)
        self.updates += 1


def in_notebook() -> bool:
    """Whether a Jupyter kernel (something that can show pictures) is running this code."""
    import sys

    if "IPython" not in sys.modules:  # not imported: certainly no kernel, and we do not import it
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class _Picture:
    """A PNG with a one-line text form, as IPython displays it (image/png and text/plain)."""

    def __init__(self, png: bytes, text: str) -> None:
        self.png, self.text = png, text

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return self.text
