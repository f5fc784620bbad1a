"""One error type for every kind of bad input, so messages are uniform and tests can catch them."""
from __future__ import annotations

import functools
import sys

INPUT_ERROR_EXIT = 2  # a command's exit status for bad input (argparse's own for a bad command line)


class InputError(ValueError):
    """Bad user input: names the file (and line), what was expected, and how to fix it."""


def command(main):
    """Decorate a command's `main(argv) -> int`: bad input (InputError) prints `error: <message>` on stderr and
    returns INPUT_ERROR_EXIT instead of a traceback; every other exception is a bug and propagates."""
    @functools.wraps(main)
    def run(argv=None) -> int:
        try:
            return main(argv)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            return INPUT_ERROR_EXIT
    return run


def located(path, line=None) -> str:
    """`path:line` (or just `path`) for messages that point at a place in a file."""
    return f"{path}:{line}" if line is not None else str(path)
