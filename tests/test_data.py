"""The data manifest, downloads and offline GPT-2 tokenizer, against a local web server."""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import re
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from autograder.commands import data as data_command
from autograder.paths import course_root
from llmcourse import data

SHARED_DATA = course_root().parent / "shared" / "data"
DEAD_URL = "http://127.0.0.1:9/gone"  # port 9 (discard) refuses connections


@dataclass
class FakeServer:
    """What the local server serves, and what it was asked for."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    truncate_next: int = 0  # how many coming responses stop halfway through their body
    honours_ranges: bool = True


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked_range = self.headers.get("Range")
            server.requests.append((self.path, asked_range))
            body = server.files.get(self.path[1:])
            if body is None:
                self.send_error(404)
                return
            start = 0
            if asked_range and server.honours_ranges:
                start = int(re.fullmatch(r"bytes=(\d+)-", asked_range).group(1))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            rest = body[start:]
            self.send_header("Content-Length", str(len(rest)))
            self.end_headers()
            if server.truncate_next:
                server.truncate_next -= 1
                rest = rest[: len(rest) // 2]
            self.wfile.write(rest)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data folder, no mirror, no tiktoken cache setting, no waiting between retries."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "downloads"))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    monkeypatch.delenv("COURSE_DATA_MANIFEST", raising=False)
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setattr(data, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))
    return tmp_path / "downloads"


@pytest.fixture
def server():
    fake = FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    fake.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield fake
    httpd.shutdown()
    httpd.server_close()


def _bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


ALPHA = _bytes(1, 300_000)  # several read chunks
BETA = _bytes(2, 1_000)


def write_manifest(path: Path, entries: dict[str, tuple[str, bytes]], groups: str = "") -> Path:
    """A manifest with one [files] table per name -> (url, content); `groups` is raw TOML."""
    text = "".join(
        f'[files."{name}"]\nurl = "{url}"\nsize = {len(content)}\n'
        f'sha256 = "{hashlib.sha256(content).hexdigest()}"\ndescription = "test file {name}"\n\n'
        for name, (url, content) in entries.items()
    )
    path.write_text(text + groups, encoding="utf-8")
    return path


@pytest.fixture
def manifest(server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """alpha.txt and beta.txt, served by the local server, and a group `both`."""
    server.files = {"alpha.txt": ALPHA, "beta.txt": BETA}
    path = write_manifest(
        tmp_path / "manifest.toml",
        {"alpha.txt": (f"{server.base}/alpha.txt", ALPHA), "beta.txt": (f"{server.base}/beta.txt", BETA)},
        groups='[groups]\nboth = ["alpha.txt", "beta.txt"]\n',
    )
    monkeypatch.setenv("COURSE_DATA_MANIFEST", str(path))
    return path


def test_fetch_downloads_the_file_and_leaves_no_part_file(manifest, server, isolated):
    (path,) = data.fetch(["alpha.txt"], progress=False)
    assert path == isolated / "alpha.txt"
    assert path.read_bytes() == ALPHA
    assert not (isolated / "alpha.txt.part").exists()
    assert server.requests == [("/alpha.txt", None)]


def test_wrong_checksum_raises_with_both_hashes_and_leaves_nothing(manifest, server, isolated):
    server.files["alpha.txt"] = _bytes(3, len(ALPHA))
    with pytest.raises(data.DataFetchError) as caught:
        data.fetch(["alpha.txt"], progress=False)
    message = str(caught.value)
    assert "alpha.txt" in message
    assert hashlib.sha256(ALPHA).hexdigest() in message
    assert hashlib.sha256(server.files["alpha.txt"]).hexdigest() in message
    assert list(isolated.iterdir()) == []


def test_truncated_transfer_is_retried_and_resumed(manifest, server, isolated):
    server.truncate_next = 1
    (path,) = data.fetch(["alpha.txt"], progress=False)
    assert path.read_bytes() == ALPHA
    assert server.requests == [("/alpha.txt", None), ("/alpha.txt", f"bytes={len(ALPHA) // 2}-")]


def test_transfer_that_stays_truncated_ends_in_a_clear_error(manifest, server, isolated):
    server.truncate_next = 100
    with pytest.raises(data.DataFetchError, match=r"alpha\.txt: downloading .* failed 4 times"):
        data.fetch(["alpha.txt"], progress=False)
    assert len(server.requests) == 4
    assert not (isolated / "alpha.txt").exists()


def test_missing_file_names_the_url_and_suggests_a_mirror(manifest, server):
    del server.files["beta.txt"]
    with pytest.raises(data.DataFetchError) as caught:
        data.fetch(["beta.txt"], progress=False)
    assert f"{server.base}/beta.txt" in str(caught.value)
    assert "404" in str(caught.value)
    assert "COURSE_DATA_MIRROR" in str(caught.value)
    assert len(server.requests) == 1  # a 404 is not retried


@pytest.mark.parametrize("listing", ["manifest", "unsized"])
def test_partial_download_is_resumed_with_a_range_request(listing, server, isolated, request):
    request.getfixturevalue(listing)  # with the files' sizes, and without them
    isolated.mkdir()
    (isolated / "alpha.txt.part").write_bytes(ALPHA[:1000])
    (path,) = data.fetch(["alpha.txt"], progress=False)
    assert path.read_bytes() == ALPHA
    assert server.requests == [("/alpha.txt", "bytes=1000-")]


def test_partial_download_restarts_when_the_server_ignores_ranges(manifest, server, isolated):
    server.honours_ranges = False
    isolated.mkdir()
    (isolated / "alpha.txt.part").write_bytes(b"x" * 1000)
    (path,) = data.fetch(["alpha.txt"], progress=False)
    assert path.read_bytes() == ALPHA
    assert len(server.requests) == 1


def test_present_file_is_not_downloaded_again(manifest, server, isolated):
    isolated.mkdir()
    (isolated / "beta.txt").write_bytes(BETA)
    data.fetch(["beta.txt"], progress=False)
    assert server.requests == []


def test_present_file_with_wrong_content_is_replaced(manifest, server, isolated):
    isolated.mkdir()
    (isolated / "beta.txt").write_bytes(b"y" * len(BETA))
    (path,) = data.fetch(["beta.txt"], progress=False)
    assert path.read_bytes() == BETA


def test_file_mirror_serves_files_by_name(tmp_path, monkeypatch, isolated):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "beta.txt").write_bytes(BETA)
    monkeypatch.setenv("COURSE_DATA_MANIFEST", str(write_manifest(tmp_path / "m.toml", {"beta.txt": (DEAD_URL, BETA)})))
    monkeypatch.setenv("COURSE_DATA_MIRROR", mirror.as_uri())
    (path,) = data.fetch(["beta.txt"], progress=False)
    assert path.read_bytes() == BETA


def test_mirror_argument_replaces_the_manifest_url_with_or_without_a_slash(tmp_path, monkeypatch, server):
    server.files["mirror/beta.txt"] = BETA
    monkeypatch.setenv("COURSE_DATA_MANIFEST", str(write_manifest(tmp_path / "m.toml", {"beta.txt": (DEAD_URL, BETA)})))
    for dest, mirror in (("slash", f"{server.base}/mirror/"), ("bare", f"{server.base}/mirror")):
        (path,) = data.fetch(["beta.txt"], mirror=mirror, dest=tmp_path / dest, progress=False)
        assert path.read_bytes() == BETA
    assert server.requests == [("/mirror/beta.txt", None)] * 2


def test_mirror_that_is_not_a_url_is_refused(manifest):
    with pytest.raises(data.DataFetchError, match="file:///"):
        data.fetch(["beta.txt"], mirror="/srv/course-data", progress=False)


def test_group_name_stands_for_its_files(manifest):
    assert [f.name for f in data.resolve(["both"])] == ["alpha.txt", "beta.txt"]
    assert [f.name for f in data.resolve(["beta.txt", "both"])] == ["beta.txt", "alpha.txt"]
    assert [f.name for f in data.resolve(None)] == ["alpha.txt", "beta.txt"]


def test_unknown_name_lists_the_known_names(manifest):
    with pytest.raises(data.UnknownDataError) as caught:
        data.resolve(["gamma.txt"])
    assert all(name in str(caught.value) for name in ("gamma.txt", "alpha.txt", "beta.txt", "both"))


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ('url = "ftp://x/y"\nsize = 1\nsha256 = "' + "0" * 64 + '"\ndescription = "d"', '"a.txt".url'),
        ('url = "https://x/y"\nsize = "1"\nsha256 = "' + "0" * 64 + '"\ndescription = "d"', '"a.txt".size'),
        ('url = "https://x/y"\nsize = 1\nsha256 = "abc"\ndescription = "d"', '"a.txt".sha256'),
        ('url = "https://x/y"\nsize = 1\nsha256 = "' + "0" * 64 + '"', '"a.txt".description'),
    ],
)
def test_malformed_manifest_names_the_file_and_the_key(tmp_path, entry, key):
    path = tmp_path / "bad.toml"
    path.write_text(f'[files."a.txt"]\n{entry}\n', encoding="utf-8")
    with pytest.raises(data.DataManifestError) as caught:
        data.load_data_manifest(path)
    assert str(path) in str(caught.value)
    assert key in str(caught.value)
    assert "should be" in str(caught.value)


def test_group_of_unknown_files_is_a_manifest_error(tmp_path):
    path = write_manifest(tmp_path / "bad.toml", {"a.txt": (DEAD_URL, b"a")}, groups='[groups]\ng = ["b.txt"]\n')
    with pytest.raises(data.DataManifestError, match=r"groups\.g.*a\.txt"):
        data.load_data_manifest(path)


def test_is_available_does_not_use_the_network(manifest, server, isolated):
    assert not data.is_available("both")
    isolated.mkdir()
    (isolated / "beta.txt").write_bytes(BETA)
    assert data.is_available("beta.txt")
    assert not data.is_available("both")
    assert server.requests == []


def test_data_path_fetches_a_missing_file_once(manifest, server, isolated):
    assert data.data_path("beta.txt").read_bytes() == BETA
    assert data.data_path("beta.txt") == isolated / "beta.txt"
    assert len(server.requests) == 1


def test_data_path_failure_says_how_to_fetch(manifest, server):
    del server.files["beta.txt"]
    with pytest.raises(data.DataFetchError, match=r"course data fetch beta\.txt.*COURSE_DATA_MIRROR"):
        data.data_path("beta.txt")


def test_listing_shows_files_status_and_groups(manifest, isolated):
    isolated.mkdir()
    (isolated / "beta.txt").write_bytes(BETA)
    lines = data.format_listing().splitlines()
    assert re.search(r"^alpha\.txt\s+293\.0 KiB\s+missing\s+test file alpha\.txt$", "\n".join(lines), re.M)
    assert re.search(r"^beta\.txt\s+1000 B\s+present\s+test file beta\.txt$", "\n".join(lines), re.M)
    assert "  both: alpha.txt, beta.txt" in lines


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="course")
    data_command.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_fetch_downloads_and_exits_0(manifest, isolated, capsys):
    assert _cli("data", "fetch", "both", "--quiet") == 0
    assert (isolated / "alpha.txt").read_bytes() == ALPHA
    assert capsys.readouterr().out == ""


def test_cli_fetch_unknown_name_exits_2(manifest, capsys):
    assert _cli("data", "fetch", "gamma.txt") == 2
    assert "gamma.txt" in capsys.readouterr().err


def test_cli_fetch_failure_exits_1_with_the_message_and_no_traceback(manifest, server, capsys):
    del server.files["beta.txt"]
    assert _cli("data", "fetch", "beta.txt", "--quiet") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: beta.txt: not found at") and "Traceback" not in err


def test_cli_list_prints_the_listing(manifest, capsys):
    assert _cli("data", "list") == 0
    assert "both: alpha.txt, beta.txt" in capsys.readouterr().out


def test_course_manifest_matches_the_shared_data_files():
    manifest = data.load_data_manifest(course_root() / "data" / "manifest.toml")
    assert set(data.GPT2_TIKTOKEN_BLOBS) <= set(manifest.files)
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no shared data folder at {SHARED_DATA}")
    shared = [file for file in manifest.files.values() if (SHARED_DATA / file.name).exists()]
    # Pretrained weights and packages (megabytes to gigabytes) are not kept in the shared folder; the texts are.
    assert {"the-verdict.txt", "tinyshakespeare.txt", "instruction-data.json", "SMSSpamCollection.tsv"} <= {
        file.name for file in shared
    }
    for file in shared:
        content = (SHARED_DATA / file.name).read_bytes()
        assert (len(content), hashlib.sha256(content).hexdigest()) == (file.size, file.sha256), file.name


@pytest.fixture
def no_tiktoken_downloads(monkeypatch):
    """A fresh tiktoken registry whose downloader fails the test if it is ever called."""
    pytest.importorskip("tiktoken")
    import tiktoken.load
    import tiktoken.registry

    def refuse(blobpath: str) -> bytes:
        raise AssertionError(f"tiktoken tried to download {blobpath}")

    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    return tiktoken


def test_gpt2_encoding_is_built_offline_from_mirrored_files(monkeypatch, isolated, no_tiktoken_downloads):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no shared data folder at {SHARED_DATA}")
    monkeypatch.setenv("COURSE_DATA_MIRROR", SHARED_DATA.as_uri())
    encoding = data.gpt2_encoding()
    # ids from Raschka, "Build a Large Language Model (From Scratch)", chapter 2
    text = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace."
    assert encoding.encode(text, allowed_special={"<|endoftext|>"}) == [
        15496,
        11,
        466,
        345,
        588,
        8887,
        30,
        220,
        50256,
        554,
        262,
        4252,
        18250,
        8812,
        2114,
        286,
        617,
        34680,
        27271,
        13,
    ]
    assert encoding.encode("Akwirw ier") == [33901, 86, 343, 86, 220, 959]
    assert len(encoding.encode((SHARED_DATA / "the-verdict.txt").read_text(encoding="utf-8"))) == 5145
    assert data.os.environ["TIKTOKEN_CACHE_DIR"] == str(isolated / "tiktoken")


def test_gpt2_encoding_without_the_files_says_how_to_fetch_them(tmp_path, monkeypatch, no_tiktoken_downloads):
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    monkeypatch.setenv("COURSE_DATA_MIRROR", empty.as_uri())
    with pytest.raises(data.DataFetchError, match=r"course data fetch gpt2-"):
        data.gpt2_encoding()


def _without_sizes(manifest: Path) -> Path:
    """The manifest with every `size` line removed, as for files whose size is not published."""
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    manifest.write_text("".join(line for line in lines if not line.startswith("size = ")), encoding="utf-8")
    return manifest


@pytest.fixture
def unsized(manifest: Path) -> Path:
    """The `manifest` fixture's files, listed without their sizes."""
    return _without_sizes(manifest)


