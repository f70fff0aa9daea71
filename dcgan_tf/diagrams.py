"""``python -m dcgan_tf.diagrams``: architecture diagrams drawn from the model builders themselves.

This module owns the pictures ``docs/images/architecture-<model>.png``. It builds each registered
pair (`dcgan_tf.models.MODELS`), walks the built Keras graphs (`stages`) and draws them with
matplotlib (`draw`), so a diagram cannot drift from the code: change a builder, rerun the command.

One box per layer, in graph order: its kind, key settings and output shape ``(B, ...)`` (B: batch).
The path from the first input (noise, images) to the output is the main column; layers off that
path (a conditional model's label embeddings) stand in side columns beside the layer they join.
Nested models (the conditional pairs wrap the card's models) are drawn inline inside a dashed
frame; a layer wrapped in SpectralNormalization is drawn as the layer, noted "spectral norm".
TensorFlow is imported only after the flags are valid, so ``--help`` and flag errors are instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath

from dcgan_tf.config import MODELS, flag, parse_config, require_positive
from dcgan_tf.errors import DcganError, run_main

if TYPE_CHECKING:
    import keras

DESCRIPTION = (
    "Draw each model pair (generator and discriminator side by side) as a PNG, architecture-<model>.png, "
    "from the models the package builds."
)


@dataclass(frozen=True)
class DiagramsConfig:
    """Which diagrams to draw and where to (see ``python -m dcgan_tf.diagrams --help``)."""

    out: str = flag("docs/images", "folder for the architecture-<model>.png files", metavar="DIR")
    models: str = flag(",".join(MODELS), "comma-separated models to draw", metavar="LIST")
    noise_dim: int = flag(100, "size of the generators' noise input", type=int, metavar="N")

    def __post_init__(self) -> None:
        require_positive("noise_dim", self.noise_dim)
        parse_models(self.models)


def parse_models(text: str) -> list[str]:
    """``dcgan,dense`` -> the names, checked against `config.MODELS` (the registry's names, known without
    importing TensorFlow); a one-line error names any unknown one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODELS]
    if unknown or not names:
        raise DcganError(f"unknown --models {', '.join(unknown) or repr(text)}: choose from {', '.join(MODELS)}")
    return list(dict.fromkeys(names))


# --- the graph ------------------------------------------------------------------------------------


class Stage(NamedTuple):
    """One box: the layer's kind, its key settings, and its output shape without the batch axis."""

    name: str  # "Conv2DTranspose", or "Input" for a model input
    description: str  # "64 filters, 5×5, stride 2, same, no bias"; the input's name for an Input
    output_shape: tuple[int, ...]  # (14, 14, 64); () for a label (B,)


@dataclass
class _Node:
    stage: Stage
    inputs: list[int]  # indices of the nodes feeding this one
    group: str | None  # the nested model it belongs to, if any
    is_input: bool


def stages(model: keras.Model) -> list[Stage]:
    """The model's layers in graph order, nested models inlined, as (name, description, output_shape)."""
    return [node.stage for node in _graph(model)[0]]


def _graph(model: keras.Model) -> tuple[list[_Node], list[int]]:
    """Every layer call that leads to the output (inputs first), and the main path: first input -> output.

    Walks back from the output through each tensor's producing layer call (Keras' ``_keras_history``
    and ``_inbound_nodes``, which hold the functional graph); a nested model's inputs are the tensors
    the outer model fed it, so its layers join the outer graph.
    """
    import keras

    nodes: list[_Node] = []

    def visit(tensor, memo: dict[int, int], group: str | None) -> int:
        if id(tensor) in memo:
            return memo[id(tensor)]
        layer, node_index, _ = tensor._keras_history
        call = layer._inbound_nodes[node_index]
        if isinstance(layer, keras.Model):  # nested model: inline its graph, fed by the outer tensors
            inner = {id(t): visit(outer, memo, group) for t, outer in zip(layer.inputs, call.input_tensors)}
            memo[id(tensor)] = visit(layer.outputs[0], inner, layer.name)
            return memo[id(tensor)]
        inputs = [visit(t, memo, group) for t in call.input_tensors]
        is_input = isinstance(layer, keras.layers.InputLayer)
        nodes.append(_Node(_stage(layer, tuple(tensor.shape[1:])), inputs, group, is_input))
        memo[id(tensor)] = len(nodes) - 1
        return memo[id(tensor)]

    memo: dict[int, int] = {}
    output = visit(model.outputs[0], memo, None)
    first_input = memo[id(model.inputs[0])]
    reaches = set()  # nodes that depend on the first input
    for i, node in enumerate(nodes):  # nodes are in topological order
        if i == first_input or reaches.intersection(node.inputs):
            reaches.add(i)
    main = [output]
    while main[-1] != first_input:
        main.append(next(i for i in nodes[main[-1]].inputs if i in reaches))
    return nodes, main[::-1]


