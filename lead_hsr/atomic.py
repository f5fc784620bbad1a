"""Atomic writes: a file appears complete or not at all (DESIGN §2.5 "outputs appear only when complete").

Each writer writes a temporary sibling in the same directory, flushes and fsyncs it, then `os.replace`s it
over the target (atomic on POSIX within one file system) and fsyncs the directory so the rename survives a
power cut. A killed process leaves at most a stray `.tmp-*` file, never a half-written target.
Light on purpose (no torch): the report and data code use it too; `lead_hsr.train` adds `atomic_save_torch`.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, IO


def _default_file_mode() -> int:
    """The mode `open()` would give a new file (0o666 minus the umask); mkstemp's 0o600 would hide results from
    the rest of a lab sharing a results directory. Read once: os.umask can only be read by setting it."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _default_file_mode()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some file systems do not allow opening directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _temporary_sibling(path: Path, suffix: str = ""):
    """Yield (fd, name) of a new temporary file beside `path`; when the block ends, fsync it, give it a plain
    file's mode and `os.replace` it over `path`; on any error remove it and re-raise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{path.stem if suffix else path.name}-", suffix=suffix,
                                    dir=path.parent)
    try:
        yield fd, tmp_name
        os.chmod(tmp_name, FILE_MODE)
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def atomic_write_with(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call `write(binary_file)` on a temporary sibling of `path`, then move it into place atomically."""
    path = Path(path)
    with _temporary_sibling(path) as (fd, _):
        with os.fdopen(fd, "wb") as handle:
            write(handle)
    return path


def atomic_write_named(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary_path)` for writers that need a file name (ffmpeg through imageio), the temporary
    sibling keeping `path`'s suffix so the writer picks its format; then move it into place atomically."""
    path = Path(path)
    with _temporary_sibling(path, suffix=path.suffix) as (fd, tmp_name):
        os.close(fd)
        write(Path(tmp_name))
    return path


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> Path:
    return atomic_write_with(path, lambda handle: handle.write(data))


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    return atomic_write_bytes(text.encode("utf-8"), path)


def atomic_save_npy(array, path: str | os.PathLike) -> Path:
    """`np.save` `array` so that `path` appears only when complete."""
    import numpy as np  # here, not at the top: the data and report jobs that import this module stay light

    array = np.asarray(array)
    return atomic_write_with(path, lambda handle: np.save(handle, array))


def _json_default(value: Any) -> Any:
    """Make paths, numpy/torch scalars and sets JSON-serialisable instead of failing mid-run."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "tolist"):  # numpy arrays/scalars, torch tensors
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r}")


def atomic_write_json(obj: Any, path: str | os.PathLike) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    return atomic_write_text(text, path)


def atomic_copy(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Copy a file so that `path` appears only when complete (e.g. a work-dir snapshot into a declared output)."""
    with open(source, "rb") as src:
        return atomic_write_with(path, lambda out: shutil.copyfileobj(src, out))
