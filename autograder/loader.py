"""Load the graded part of a chapter notebook into a fresh module.

Only setup cells (tagged `setup`) and exercise cells (nbgrader solution cells
whose `grade_id` names an exercise: `ch02_gpt_dataset` for `ch02.gpt_dataset`)
run; exploration and training cells do not.
IPython magics and shell lines are skipped, except that a `%%writefile name.py` cell
runs as the Python module it writes (chapter 1's training script is one). A cell that fails to compile or
raises is recorded against its exercise and the other cells still run, so one
broken exercise never hides the others.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import io
import itertools
import json
import linecache
import sys
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

from .manifest import Chapter, Exercise

SETUP_TAG = "setup"
_module_ids = itertools.count()


class ExerciseUnavailable(Exception):
    """The exercise cannot be checked: its cell is missing or broken, or a name is missing.

    `status` is the report status: `missing`, `error` or `not_implemented`.
    """

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class LoadedNotebook:
    """What a notebook defines, plus what went wrong while loading it.

    `problems` maps an exercise id to the reason it is unavailable; `setup_problem`
    is set when a setup cell failed (every exercise is then unavailable).
    """

    namespace: dict
    chapter: Chapter
    problems: dict[str, ExerciseUnavailable] = field(default_factory=dict)
    setup_problem: str | None = None
    origin: str = "the notebook"
    cell_files: list[str] = field(default_factory=list)  # the names its cells' sources have in linecache

    def require(self, exercise: Exercise) -> None:
        """Raise `ExerciseUnavailable` unless every name the exercise defines is present."""
        if self.setup_problem:
            raise ExerciseUnavailable("error", self.setup_problem)
        if exercise.id in self.problems:
            raise self.problems[exercise.id]
        for name in exercise.names:
            if name not in self.namespace:
                raise ExerciseUnavailable("missing", missing_name_message(name, self.namespace))

    def __getattr__(self, name: str):
        try:
            return self.namespace[name]
        except KeyError:
            raise AttributeError(missing_name_message(name, self.namespace)) from None


def missing_name_message(name: str, namespace: dict) -> str:
    kind = "class" if name[:1].isupper() else "function"
    public = [n for n in namespace if not n.startswith("_")]
    by_case = [n for n in public if n.lower() == name.lower()]
    close = by_case or difflib.get_close_matches(name, public, n=1, cutoff=0.75)
    found = f"; found {close[0]}" if close else ""
    return f"no {kind} named {name}{found}"


def strip_magics(source: str) -> str | None:
    """The cell's Python code without IPython magics and `!` shell lines.

    A `%%writefile name.py` cell is the script it writes, its first line blanked; any other
    cell magic (`%%...`) cell is not Python at all and gives None. Skipped lines become
    blank so line numbers in messages still match the cell.
    """
    lines = source.split("\n")
    first = lines[0].split() if source.lstrip() else []
    if first[:1] == ["%%writefile"]:
        if not (len(first) >= 2 and first[-1].endswith(".py") and source.startswith("%%")):
            return None
        return "\n".join(["", *lines[1:]])
    if source.lstrip().startswith("%%"):
        return None
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def nbgrader_meta(cell: dict) -> dict:
    meta = cell.get("metadata") or {}
    nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbgrader if isinstance(nbgrader, dict) else {}


def exercise_of_cell(cell: dict, chapter: Chapter) -> str | None:
    """The id of the exercise whose cell this is (by nbgrader grade_id), or None."""
    grade_id = nbgrader_meta(cell).get("grade_id")
    for ex in chapter.exercises:
        if grade_id in (ex.grade_id, ex.id):
            return ex.id
    return None


def cell_index(cells: list, chapter: Chapter, exercise_id: str) -> int | None:
    """The position of the exercise's code cell among `cells`, or None."""
    for i, cell in enumerate(cells):
        if (
            isinstance(cell, dict)
            and cell.get("cell_type") == "code"
            and exercise_of_cell(cell, chapter) == exercise_id
        ):
            return i
    return None


def with_cell_source(cells: list, chapter: Chapter, exercise_id: str, source: str) -> list:
    """A copy of `cells` whose exercise cell holds `source` (the original list is untouched)."""
    index = cell_index(cells, chapter, exercise_id)
    if index is None:
        raise KeyError(f"no cell for {exercise_id}")
    changed = copy.deepcopy(cells)
    changed[index]["source"] = source
    return changed


def _is_setup(cell: dict) -> bool:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return SETUP_TAG in tags


