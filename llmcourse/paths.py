"""Where the course's files live.

The course root is the folder holding `course.toml`. It is found from `COURSE_ROOT`,
else by walking up from the working directory, else next to this package (an
editable install run from anywhere).
"""

from __future__ import annotations

import os
from pathlib import Path

MANIFEST_NAME = "course.toml"


def course_root() -> Path:
    """The folder that holds `course.toml`."""
    env = os.environ.get("COURSE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / MANIFEST_NAME).is_file():
            return folder
    return Path(__file__).resolve().parent.parent