def _stage(layer: keras.layers.Layer, shape: tuple[int, ...]) -> Stage:
    import keras

    if isinstance(layer, keras.layers.InputLayer):
        dtype = str(layer.output.dtype)
        return Stage("Input", layer.name + ("" if dtype.startswith("float") else f", {dtype}"), shape)
    if isinstance(layer, keras.layers.SpectralNormalization):
        inner = _stage(layer.layer, shape)
        return Stage(inner.name, ", ".join(filter(None, [inner.description, "spectral norm"])), shape)
    return Stage(type(layer).__name__, ", ".join(_settings(layer)), shape)


def _settings(layer: keras.layers.Layer) -> list[str]:
    """The settings worth reading in a diagram: units/filters, kernel, stride, activation, rate."""
    import keras

    settings = []
    if isinstance(layer, keras.layers.Dense):
        settings.append(f"{layer.units} unit{'s' * (layer.units != 1)}")
    if hasattr(layer, "filters"):
        k, s = layer.kernel_size, layer.strides
        settings += [
            f"{layer.filters} filter{'s' * (layer.filters != 1)}",
            "×".join(map(str, k)),
            f"stride {s[0] if len(set(s)) == 1 else s}",
            layer.padding,
        ]
    if getattr(layer, "use_bias", True) is False:
        settings.append("no bias")
    activation = getattr(getattr(layer, "activation", None), "__name__", "linear")
    if activation != "linear":
        settings.append(activation)
    if isinstance(layer, keras.layers.LeakyReLU):
        settings.append(f"slope {layer.negative_slope:g}")
    if isinstance(layer, keras.layers.Dropout):
        settings.append(f"rate {layer.rate:g}")
    if isinstance(layer, keras.layers.BatchNormalization) and not (layer.center or layer.scale):
        settings.append("no scale or offset")
    if isinstance(layer, keras.layers.Embedding):
        settings.append(f"{layer.input_dim} → {layer.output_dim}")
    if isinstance(layer, keras.layers.Dot):
        settings.append(f"axes {layer.axes}")
    return settings


# --- the layout -----------------------------------------------------------------------------------

BOX_H = 0.46  # inches
ROW = 0.72  # row pitch: the box and room for an arrow
GAP = 0.45  # between columns: the gutter that bent arrows run in
PAD = 0.08  # text inside a box
MARGIN = 0.4  # around each panel (room for a nested model's label on the left)
TITLE_PT, TEXT_PT, SHAPE_PT = 8.5, 7.5, 7.5
COLORS = {"input": "#e6e6e6", "main": "#dce9f7", "side": "#fde3c6"}
EDGES = {"main": "#4a4a4a", "side": "#d9822b"}
BOLD = FontProperties(weight="bold", size=TITLE_PT)
PLAIN = FontProperties(size=TEXT_PT)
MONO = FontProperties(family="monospace", size=SHAPE_PT)
HEADING = FontProperties(weight="bold", size=10)
NOTE = FontProperties(style="italic", size=TEXT_PT)
DPI = 120  # of the PNGs
Box = tuple[float, float, float, float]  # left, right, top, bottom in inches, y growing downwards
Cell = tuple[int, int]  # row, column


def _inches(text: str, font: FontProperties) -> float:
    return TextPath((0, 0), text, prop=font).get_extents().width / 72 if text else 0.0


def shape_text(shape: tuple[int, ...]) -> str:
    """(7, 7, 256) -> '(B, 7, 7, 256)'; () -> '(B,)'."""
    return f"(B, {', '.join(map(str, shape))})" if shape else "(B,)"


@dataclass
class _Layout:
    nodes: list[_Node]
    main: list[int]
    cell: dict[int, Cell]  # node -> (row, column); column 0 is the main path
    widths: list[float]  # of each column, inches

    @property
    def size(self) -> tuple[float, float]:
        right = GAP if len(self.widths) > 1 else 0.0  # the gutter the side inputs' arrows run down
        return 2 * MARGIN + sum(self.widths) + GAP * (len(self.widths) - 1) + right, ROW * len(self.main)