def _location_in(exc: BaseException, filename: str) -> str:
    """' (line N)' for the deepest traceback frame inside the given cell, else ''."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    return f" (line {frames[-1].lineno})" if frames else ""


def _run_cell(source: str, filename: str, namespace: dict) -> ExerciseUnavailable | None:
    """Execute one cell into the namespace; describe a failure (status and one line)."""
    code_text = strip_magics(source)
    if code_text is None:
        return None
    linecache.cache[filename] = (len(code_text), None, code_text.splitlines(True), filename)
    try:
        code = compile(code_text, filename, "exec")
    except SyntaxError as exc:
        return ExerciseUnavailable("error", f"has a syntax error on line {exc.lineno}: {exc.msg}")
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(code, namespace)
    except NotImplementedError:
        return ExerciseUnavailable("not_implemented", "raises NotImplementedError when it runs")
    except BaseException as exc:  # noqa: BLE001 - a student's cell may raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        return ExerciseUnavailable("error", f"raised {type(exc).__name__}: {exc}{_location_in(exc, filename)}")
    return None


def fresh_namespace(chapter: Chapter) -> dict:
    """A new module's namespace, registered in sys.modules so pickling and dataclasses work."""
    module = types.ModuleType(f"submission_{chapter.id}_{next(_module_ids)}")
    sys.modules[module.__name__] = module
    return module.__dict__


def unload(submission: LoadedNotebook) -> None:
    """Forget a loaded notebook in this process: its module leaves sys.modules and its cells'
    sources leave linecache, so once nothing else refers to its code, nothing can find it."""
    sys.modules.pop(submission.namespace.get("__name__"), None)
    for filename in submission.cell_files:
        linecache.cache.pop(filename, None)


def read_notebook(path: Path) -> dict:
    """The notebook's JSON; raises ExerciseUnavailable (error) when it cannot be read."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(notebook.get("cells"), list):
            raise TypeError("it has no list of cells")
    except FileNotFoundError:
        raise ExerciseUnavailable("missing", f"notebook not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise ExerciseUnavailable(
            "error", f"{path} is not a readable notebook ({exc}); restore it from a backup or the original chapter"
        ) from None
    return notebook


def load_notebook(path: Path, chapter: Chapter) -> LoadedNotebook:
    """Run the setup and exercise cells of the notebook at `path` into a fresh module."""
    try:
        notebook = read_notebook(path)
    except ExerciseUnavailable as exc:
        submission = LoadedNotebook(namespace=fresh_namespace(chapter), chapter=chapter, origin=str(path))
        submission.setup_problem = str(exc)
        return submission
    return load_cells(notebook["cells"], chapter, origin=str(path))


def load_cells(cells: list, chapter: Chapter, origin: str = "the notebook") -> LoadedNotebook:
    """Run the setup and exercise cells among `cells` (a notebook's cell list) into a fresh module."""
    namespace = fresh_namespace(chapter)
    submission = LoadedNotebook(namespace=namespace, chapter=chapter, origin=origin)
    exercise_ids = {ex.id for ex in chapter.exercises}
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        exercise_id = exercise_of_cell(cell, chapter)
        is_exercise = nbgrader_meta(cell).get("solution") and exercise_id is not None
        if not (is_exercise or _is_setup(cell)):
            continue
        if is_exercise:
            if exercise_id in seen:
                submission.problems[exercise_id] = ExerciseUnavailable(
                    "error",
                    f"two cells are marked as {exercise_id} (cells {seen[exercise_id] + 1} and {index + 1}); delete one",
                )
                continue
            seen[exercise_id] = index
        label = exercise_id if is_exercise else "setup"
        filename = f"<{Path(origin).name} cell {index + 1}: {label}>"
        submission.cell_files.append(filename)
        failure = _run_cell(cell_source(cell), filename, namespace)
        if failure and is_exercise:
            submission.problems.setdefault(
                exercise_id, ExerciseUnavailable(failure.status, f"your {exercise_id} cell {failure}")
            )
        elif failure and submission.setup_problem is None:
            submission.setup_problem = f"setup cell {index + 1} {failure}; restore it from the original chapter"

    for ex_id in exercise_ids - seen.keys():
        submission.problems[ex_id] = ExerciseUnavailable(
            "missing", f"no cell for {ex_id} in the notebook (deleted, or its nbgrader grade_id changed)"
        )
    return submission


def from_namespace(namespace: dict, chapter: Chapter, origin: str = "this notebook") -> LoadedNotebook:
    """Wrap a live namespace (a running kernel's globals) as a submission."""
    return LoadedNotebook(namespace=namespace, chapter=chapter, origin=origin)