def test_manifest_without_a_size_validates_and_lists_the_size_as_unknown(unsized):
    files = data.load_data_manifest(unsized).files
    assert files["alpha.txt"].size is None
    assert re.search(r"^alpha\.txt\s+size unknown\s+missing\s+test file alpha\.txt$", data.format_listing(), re.M)


def test_fetch_without_a_size_verifies_by_sha256(unsized, server, isolated):
    (path,) = data.fetch(["alpha.txt"], progress=False)
    assert path.read_bytes() == ALPHA
    assert not (isolated / "alpha.txt.part").exists()
    assert data.is_available("alpha.txt")
    assert data.data_path("alpha.txt") == path
    assert server.requests == [("/alpha.txt", None)]


def test_fetch_without_a_size_rejects_a_wrong_sha256(unsized, server, isolated):
    server.files["alpha.txt"] = ALPHA[:-1] + b"?"
    with pytest.raises(data.DataFetchError, match=r"alpha\.txt: .* expects " + hashlib.sha256(ALPHA).hexdigest()):
        data.fetch(["alpha.txt"], progress=False)
    assert list(isolated.iterdir()) == []
    assert not data.is_available("alpha.txt")


def test_complete_part_without_a_size_is_kept_without_a_request(unsized, server, isolated):
    isolated.mkdir()
    (isolated / "alpha.txt.part").write_bytes(ALPHA)
    (path,) = data.fetch(["alpha.txt"], progress=False)
    assert path.read_bytes() == ALPHA
    assert server.requests == []