def _layout(model: keras.Model) -> _Layout:
    """Rows and columns: the main path down column 0, each side chain in the first free column beside
    the row where it joins, side inputs at the top of their own columns."""
    nodes, main = _graph(model)
    cell = {n: (row, 0) for row, n in enumerate(main)}
    taken = set(cell.values())
    first_consumer = {}
    for i, node in enumerate(nodes):
        for j in node.inputs:
            first_consumer.setdefault(j, i)
    for column, n in enumerate((n for n, node in enumerate(nodes) if node.is_input and n not in cell), 1):
        cell[n] = (0, column)
        taken.add(cell[n])

    def place(chain: list[int], last_row: int) -> None:  # chain: top to bottom, ending beside last_row
        first = max(1, last_row - len(chain) + 1)  # row 0 holds the inputs
        rows = range(first, first + len(chain))
        column = 1  # the first column free for the chain and for its arrow into column 0
        while any((r, column) in taken for r in rows) or any((rows[-1], c) in taken for c in range(1, column)):
            column += 1
        for n, r in zip(chain, rows):
            cell[n] = (r, column)
            taken.add((r, column))

    def chain_to(n: int) -> list[int]:  # n and the side layers feeding only it, one after another
        chain = [n]
        while feeders := [j for j in nodes[chain[0]].inputs if j not in cell and first_consumer[j] == chain[0]]:
            chain.insert(0, feeders[0])
        return chain

    heads = [n for n in range(len(nodes)) if n not in cell and first_consumer.get(n) in main]
    for n in sorted(heads, key=lambda n: cell[first_consumer[n]][0]):
        place(chain_to(n), cell[first_consumer[n]][0])
    for n in reversed(range(len(nodes))):  # anything left branches off another side layer
        if n not in cell:
            place(chain_to(n), cell[first_consumer[n]][0] - 1)
    columns = 1 + max(c for _, c in cell.values())
    widths = [1.7] * columns
    for n, (_, c) in cell.items():
        stage = nodes[n].stage
        title = _inches(stage.name, BOLD) + _inches(shape_text(stage.output_shape), MONO) + 3 * PAD + 0.2
        widths[c] = max(widths[c], title, _inches(stage.description, PLAIN) + 2 * PAD + 0.05)
    return _Layout(nodes, main, cell, widths)


# --- the drawing ----------------------------------------------------------------------------------


def _draw_model(ax: Axes, layout: _Layout, x0: float, y0: float, heading: tuple[str, str]) -> None:
    """Draw one model's boxes and arrows with its top-left corner at (x0, y0), inches from the top-left."""
    lefts = [x0 + MARGIN + sum(layout.widths[:c]) + GAP * c for c in range(len(layout.widths))]
    side_gutter = lefts[-1] + layout.widths[-1] + GAP / 2

    def box(n: int) -> Box:
        row, c = layout.cell[n]
        top = y0 + row * ROW
        return lefts[c], lefts[c] + layout.widths[c], top, top + BOX_H

    ax.text(x0 + MARGIN, y0 - 0.42, heading[0], fontproperties=HEADING, va="bottom")
    ax.text(x0 + MARGIN, y0 - 0.22, heading[1], fontproperties=PLAIN, va="bottom", color="#333333")
    for group in dict.fromkeys(node.group for node in layout.nodes if node.group):
        members = [box(n) for n, node in enumerate(layout.nodes) if node.group == group]
        left, top = min(b[0] for b in members) - 0.12, min(b[2] for b in members) - 0.1
        right, bottom = max(b[1] for b in members) + 0.12, max(b[3] for b in members) + 0.1
        ax.add_patch(Rectangle((left, top), right - left, bottom - top, fill=False, ls="--", lw=0.8, ec="#888888"))
        label = f"nested model '{group}'"
        middle = (top + bottom) / 2
        ax.text(left - 0.05, middle, label, fontproperties=NOTE, color="#666666", rotation=90, ha="right", va="center")
    for n, node in enumerate(layout.nodes):
        left, right, top, bottom = box(n)
        kind = "input" if node.is_input else "main" if layout.cell[n][1] == 0 else "side"
        style = "round,pad=0,rounding_size=0.06"
        ax.add_patch(FancyBboxPatch((left, top), right - left, BOX_H, boxstyle=style, fc=COLORS[kind], ec="#555555"))
        stage, middle = node.stage, (top + bottom) / 2
        line = middle - 0.08 if stage.description else middle
        ax.text(left + PAD, line, stage.name, fontproperties=BOLD, va="center")
        ax.text(right - PAD, line, shape_text(stage.output_shape), fontproperties=MONO, va="center", ha="right")
        if stage.description:
            ax.text(left + PAD, middle + 0.11, stage.description, fontproperties=PLAIN, va="center", color="#333333")
        for j in node.inputs:
            _arrow(ax, box(j), box(n), layout.cell[j], layout.cell[n], layout.nodes[j].is_input, side_gutter)


