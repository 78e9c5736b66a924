"""`course generate` writes with a pretrained GPT-2, and says how to get the weights when they are missing."""
from __future__ import annotations

import shutil

import pytest

from autograder import cli, data
from autograder.tests.test_pretrained import save_small_gpt2

pytest.importorskip("transformers")


def test_generate_prints_the_prompt_and_its_continuation(tmp_path, capsys, needs_gpt2_files):
    save_small_gpt2(tmp_path)
    argv = ["generate", "--model", str(tmp_path), "--max-new-tokens", "5", "--seed", "1", "Every effort"]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert first.startswith("Every effort") and len(first.strip()) > len("Every effort")
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == first  # the seed fixes the sampling


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty data folder and a mirror folder that has nothing: any fetch fails without the network."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "downloads"))
    monkeypatch.setenv("COURSE_DATA_MIRROR", mirror.as_uri())
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    return mirror


def test_missing_model_says_how_to_fetch_it_and_exits_2(no_weights, capsys):
    assert cli.main(["generate", "--model", "gpt2-124m", "Every effort"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "`course data fetch gpt2-124m`" in captured.err and "COURSE_DATA_MIRROR" in captured.err
    assert len(captured.err.strip().splitlines()) == 1


@pytest.fixture
def tokenizer_files(needs_gpt2_files):
    """The data folder's GPT-2 tokenizer files, found before `no_weights` replaces the folder."""
    return [data.data_dir() / name for name in data.GPT2_TIKTOKEN_BLOBS]


def test_missing_weights_beside_the_tokenizer_say_how_to_fetch_them(tokenizer_files, no_weights, capsys):
    for path in tokenizer_files:
        shutil.copyfile(path, no_weights / path.name)
    assert cli.main(["generate", "--model", "gpt2-355m", "Every effort"]) == 2
    err = capsys.readouterr().err
    assert "weights of gpt2-355m" in err and "`course data fetch gpt2-355m`" in err


def test_unknown_model_exits_2_and_lists_the_sizes(tmp_path, capsys, needs_gpt2_files):
    assert cli.main(["generate", "--model", str(tmp_path / "nowhere"), "Every effort"]) == 2
    assert "gpt2-124m, gpt2-355m" in capsys.readouterr().err
