"""LSUN raw layout: an LMDB directory (`data.mdb`) whose keys are image ids and values encoded image bytes."""

from __future__ import annotations

from pathlib import Path

import lmdb

from lead_hsr.data.layouts import LSUN_CHURCH_LMDB, raw_root_fix
from lead_hsr.errors import InputError

# church_outdoor_train_lmdb entries (LSUN release; DESIGN §4.1). The thesis (Sec. 4.3.1) says "1.2M images",
# which is not the size of LSUN church_outdoor: we follow the dataset StyleGAN2 trained on.
LSUN_CHURCH_TRAIN_COUNT = 126_227



def find_lmdb(root: Path) -> Path:
    """The LMDB directory: the root itself, or its `church_outdoor_train_lmdb/` sub-folder (unzipped release)."""
    root = Path(root)
    nested = root / LSUN_CHURCH_LMDB
    return nested if not (root / "data.mdb").is_file() and (nested / "data.mdb").is_file() else root


def open_lsun(lmdb_dir: Path) -> lmdb.Environment:
    """Open an LSUN LMDB directory read-only (no lock file written next to the data)."""
    lmdb_dir = Path(lmdb_dir)
    if not (lmdb_dir / "data.mdb").is_file():
        raise InputError(
            f"{lmdb_dir / 'data.mdb'}: LMDB file not found; expected an LSUN LMDB directory "
            f"(e.g. {LSUN_CHURCH_LMDB}/ with data.mdb). {raw_root_fix('lsun_church')}"
        )
    try:
        return lmdb.open(str(lmdb_dir), readonly=True, lock=False, readahead=False, max_readers=1)
    except lmdb.Error as error:
        raise InputError(f"{lmdb_dir}: cannot open as LMDB ({error}). Fix: re-download/unzip the LSUN archive.") from error


def list_lsun_keys(env: lmdb.Environment) -> list[bytes]:
    """Every key of the LMDB, in LMDB (byte-sorted) order."""
    with env.begin(write=False) as txn:
        return [key for key, _ in txn.cursor()]


def read_lsun_bytes(env: lmdb.Environment, key: bytes, lmdb_dir: Path) -> bytes:
    """Encoded image bytes stored under `key`."""
    with env.begin(write=False) as txn:
        value = txn.get(key)
    if value is None:
        raise InputError(f"{lmdb_dir}: key {key!r} has no value. Fix: re-download the LSUN archive.")
    return bytes(value)
