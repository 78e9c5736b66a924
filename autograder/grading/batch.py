"""Grade a class: every submission in its own sandboxed process, several at once, resumable.

Each submission's record is written to RESULTS/submissions/<safe id>.json the moment
it is graded (atomically); `resume` keeps the records already there. The class's
outputs are rebuilt from those records at the end, so a run killed at any moment
and resumed ends with the same files as an uninterrupted one. The seed of the hidden
checks' random inputs is recorded in RESULTS/grading.json; a resumed run reuses it.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from llmcourse import data

from .. import paths
from ..manifest import Course
from ..usage import UsageError, require_check_data, require_grading_material
from . import outputs, results, sandbox
from .atomic import remove_leftovers, write_atomic
from .submissions import HandIn, find_submissions
from .verdicts import SplitChecks

STATE_FILE = "grading.json"
RECORDS = "submissions"
# Classes of this many submissions or more pay for the fork server's warm-up (grading the references once).
WARM_UP_FROM = 8


@dataclass
class Options:
    submissions: Path
    out: Path
    workers: int
    chapters: list[str] = field(default_factory=list)
    resume: bool = False
    seed: int | None = None
    exercise_timeout_s: float | None = None
    progress: bool = True
    name_mistakes: bool = True  # name catalogued mistakes in the hidden checks' feedback


@dataclass(frozen=True)
class Run:
    """What every submission of one grading run is graded with."""

    course: Course
    chapter_ids: list[str]
    seed: int  # of the hidden checks' inputs, drawn in this process
    exercise_timeout_s: float
    hide: list[Path]  # folders the submissions' processes must not see
    namespaces: bool  # whether the sandbox has Linux namespaces
    name_mistakes: bool = True


@dataclass
class Outcome:
    graded: int  # submissions graded by this run
    kept: int  # submissions whose earlier records a resumed run kept
    errors: list[dict]  # records of submissions whose grading could not finish
    seed: int
    chapters: list[str]
    sandbox: str
    seconds: float


def _previous_state(out: Path) -> dict:
    try:
        state = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _check_folders(options: Options) -> None:
    if not options.submissions.is_dir():
        raise UsageError(f"no submissions folder at {options.submissions}")
    if options.out.exists() and not options.out.is_dir():
        raise UsageError(f"--out {options.out} is a file; name a folder for the results")
    if options.out == options.submissions or options.submissions.is_relative_to(options.out):
        raise UsageError("--out must be a folder of its own, not the submissions folder or one holding it")
    if options.workers < 1:
        raise UsageError("--workers must be at least 1")
    if any((options.out / RECORDS).glob("*.json")) and not options.resume:
        raise UsageError(
            f"{options.out} already holds graded submissions; add --resume to finish that run, or choose an empty folder"
        )


def _chapters(options: Options, previous: dict, subs: list[HandIn], course: Course) -> list[str]:
    known = [ch.id for ch in course.chapters]
    for chapter_id in options.chapters:
        if chapter_id not in known:
            raise UsageError(f"unknown chapter '{chapter_id}'; the course has: {', '.join(known)}")
    handed_in = set().union(*(s.chapters() for s in subs))
    chosen = [c for c in known if c in (options.chapters or previous.get("chapters") or handed_in)]
    if previous.get("chapters") and chosen != previous["chapters"]:
        raise UsageError(
            f"{options.out} was graded on {', '.join(previous['chapters'])}; resume with the same chapters"
        )
    if not chosen:
        raise UsageError(
            f"no chapter notebooks in {options.submissions} (expected <student>/chNN/chNN.ipynb, <student>/chNN.ipynb or <student>.ipynb)"
        )
    return chosen


def _seed(options: Options, previous: dict) -> int:
    if "seed" in previous and options.seed is not None and options.seed != previous["seed"]:
        raise UsageError(
            f"{options.out} was graded with --seed {previous['seed']}; resume with that seed or leave --seed out"
        )
    if options.seed is not None:
        return options.seed
    return previous.get("seed", secrets.randbelow(2**31))


def _grade_one(server: sandbox.ForkServer, split_checks: SplitChecks, sub: HandIn, run: Run) -> dict:
    """Grade each of the student's notebooks in a process of its own, which holds no reference of its chapter."""
    course = run.course
    notebooks = {c: sub.notebooks[c] for c in run.chapter_ids if c in sub.notebooks and c not in sub.problems}
    checks, errors, seconds, logs = [], {}, 0.0, []
    for chapter_id, notebook in notebooks.items():
        ran = sandbox.run_submission(
            server,
            {chapter_id: notebook},
            exercises=len(course.chapter(chapter_id).exercises),
            exercise_timeout_s=run.exercise_timeout_s,
            memory_mb=course.limits.memory_mb,
            hide=run.hide,
            namespaces=run.namespaces,
        )
        seconds += ran.seconds
        logs.append(ran.output if len(notebooks) == 1 else f"--- {chapter_id} ---\n{ran.output}")
        if ran.problem:
            errors[chapter_id] = ran.problem
            continue
        try:
            reported, produced = results.parse_report(ran.report, course, [chapter_id])
        except results.ReportError as exc:
            errors[chapter_id] = f"the submission's process did not report its checks: {exc}"
            continue
        checks += split_checks.complete(reported, produced, course, [chapter_id])
    return results.build_record(
        sub,
        course,
        run.chapter_ids,
        checks=checks,
        error="",
        seed=run.seed,
        seconds=seconds,
        output="".join(logs),
        chapter_errors=errors,
    )


