"""`course data`: list the course's data files and download the missing ones."""

from __future__ import annotations

import argparse
import sys

from llmcourse import data

from .. import manifest
from . import add_command

EPILOG = """\
examples:
  course data list                      what the course uses, and what is here
  course data fetch                     download the missing files the chapters use
  course data fetch gpt2-124m           GPT-2 124M's weights and tokenizer
  course data fetch --all               everything, all GPT-2 sizes included (about 11 GB)
  course data fetch the-verdict.txt gpt2-bpe
                                        one file and one group
  course data fetch --mirror http://127.0.0.1:8000/
                                        from a lab server instead of the internet
  COURSE_DATA_MIRROR=file:///srv/course-data course data fetch
                                        from a shared folder

Files go to COURSE_DATA_DIR (default: data/downloads in the course folder).
A mirror serves the files under their names as listed by `course data list`.

exit status: 0 the files are ready, 1 a download or verification failed, 2 an unknown name
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `data list` and `data fetch` to the `course` command line."""
    parser = add_command(
        subparsers,
        "data",
        "list and download the course's data files",
        "List the data files the course uses and download the missing ones, "
        "verified against their sha256, resuming interrupted downloads.",
        EPILOG,
    )
    commands = parser.add_subparsers(dest="data_command", metavar="{list,fetch}", required=True)

    listing = commands.add_parser(
        "list",
        help="show every data file, its size, whether it is here, and the groups",
        description="Show every data file of the manifest, its size, whether it is in the data folder, "
        "and the groups of files that `fetch` accepts as names.",
    )
    listing.set_defaults(func=run_list)

    fetching = add_command(
        commands,
        "fetch",
        "download missing data files (those the chapters use, or the named files and groups)",
        "Download the named data files and groups that are missing or damaged; without names, the "
        "files the chapters use (course.toml), and with --all every file of the manifest, pretrained "
        "weights included (gigabytes). Files already present with the right sha256 are not downloaded again.",
        EPILOG,
    )
    fetching.add_argument("names", nargs="*", metavar="NAME", help="a file or group name from `course data list`")
    fetching.add_argument(
        "--mirror",
        metavar="URL",
        help="fetch NAME from URL/NAME instead of the manifest's address (http://, https:// or file://); "
        "overrides COURSE_DATA_MIRROR",
    )
    fetching.add_argument("--all", action="store_true", help="every file of the manifest, pretrained weights included")
    fetching.add_argument("--quiet", action="store_true", help="no progress bars and no summary")
    fetching.set_defaults(func=run_fetch)


def run_list(args: argparse.Namespace) -> int:
    """Print the data files and groups; 1 when the manifest cannot be read."""
    try:
        print(data.format_listing())
    except data.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _requested(args: argparse.Namespace) -> list[str] | None:
    """The names to fetch: those given, every file (None) with --all, else the chapters' data."""
    if args.names or args.all:
        return args.names or None
    return sorted({name for chapter in manifest.load().chapters for name in chapter.data})


def run_fetch(args: argparse.Namespace) -> int:
    """Download what is missing; 2 for an unknown name, 1 when a download or verification fails."""
    try:
        paths = data.fetch(_requested(args), mirror=args.mirror, progress=not args.quiet)
    except data.UnknownDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except data.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"{len(paths)} data file(s) ready in {data.data_dir()}")
    return 0
