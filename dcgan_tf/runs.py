"""The run folder: getting it ready (or refusing it), choosing the checkpoint to resume from, setting a
branch's later checkpoints aside, a worker's scratch folder, and ``history.csv``.

Nothing here deletes or overwrites what a run saved: what must make way is moved to ``archive/<time>/``.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dcgan_tf.checkpoints import BEST_FILE, CheckpointInfo, find_checkpoint, list_checkpoints, read_best
from dcgan_tf.config import CONFIG_FILE, TrainConfig, read_saved_config
from dcgan_tf.errors import DcganError
from dcgan_tf.files import archive_contents, archive_folder, ensure_writable, write_text

HISTORY_FILE = "history.csv"
HISTORY_COLUMNS = ("epoch", "generator_loss", "discriminator_loss", "d_real", "d_fake", "seconds")


def set_aside_later_checkpoints(run_dir: Path, output_dir: Path, resume: CheckpointInfo) -> None:
    """Resuming from an older checkpoint starts a new branch: move the later checkpoints (and a
    best.json naming one of them) to archive/<time>/, with a copy of history.csv, so nothing of the
    old branch is overwritten, deleted, or mixed into the new one."""
    later = [info for info in list_checkpoints(run_dir) if info.number > resume.number]
    if not later:
        return
    target = archive_folder(run_dir)
    for info in later:
        for file in run_dir.glob(f"{info.name}.*"):
            shutil.move(str(file), target / file.name)
    best = read_best(run_dir)
    if best is not None and best["checkpoint"] in {info.name for info in later}:
        shutil.move(str(run_dir / BEST_FILE), target / BEST_FILE)
    if (output_dir / HISTORY_FILE).is_file():
        shutil.copy2(output_dir / HISTORY_FILE, target / HISTORY_FILE)
    print(f"resuming from the older {resume.name}: moved {', '.join(i.name for i in later)} to {target}")


def resume_point(checkpoint_dir: Path, name: str | None) -> CheckpointInfo | None:
    """The checkpoint to resume from: ``name`` or the latest (None for a new run), checked intact.

    A folder whose latest checkpoint is incomplete or damaged is refused (see `find_checkpoint`), never
    started again from scratch.
    """
    if name is None and not list_checkpoints(checkpoint_dir):
        return None
    return find_checkpoint(checkpoint_dir, name)


def worker_folders() -> tuple[Path, Path]:
    # Non-chief multi-worker tasks must take part in every save (it is a collective operation) but
    # their copies are redundant: they go to a scratch folder, as tf.distribute's guide does it.
    scratch = Path(tempfile.mkdtemp(prefix="dcgan_tf-worker-"))
    return scratch, scratch


def prepare_folders(config: TrainConfig) -> tuple[Path, Path]:
    checkpoint_dir = ensure_writable(config.checkpoint_dir, "--checkpoint-dir")
    output_dir = ensure_writable(config.output_dir, "--output-dir")
    if config.fresh:
        for folder in dict.fromkeys([checkpoint_dir, output_dir]):  # once each, in order
            moved = archive_contents(folder)
            if moved:
                print(f"--fresh: moved the previous run in {folder} to {moved}")
    else:
        _check_resumable(config, checkpoint_dir)
    ensure_writable(config.logdir, "--logdir")  # after --fresh, which may have moved it
    return checkpoint_dir, output_dir


def _check_resumable(config: TrainConfig, checkpoint_dir: Path) -> None:
    """Refuse a folder whose checkpoints cannot be checked against ``config`` or belong to another run."""
    has_checkpoint = bool(list_checkpoints(checkpoint_dir))
    saved = read_saved_config(checkpoint_dir)
    if has_checkpoint and saved is None:
        raise DcganError(
            f"{checkpoint_dir} holds checkpoints but no {CONFIG_FILE}, so they cannot be checked against this "
            "run: restore config.json, or use --fresh (moves them to archive/) or another --checkpoint-dir"
        )
    conflicts = config.conflicts_with(saved) if has_checkpoint else []
    if conflicts:
        raise DcganError(
            f"{checkpoint_dir} holds a run with {', '.join(conflicts)}: repeat its settings to resume, "
            "or use --fresh (moves it to archive/) or another --checkpoint-dir"
        )


def read_history(path: str | Path, up_to_epoch: int | None = None) -> list[dict[str, float]]:
    """Rows of ``history.csv`` (numbers as floats, epoch as int), dropping rows past ``up_to_epoch``.

    Rows past the restored checkpoint belong to epochs that are about to be trained again.
    """
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = [
            {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""} for row in csv.DictReader(f)
        ]
    return [row for row in rows if up_to_epoch is None or row["epoch"] <= up_to_epoch]


def write_history(path: str | Path, history: Sequence[dict[str, float]]) -> None:
    """Write history rows as CSV; columns are the standard ones then any extra keys, in order seen."""
    columns = list(HISTORY_COLUMNS) + [k for row in history for k in row if k not in HISTORY_COLUMNS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(columns)), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buffer.getvalue())
