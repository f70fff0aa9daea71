"""Safe file handling for run folders: writability checks, atomic writes, archiving a finished run.

Every file a run writes goes through `atomic_write`, so an interrupted or failed write leaves the
previous version in place rather than half a file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from dcgan_tf.errors import DcganError

ARCHIVE = "archive"
# TensorBoard reads every file whose name holds "tfevents", at any depth below its --logdir, as part of
# a run. Archived event files are renamed so that `tensorboard --logdir runs/` never shows them as runs;
# renaming them back (archived-events -> tfevents) makes them readable again.
EVENTS_MARK, ARCHIVED_EVENTS_MARK = "tfevents", "archived-events"


def ensure_writable(folder: str | Path, flag: str) -> Path:
    """Create ``folder`` if needed and prove we can write there; ``flag`` names the option to change."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        raise DcganError(f"cannot write to {folder} ({err.strerror or err}): choose a writable {flag}") from None
    return folder


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; give them normal permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)


def archive_folder(folder: str | Path) -> Path:
    """A new, empty ``folder/archive/<time>/`` to move things into (never one used before)."""
    target = Path(folder) / ARCHIVE / time.strftime("%Y%m%d-%H%M%S")
    suffix = 1
    while target.exists():  # two archivings within one second
        target = target.with_name(f"{target.name.split('.')[0]}.{suffix}")
        suffix += 1
    target.mkdir(parents=True)
    return target


def archive_contents(folder: str | Path) -> Path | None:
    """Move everything in ``folder`` (but earlier archives) into ``folder/archive/<time>/``.

    This is how ``--fresh`` starts over without deleting anything: the old run stays readable.
    Returns the archive folder, or None when there was nothing to move.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    entries = [p for p in folder.iterdir() if p.name != ARCHIVE and not p.name.startswith(".")]
    if not entries:
        return None
    target = archive_folder(folder)
    for entry in entries:
        shutil.move(str(entry), target / entry.name)
    hide_event_files(target)
    return target


def archived_name(name: str) -> str:
    """The name an archived file gets: event files lose their TensorBoard mark (see `EVENTS_MARK`)."""
    return name.replace(EVENTS_MARK, ARCHIVED_EVENTS_MARK)


def hide_event_files(folder: str | Path) -> None:
    """Rename the TensorBoard event files below ``folder`` to their `archived_name`."""
    for path in list(Path(folder).rglob(f"*{EVENTS_MARK}*")):
        if path.is_file():
            path.rename(path.with_name(archived_name(path.name)))