def _record_of(future, sub: HandIn, run: Run) -> dict:
    """The future's record; a failure of the grader itself becomes the submission's error, not the batch's end."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - one submission's trouble never stops the batch
        error = (
            f"the grader failed on this submission ({type(exc).__name__}: {exc}); "
            f"delete {RECORDS}/{sub.safe_id}.json and rerun with --resume once it is fixed"
        )
        return results.build_record(
            sub,
            run.course,
            run.chapter_ids,
            checks=[],
            error=error,
            seed=run.seed,
            seconds=0.0,
            output=traceback.format_exc(),
        )


def _grade_pending(pending: list[HandIn], options: Options, run: Run, already: int) -> None:
    """Grade `pending` in parallel, writing each record as it finishes, with a progress bar that
    starts at the `already` kept ones."""
    records_dir = options.out / RECORDS
    errors = 0
    warm = len(pending) >= WARM_UP_FROM
    with (
        sandbox.ForkServer(run.chapter_ids, run.exercise_timeout_s, warm) as server,
        ThreadPoolExecutor(max_workers=options.workers) as pool,
        tqdm(
            total=already + len(pending),
            initial=already,
            desc="grading",
            unit="submission",
            file=sys.stderr,
            disable=not options.progress,
        ) as bar,
    ):
        split_checks = SplitChecks(
            run.course, run.chapter_ids, run.seed, name_mistakes=run.name_mistakes
        )  # drawn while the server starts
        server.give_cases(split_checks.cases)
        futures = {pool.submit(_grade_one, server, split_checks, s, run): s for s in pending}
        try:
            for future in as_completed(futures):
                record = _record_of(future, futures[future], run)
                write_atomic(
                    records_dir / f"{record['safe_id']}.json", json.dumps(record, indent=1, ensure_ascii=False) + "\n"
                )
                errors += record["status"] == "error"
                bar.set_postfix(errors=errors, refresh=False)
                bar.update()
        except BaseException:
            server.stop()
            pool.shutdown(cancel_futures=True)
            raise


def grade_class(course: Course, options: Options) -> Outcome:
    started = time.monotonic()
    options.submissions, options.out = options.submissions.resolve(), options.out.resolve()
    _check_folders(options)
    previous = _previous_state(options.out) if options.resume else {}
    subs = find_submissions(options.submissions, course, exclude=(options.out,))
    if not subs:
        raise UsageError(f"no submissions in {options.submissions}: expected a folder or a notebook per student")
    chapter_ids = _chapters(options, previous, subs, course)
    require_grading_material(chapter_ids, "grading")
    require_check_data(course, chapter_ids, "grading")
    seed = _seed(options, previous)
    timeout = options.exercise_timeout_s or course.limits.exercise_timeout_s
    print(
        f"grading {len(subs)} submissions on {', '.join(chapter_ids)} with seed {seed} (a regrade with --seed {seed} draws the same hidden inputs)",
        flush=True,
    )

    records_dir = options.out / RECORDS
    records_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(options.out)
    sandbox.remove_stale_scratch()
    kept = {
        s.safe_id
        for s in subs
        if options.resume
        and results.is_current(results.read_record(records_dir / f"{s.safe_id}.json"), s, chapter_ids, seed)
    }
    pending = [s for s in subs if s.safe_id not in kept]
    namespaces, why_not = sandbox.namespaces_available()
    mode = "namespaces" if namespaces else "rlimits+guard"
    if not namespaces:
        print(
            f"note: submissions run without namespaces ({why_not}): resource limits and a network guard only, "
            "and student code can write wherever you can",
            file=sys.stderr,
        )
    state = {
        "seed": seed,
        "chapters": chapter_ids,
        "course_version": course.version,
        "exercise_timeout_s": timeout,
        "memory_mb": course.limits.memory_mb,
        "sandbox": mode,
        "submissions": len(subs),
        "finished": False,
    }
    write_atomic(options.out / STATE_FILE, json.dumps(state, indent=2) + "\n")

    # The child sees neither the other students' notebooks nor the results (unless the course lives inside them).
    needed = (paths.course_root(), sandbox.PACKAGE_ROOT, Path(sys.prefix), Path(tempfile.gettempdir()), data.data_dir())
    needed = tuple(p.resolve() for p in needed)
    hide = [p for p in (options.submissions, options.out) if not any(n.is_relative_to(p) for n in needed)]
    if pending:
        run = Run(course, chapter_ids, seed, timeout, hide, namespaces, options.name_mistakes)
        _grade_pending(pending, options, run, already=len(kept))

    records = [results.read_record(records_dir / f"{s.safe_id}.json") for s in subs]
    if None in records:
        lost = [s.student for s, r in zip(subs, records) if r is None]
        raise RuntimeError(
            f"the records of {', '.join(lost)} in {records_dir} disappeared during the run; run again with --resume"
        )
    outputs.write_all(options.out, records, course, chapter_ids, seed)
    write_atomic(options.out / STATE_FILE, json.dumps({**state, "finished": True}, indent=2) + "\n")
    return Outcome(
        graded=len(pending),
        kept=len(kept),
        errors=[r for r in records if r["status"] == "error"],
        seed=seed,
        chapters=chapter_ids,
        sandbox=mode,
        seconds=time.monotonic() - started,
    )


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
