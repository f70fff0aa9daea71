"""The companion notebook runs top to bottom on its quick setting against real MNIST digits."""

from __future__ import annotations

import os
from collections import Counter

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
    client = CountingClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    outputs = "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("name") == "stdout"
    )
    assert "epoch 2/2" in outputs  # trained the quick setting
    assert "FID" in outputs or "fid" in outputs  # and measured it
    assert (tmp_path / "run" / "dcgan.gif").is_file()

    # Live pictures: the training cell shows one output area, created after epoch 1 and updated in place
    # after epoch 2 (one update_display_data message, not a second picture), ending on the last epoch.
    live = [
        (index, output)
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "display_data"
        and output.get("data", {}).get("text/plain", "").startswith("dcgan_tf live:")
    ]
    assert len(live) == 1, live
    index, output = live[0]
    assert "on_epoch=LivePictures()" in notebook.cells[index].source
    assert "epoch 2/2" in output["data"]["text/plain"] and output["data"]["image/png"]
    assert client.messages["display_data"] == 1 and client.messages["update_display_data"] == 1


class CountingClient(NotebookClient):
    """nbclient's client, counting the live area's messages: nbclient folds an update_display_data into the
    output it replaces, so the saved notebook alone cannot tell one update per epoch from one picture."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.messages: Counter[str] = Counter()

    def process_message(self, msg, cell, cell_index):
        data = msg["content"].get("data") or {}
        if data.get("text/plain", "").startswith("dcgan_tf live:"):
            self.messages[msg["msg_type"]] += 1
        return super().process_message(msg, cell, cell_index)
