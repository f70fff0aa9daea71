"""The one user-facing error type, and the one place that turns it into a message and exit code.

Library code raises `DcganError` with a message that names the problem *and* the fix. Only entry
points (``python -m dcgan_tf.<tool>``) call `run_main`, which prints that message on one line and
exits non-zero, so a user never sees a traceback for a mistake they can correct.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

# Exit codes: 1 for a problem with the user's input or files, 130 for Ctrl-C (the shell convention).
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class DcganError(Exception):
    """A problem the user can fix; the message says what went wrong and what to do."""


class Interrupted(DcganError):
    """Training was stopped by SIGINT/SIGTERM after its state was saved."""


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run an entry point's ``main`` and exit with its status, printing `DcganError` on one line."""
    try:
        status = main(argv)
    except Interrupted as err:
        print(f"interrupted: {err}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except DcganError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(status or 0)
