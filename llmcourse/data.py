"""The course's data files: the manifest, verified downloads and GPT-2's tokenizer offline.

`data/manifest.toml` lists every file the course downloads (URL, sha256, and the size
where it is published; for a file inside a zip archive, the archive's URL and sha256 and
the file's path in it) and groups of them. `fetch` downloads what is missing into the
data folder; `data_path` is the notebook entry point that fetches a file on first use;
`gpt2_encoding` builds tiktoken's `gpt2` encoding from the data folder without touching
the internet.

Invariant: a file only appears under its own name in the data folder after its size
and sha256 were checked (it is written to `NAME.part` and renamed), so a present file
of the right size (any size, for a file whose size the manifest omits) is trusted;
only `fetch` hashes present files again.

Environment:
    COURSE_DATA_DIR       the data folder (default: <course root>/data/downloads)
    COURSE_DATA_MIRROR    a base URL (http://, https:// or file://) serving the files
                          by their manifest names, for labs without internet
    COURSE_DATA_MANIFEST  the manifest to read (default: <course root>/data/manifest.toml)
    TIKTOKEN_CACHE_DIR    tiktoken's cache; set to <data folder>/tiktoken unless already set
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .paths import course_root

if TYPE_CHECKING:
    import tiktoken
    from tqdm import tqdm

# The addresses tiktoken's `gpt2` encoding reads its files from
# (tiktoken_ext/openai_public.py); its cache names each file by the sha1 of its address.
GPT2_TIKTOKEN_BLOBS = {
    "gpt2-vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "gpt2-encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
}
RETRY_DELAYS_S = (1.0, 2.0, 4.0)  # waits before the 2nd, 3rd and 4th attempt at a download
TIMEOUT_S = 60.0  # seconds without data before a connection counts as failed
MIRROR_HINT = (
    "set COURSE_DATA_MIRROR to a web server or folder that serves the course data files by name "
    "(e.g. COURSE_DATA_MIRROR=http://127.0.0.1:8000/ or file:///srv/course-data)"
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 16


class DataError(Exception):
    """A data file cannot be listed, found or fetched; the message says what to do."""


class DataManifestError(DataError):
    """The data manifest is missing, unreadable or does not match the expected schema."""


class UnknownDataError(DataError, LookupError):
    """A name is neither a file nor a group of the data manifest."""


class DataFetchError(DataError):
    """A data file could not be downloaded or failed verification."""


class _TransientError(Exception):
    """A download failure that may go away when tried again (reset, timeout, truncation)."""


@dataclass(frozen=True)
class DataFile:
    """One downloadable file; `name` is its local name and its name under a mirror."""

    name: str
    url: str
    size: int | None  # bytes; None where the source does not publish it (sha256 alone pins the file)
    sha256: str  # lowercase hex
    description: str
    member: str | None = None  # the file's path inside the zip archive at `url`; None: `url` is the file itself
    archive_sha256: str | None = None  # the archive's sha256, when `member` is set


def _archive_of(file: DataFile) -> DataFile:
    """The zip archive that holds `file`, as a file of its own (`NAME.zip`, pinned by archive_sha256)."""
    return DataFile(
        name=f"{file.name}.zip",
        url=file.url,
        size=None,
        sha256=file.archive_sha256,
        description=f"the archive holding {file.name}",
    )


@dataclass(frozen=True)
class DataManifest:
    files: dict[str, DataFile]
    groups: dict[str, tuple[str, ...]]
    source: Path


def manifest_file() -> Path:
    """The data manifest: `COURSE_DATA_MANIFEST`, else `<course root>/data/manifest.toml`."""
    env = os.environ.get("COURSE_DATA_MANIFEST")
    return Path(env).expanduser() if env else course_root() / "data" / "manifest.toml"


def data_dir() -> Path:
    """The folder downloads go to: `COURSE_DATA_DIR`, else `<course root>/data/downloads`."""
    env = os.environ.get("COURSE_DATA_DIR")
    return Path(env).expanduser() if env else course_root() / "data" / "downloads"


def _field(source: Path, table: dict, where: str, key: str, ok: Callable[[Any], bool], expected: str) -> Any:
    value = table.get(key)
    if not ok(value):
        found = repr(value) if key in table else "nothing"
        raise DataManifestError(f"{source}: key '{where}{key}' should be {expected}; found {found}")
    return value


def _data_file(source: Path, name: str, table: Any) -> DataFile:
    key = f'files."{name}"'
    if not isinstance(table, dict):
        raise DataManifestError(
            f"{source}: '{key}' should be a table with url, sha256, description and (where known) size"
        )
    if "/" in name or "\\" in name or name in (".", "..") or name.endswith(".part"):
        raise DataManifestError(f"{source}: '{key}' should be named by a plain file name (no folders, no .part)")
    where = key + "."
    return DataFile(
        name=name,
        url=_field(
            source,
            table,
            where,
            "url",
            lambda v: isinstance(v, str) and v.startswith(("https://", "http://")),
            "an http:// or https:// URL",
        ),
        size=_field(
            source,
            table,
            where,
            "size",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
            "the file's size in bytes (a positive integer), or left out",
        )
        if "size" in table
        else None,
        sha256=_field(
            source,
            table,
            where,
            "sha256",
            lambda v: isinstance(v, str) and bool(_SHA256.match(v)),
            "the file's sha256 as 64 lowercase hex digits",
        ),
        description=_field(
            source, table, where, "description", lambda v: isinstance(v, str) and bool(v), "a one-line description"
        ),
        member=_field(
            source,
            table,
            where,
            "member",
            lambda v: isinstance(v, str) and bool(v),
            "the file's path inside the zip archive at url",
        )
        if "member" in table
        else None,
        archive_sha256=_field(
            source,
            table,
            where,
            "archive_sha256",
            lambda v: isinstance(v, str) and bool(_SHA256.match(v)),
            "the zip archive's sha256 as 64 lowercase hex digits (with member)",
        )
        if "member" in table
        else None,
    )


def load_data_manifest(source: Path | None = None) -> DataManifest:
    """Read and validate the data manifest (`manifest_file()` unless `source` is given); read once
    while the file stays as it is."""
    source = source or manifest_file()
    try:
        stat = source.stat()
    except FileNotFoundError:
        stat = None
    if stat is not None:
        return _manifest_as_of(source.resolve(), stat.st_mtime_ns, stat.st_size)
    return _read_data_manifest(source)


@functools.lru_cache(maxsize=8)
def _manifest_as_of(source: Path, mtime_ns: int, size: int) -> DataManifest:
    return _read_data_manifest(source)


def _read_data_manifest(source: Path) -> DataManifest:
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataManifestError(
            f"{source}: no data manifest here; run from the course folder or set COURSE_ROOT"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise DataManifestError(f"{source}: not valid TOML: {exc}") from None
    tables = _field(
        source, raw, "", "files", lambda v: isinstance(v, dict) and bool(v), 'a table of [files."NAME"] tables'
    )
    files = {name: _data_file(source, name, table) for name, table in tables.items()}
    raw_groups = (
        _field(source, raw, "", "groups", lambda v: isinstance(v, dict), "a [groups] table of name = [file names]")
        if "groups" in raw
        else {}
    )
    groups = {}
    for group in raw_groups:
        if group in files:
            raise DataManifestError(f"{source}: group '{group}' has the name of a file; rename one of them")
        groups[group] = tuple(
            _field(
                source,
                raw_groups,
                "groups.",
                group,
                lambda v: isinstance(v, list) and bool(v) and all(m in files for m in v),
                f"a non-empty list of file names from [files] ({', '.join(files)})",
            )
        )
    return DataManifest(files=files, groups=groups, source=source)


def _unknown(name: str, manifest: DataManifest) -> UnknownDataError:
    return UnknownDataError(
        f"unknown data file or group {name!r}; files: {', '.join(manifest.files)}; "
        f"groups: {', '.join(manifest.groups) or 'none'} (from {manifest.source})"
    )


def resolve(names: Iterable[str] | None = None) -> list[DataFile]:
    """The files that file or group `names` stand for, in order, each once (None: all files)."""
    manifest = load_data_manifest()
    if names is None:
        return list(manifest.files.values())
    chosen: dict[str, DataFile] = {}
    for name in names:
        if name in manifest.files:
            members: tuple[str, ...] = (name,)
        elif name in manifest.groups:
            members = manifest.groups[name]
        else:
            raise _unknown(name, manifest)
        for member in members:
            chosen.setdefault(member, manifest.files[member])
    return list(chosen.values())


def _data_file_named(name: str) -> DataFile:
    manifest = load_data_manifest()
    if name in manifest.groups:
        raise UnknownDataError(
            f"{name!r} is a group of files ({', '.join(manifest.groups[name])}); ask for one file at a time"
        )
    if name not in manifest.files:
        raise _unknown(name, manifest)
    return manifest.files[name]


def _sha256(path: Path) -> str:
    """The file's sha256, computed once while the file stays as it is."""
    stat = path.stat()
    return _sha256_as_of(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _sha256_as_of(path: Path, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_present(path: Path, file: DataFile) -> bool:
    """A file at `path` with the manifest's size, or any size when the manifest gives none."""
    return path.is_file() and (file.size is None or path.stat().st_size == file.size)


def _is_verified(path: Path, file: DataFile) -> bool:
    return _is_present(path, file) and _sha256(path) == file.sha256


def is_available(name: str) -> bool:
    """Whether a file (or every file of a group) is in the data folder; never uses the network."""
    return all(_is_present(data_dir() / file.name, file) for file in resolve([name]))


def _mirror_base(mirror: str | None) -> str | None:
    if not mirror:
        return None
    if not mirror.startswith(("http://", "https://", "file://")):
        raise DataFetchError(
            f"mirror {mirror!r} is not a URL; give an http://, https:// or file:// base "
            "(a folder is written file:///absolute/path)"
        )
    return mirror.rstrip("/")


def _source_url(file: DataFile, mirror_base: str | None) -> str:
    return f"{mirror_base}/{urllib.parse.quote(file.name)}" if mirror_base else file.url


def _progress_bar(file: DataFile, total: int | None, initial: int, enabled: bool) -> tqdm:
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, desc=file.name, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled
    )


def _receive(response: Any, part: Path, file: DataFile, offset: int, progress: bool) -> None:
    """Write `response`'s body to `part`, appending when it resumes at `offset` (HTTP 206)."""
    resumed = offset > 0 and getattr(response, "status", None) == 206
    if resumed:
        match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            part.unlink()
            raise _TransientError("the server resumed at another offset than asked; starting again")
    else:
        offset = 0
    length = response.headers.get("Content-Length")
    expected_end = offset + int(length) if length is not None else None
    total = file.size if file.size is not None else expected_end
    received = offset
    with part.open("ab" if resumed else "wb") as out, _progress_bar(file, total, offset, progress) as bar:
        while block := response.read(_CHUNK):
            out.write(block)
            bar.update(len(block))
            received += len(block)
    if expected_end is not None and received < expected_end:
        raise _TransientError(f"the connection closed after {received} of {expected_end} bytes")


def _transfer(url: str, part: Path, file: DataFile, progress: bool) -> None:
    """One attempt: continue `part` from where it stops, or rewrite it when the server cannot resume."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "course-data-fetch"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            _receive(response, part, file, offset, progress)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise DataFetchError(f"{file.name}: not found at {url} (HTTP 404); {MIRROR_HINT}") from None
        if exc.code == 416:  # the partial file does not fit what the server has now
            part.unlink(missing_ok=True)
            raise _TransientError("the server cannot resume the partial download; starting again") from None
        if exc.code in (408, 429) or exc.code >= 500:
            raise _TransientError(f"HTTP {exc.code} {exc.reason}") from None
        raise DataFetchError(f"{file.name}: {url} answered HTTP {exc.code} {exc.reason}; {MIRROR_HINT}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, FileNotFoundError):
            raise DataFetchError(f"{file.name}: not found at {url}; {MIRROR_HINT}") from None
        if isinstance(exc.reason, (ConnectionError, TimeoutError)):
            raise _TransientError(str(exc.reason)) from None
        raise DataFetchError(f"{file.name}: cannot reach {url} ({exc.reason}); {MIRROR_HINT}") from None
    except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
        raise _TransientError(f"{type(exc).__name__}: {exc}") from None


def _download(file: DataFile, url: str, target: Path, progress: bool) -> None:
    """Download `url` to `target` through `target.part`, retrying transient failures, then verify."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    # Without a size in the manifest only the hash tells a complete part from one to resume;
    # a complete part resumed anyway gets HTTP 416 from the server and starts again.
    complete = _is_verified(part, file)
    if not complete and file.size is not None and part.exists() and part.stat().st_size >= file.size:
        part.unlink()  # complete or overlong but wrong: nothing in it to resume
    attempts = len(RETRY_DELAYS_S) + 1
    for attempt in range(attempts):
        if complete:
            break
        try:
            _transfer(url, part, file, progress)
            break
        except _TransientError as exc:
            if attempt == attempts - 1:
                raise DataFetchError(
                    f"{file.name}: downloading {url} failed {attempts} times (last: {exc}); "
                    f"run the fetch again to resume, or {MIRROR_HINT}"
                ) from None
            time.sleep(RETRY_DELAYS_S[attempt])
    _verify_and_place(part, target, file, url)


def _verify_and_place(part: Path, target: Path, file: DataFile, url: str) -> None:
    """Rename `part` to `target` if its size and sha256 are the manifest's, else delete it and raise."""
    size, actual = part.stat().st_size, _sha256(part)
    if (file.size is not None and size != file.size) or actual != file.sha256:
        part.unlink()
        expected_size = f" ({file.size} bytes)" if file.size is not None else ""
        raise DataFetchError(
            f"{file.name}: the file from {url} has sha256 {actual} ({size} bytes) but the manifest "
            f"expects {file.sha256}{expected_size}; it was deleted. Try again, or if the source "
            f"changed, {MIRROR_HINT}"
        )
    os.replace(part, target)


def _download_from_archive(file: DataFile, target: Path, progress: bool) -> None:
    """Download the zip archive at `file.url` (verified by its own sha256), take `file.member` out of it
    into `target` (verified by the file's size and sha256), and delete the archive."""
    archive = target.with_name(_archive_of(file).name)
    _download(_archive_of(file), file.url, archive, progress)
    part = target.with_name(target.name + ".part")
    try:
        with zipfile.ZipFile(archive) as zipped, zipped.open(file.member) as member, part.open("wb") as out:
            shutil.copyfileobj(member, out)
    except KeyError:
        raise DataFetchError(
            f"{file.name}: the archive from {file.url} holds no {file.member}; {MIRROR_HINT}"
        ) from None
    finally:
        archive.unlink(missing_ok=True)
    _verify_and_place(part, target, file, f"{file.url} ({file.member})")


def fetch(
    names: Iterable[str] | None = None,
    *,
    mirror: str | None = None,
    dest: Path | None = None,
    progress: bool = True,
) -> list[Path]:
    """Download the files that `names` (files or groups; None: all) stand for, unless present.

    A present file whose sha256 matches is kept without using the network. Files come
    from `mirror` + "/" + name when a mirror is given or COURSE_DATA_MIRROR is set, else
    from the manifest's URL (out of the zip archive there, for a file with a `member`). Returns the local paths, in the order of `resolve(names)`.
    """
    files = resolve(names)
    base = _mirror_base(mirror if mirror is not None else os.environ.get("COURSE_DATA_MIRROR"))
    folder = Path(dest) if dest is not None else data_dir()
    paths = []
    for file in files:
        target = folder / file.name
        if not _is_verified(target, file):
            if file.member is not None and base is None:  # a mirror serves the file itself
                _download_from_archive(file, target, progress)
            else:
                _download(file, _source_url(file, base), target, progress)
        paths.append(target)
    if any(file.name in GPT2_TIKTOKEN_BLOBS for file in files):
        configure_tiktoken_cache()
    return paths


def data_path(name: str) -> Path:
    """The local path of data file `name`, fetched first if it is not in the data folder yet.

    Asking for one of GPT-2's tokenizer files also points tiktoken at it
    (`configure_tiktoken_cache`), so `tiktoken.get_encoding("gpt2")` works offline from then on.
    """
    file = _data_file_named(name)
    path = data_dir() / file.name
    if _is_present(path, file):
        if file.name in GPT2_TIKTOKEN_BLOBS:
            configure_tiktoken_cache()
        return path
    try:
        return fetch([file.name])[0]
    except DataFetchError as exc:
        raise DataFetchError(
            f"{exc}\n{name} is needed in {data_dir()}: run `course data fetch {name}`, "
            "or set COURSE_DATA_MIRROR to a server or folder with the course data and try again."
        ) from None


def tiktoken_cache_dir() -> Path:
    """tiktoken's cache folder: TIKTOKEN_CACHE_DIR, else `<data folder>/tiktoken` (an empty value
    turns tiktoken's cache off, and counts as unset here)."""
    return Path(os.environ.get("TIKTOKEN_CACHE_DIR") or data_dir() / "tiktoken")


def _tiktoken_cache_path(name: str) -> Path:
    key = hashlib.sha1(GPT2_TIKTOKEN_BLOBS[name].encode()).hexdigest()
    return tiktoken_cache_dir() / key


def gpt2_tiktoken_cache_files() -> list[Path]:
    """The GPT-2 files in tiktoken's cache folder under the names tiktoken looks for (those present)."""
    return [path for path in map(_tiktoken_cache_path, GPT2_TIKTOKEN_BLOBS) if path.is_file()]


def configure_tiktoken_cache() -> None:
    """Make tiktoken find the data folder's GPT-2 files in its cache, so `gpt2` loads offline.

    Sets TIKTOKEN_CACHE_DIR to `<data folder>/tiktoken` unless it is set (an empty value,
    which turns tiktoken's cache off, counts as unset), then links or copies each verified
    GPT-2 file of the data folder to the name tiktoken looks for. Cheap when already done.
    """
    os.environ["TIKTOKEN_CACHE_DIR"] = str(tiktoken_cache_dir())
    files = load_data_manifest().files
    for name in GPT2_TIKTOKEN_BLOBS:
        file = files.get(name)
        cached, source = _tiktoken_cache_path(name), data_dir() / name
        if file is None or _is_verified(cached, file) or not _is_verified(source, file):
            continue
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")  # processes side by side each have one
        staging.unlink(missing_ok=True)
        try:
            os.link(source, staging)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, staging)
        os.replace(staging, cached)