def test_progress_bar_without_a_size_counts_to_the_content_length(unsized, server, monkeypatch):
    totals = []
    make_bar = data._progress_bar

    def recording(file, total, initial, enabled):
        totals.append(total)
        return make_bar(file, total, initial, enabled)

    monkeypatch.setattr(data, "_progress_bar", recording)
    data.fetch(["alpha.txt"], progress=False)
    assert totals == [len(ALPHA)]


def test_cli_fetch_without_names_gets_what_the_chapters_use_not_every_weight_file():
    from autograder.cli import build_parser

    args = build_parser().parse_args(["data", "fetch"])
    names = data_command._requested(args)
    assert "the-verdict.txt" in names and "gpt2-bpe" in names
    assert not [name for name in names if "safetensors" in name or name.startswith("gpt2-1")]
    assert data_command._requested(build_parser().parse_args(["data", "fetch", "--all"])) is None


def _zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


ARCHIVE = _zipped({"readme.txt": BETA, "collection/data": ALPHA})


@pytest.fixture
def archived(server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """data.tsv, the member collection/data of the zip archive archive.zip on the local server."""
    server.files = {"archive.zip": ARCHIVE}
    path = tmp_path / "manifest.toml"
    path.write_text(
        f'[files."data.tsv"]\nurl = "{server.base}/archive.zip"\n'
        f'archive_sha256 = "{hashlib.sha256(ARCHIVE).hexdigest()}"\nmember = "collection/data"\n'
        f'size = {len(ALPHA)}\nsha256 = "{hashlib.sha256(ALPHA).hexdigest()}"\ndescription = "a zipped file"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("COURSE_DATA_MANIFEST", str(path))
    return path


def test_file_inside_an_archive_is_extracted_and_the_archive_deleted(archived, server, isolated):
    (path,) = data.fetch(["data.tsv"], progress=False)
    assert path.read_bytes() == ALPHA
    assert sorted(p.name for p in isolated.iterdir()) == ["data.tsv"]
    assert server.requests == [("/archive.zip", None)]


def test_archive_with_a_wrong_checksum_is_refused_before_extraction(archived, server, isolated):
    server.files["archive.zip"] = _zipped({"collection/data": ALPHA, "extra": BETA})
    with pytest.raises(data.DataFetchError, match="archive.zip.*sha256"):
        data.fetch(["data.tsv"], progress=False)
    assert not isolated.exists() or not any(isolated.iterdir())


def test_archive_without_the_member_names_it(archived, server, isolated, monkeypatch):
    server.files["archive.zip"] = other = _zipped({"readme.txt": BETA})
    archived.write_text(
        archived.read_text().replace(hashlib.sha256(ARCHIVE).hexdigest(), hashlib.sha256(other).hexdigest())
    )
    with pytest.raises(data.DataFetchError, match="holds no collection/data"):
        data.fetch(["data.tsv"], progress=False)
    assert not any(isolated.iterdir())


def test_mirror_serves_the_extracted_file_by_its_name(archived, tmp_path, isolated):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "data.tsv").write_bytes(ALPHA)
    (path,) = data.fetch(["data.tsv"], mirror=mirror.as_uri(), progress=False)
    assert path.read_bytes() == ALPHA
