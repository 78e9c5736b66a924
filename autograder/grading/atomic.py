"""Files that are either absent, the old version, or the new version: never half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TEMP_PREFIX = ".writing-"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def remove_leftovers(folder: Path) -> None:
    """Delete temporary files a killed run left behind under `folder`."""
    for temp in folder.rglob(f"{TEMP_PREFIX}*"):
        temp.unlink(missing_ok=True)