def gpt2_encoding() -> tiktoken.Encoding:
    """tiktoken's `gpt2` encoding, built from the data folder's GPT-2 files (fetched on first use).

    Raises DataFetchError rather than letting tiktoken download the files itself.
    """
    for name in GPT2_TIKTOKEN_BLOBS:
        data_path(name)  # also points tiktoken's cache at them
    for name in GPT2_TIKTOKEN_BLOBS:
        if not _is_verified(_tiktoken_cache_path(name), _data_file_named(name)):
            raise DataFetchError(
                f"{name} in {data_dir()} does not match its sha256; "
                "run `course data fetch gpt2-bpe` to download it again"
            )
    import tiktoken

    return tiktoken.get_encoding("gpt2")


def _human_size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def format_listing() -> str:
    """A table of every data file (name, size, present or missing, description) and the groups."""
    manifest = load_data_manifest()
    folder = data_dir()
    rows = [("name", "size", "status", "description")] + [
        (f.name, _human_size(f.size), "present" if _is_present(folder / f.name, f) else "missing", f.description)
        for f in manifest.files.values()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"Data folder: {folder}", ""]
    lines += [
        f"{name:<{widths[0]}}  {size:>{widths[1]}}  {status:<{widths[2]}}  {description}"
        for name, size, status, description in rows
    ]
    if manifest.groups:
        lines += ["", "Groups:"]
        lines += [f"  {group}: {', '.join(members)}" for group, members in manifest.groups.items()]
    return "\n".join(lines)
