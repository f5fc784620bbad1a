"""One error type for every kind of bad input, so messages are uniform and tests can catch them."""


class InputError(ValueError):
    """Bad user input: names the file (and line), what was expected, and how to fix it."""


def located(path, line=None) -> str:
    """`path:line` (or just `path`) for messages that point at a place in a file."""
    return f"{path}:{line}" if line is not None else str(path)