def _arrow(ax: Axes, src: Box, dst: Box, src_cell: Cell, dst_cell: Cell, from_input: bool, side_gutter: float) -> None:
    """Straight down to the next row of the same column; otherwise out of the source's side, along the
    gutter beside the destination, and into its side (a side input's arrows share the rightmost gutter)."""
    (s_left, s_right, s_top, s_bottom), (d_left, d_right, d_top, d_bottom) = src, dst
    (s_row, s_col), (d_row, d_col) = src_cell, dst_cell
    color = EDGES["main" if s_col == 0 else "side"]
    if s_col == d_col and d_row == s_row + 1:
        x = (d_left + d_right) / 2
        points = [(x, s_bottom), (x, d_top)]
    else:
        exit_y, d_mid = (s_top + s_bottom) / 2 + BOX_H / 4, (d_top + d_bottom) / 2
        if from_input and s_col > 0:
            entry_y = d_mid - BOX_H / 4
            points = [(s_right, exit_y), (side_gutter, exit_y), (side_gutter, entry_y), (d_right, entry_y)]
        elif d_col > s_col:
            gutter = d_left - GAP / 2
            points = [(s_right, exit_y), (gutter, exit_y), (gutter, d_mid - BOX_H / 4), (d_left, d_mid - BOX_H / 4)]
        elif d_col < s_col:
            gutter = d_right + GAP / 2
            points = [(s_left, exit_y), (gutter, exit_y), (gutter, d_mid), (d_right, d_mid)]
        else:
            gutter = d_right + GAP / 2
            points = [(s_right, exit_y), (gutter, exit_y), (gutter, d_mid - BOX_H / 4), (d_right, d_mid - BOX_H / 4)]
    ax.add_patch(FancyArrowPatch(path=MplPath(points), arrowstyle="-|>", mutation_scale=9, lw=1, color=color))


def draw_pair(title: str, generator: keras.Model, discriminator: keras.Model) -> Figure:
    """One figure: the generator's diagram left of the discriminator's, titled with the parameter counts."""
    models = {"Generator": generator, "Discriminator": discriminator}
    layouts = [_layout(model) for model in models.values()]
    headings = [(role, f"{model.name}: {model.count_params():,} parameters") for role, model in models.items()]
    widths = [max(lay.size[0], 2 * MARGIN + _inches(h[1], PLAIN) + 0.1) for lay, h in zip(layouts, headings)]
    header, footer = 1.2, 0.4
    width, height = sum(widths), header + max(lay.size[1] for lay in layouts) + footer
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set(xlim=(0, width), ylim=(height, 0))
    ax.axis("off")
    ax.text(width / 2, 0.2, title, ha="center", va="top", fontsize=12, fontweight="bold")
    for layout, heading, x in zip(layouts, headings, (0.0, widths[0])):
        _draw_model(ax, layout, x, header, heading)
    note = "B: batch size. Each box is one layer: its kind, key settings and output shape."
    side_inputs = sorted({tensor.name for model in models.values() for tensor in model.inputs[1:]})
    if side_inputs:
        note += f" Orange: layers off the main column (the path of the {', '.join(side_inputs)} input)."
    ax.text(MARGIN, height - footer / 2, note, fontproperties=PLAIN, color="#444444", va="center")
    return fig


def draw(name: str, noise_dim: int = 100) -> Figure:
    """Build the pair registered as ``name`` and draw it (for a notebook: the figure displays inline)."""
    from dcgan_tf.models import build_generator, model_spec

    spec = model_spec(name)
    generator, discriminator = build_generator(name, noise_dim), spec.make_discriminator(seed=0)
    total = generator.count_params() + discriminator.count_params()
    return draw_pair(f"{name}: {total:,} parameters in all", generator, discriminator)


def save_diagrams(out: str | Path, names: Sequence[str], noise_dim: int = 100) -> list[Path]:
    """Write ``out/architecture-<name>.png`` for each model name; return the paths."""
    from dcgan_tf.visualize import save_figure

    Path(out).mkdir(parents=True, exist_ok=True)
    return [save_figure(draw(name, noise_dim), Path(out) / f"architecture-{name}.png", dpi=DPI) for name in names]


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv, DiagramsConfig, description=DESCRIPTION)
    written = save_diagrams(config.out, parse_models(config.models), config.noise_dim)
    print(f"wrote {', '.join(path.name for path in written)} to {Path(config.out)}")
    return 0


if __name__ == "__main__":
    run_main(main)
