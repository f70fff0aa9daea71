"""The companion notebook runs top to bottom on its quick setting against real MNIST digits."""

from __future__ import annotations

import os

import nbformat
from conftest import REPO
from nbclient import NotebookClient

NOTEBOOK = REPO / "notebooks" / "dcgan_mnist.ipynb"


def test_notebook_defines_no_model_or_training_code_of_its_own():
    source = "\n".join(cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code")
    assert "import dcgan_tf" in source
    for own_code in ("GradientTape", "keras.Sequential", "layers.Conv2D", "def train_step", "BinaryCrossentropy"):
        assert own_code not in source, f"the notebook should call dcgan_tf, not define {own_code}"


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def test_notebook_runs_top_to_bottom_on_the_quick_setting(mnist_path, tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_TF_DATA", str(mnist_path))
    monkeypatch.setenv("DCGAN_TF_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_CACHE_HOME", os.environ.get("DCGAN_TF_TEST_CACHE", str(tmp_path / "cache")))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Any cell error raises CellExecutionError and fails the test.
    NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    outputs = "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("name") == "stdout"
    )
    assert "epoch 2/2" in outputs  # trained the quick setting
    assert "FID" in outputs or "fid" in outputs  # and measured it
    assert (tmp_path / "run" / "dcgan.gif").is_file()
