"""`course generate` writes with a pretrained GPT-2, and says how to get the weights when they are missing."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from autograder import cli
from llmcourse import data, pretrained_llama
from tests.test_pretrained import save_small_gpt2

pytest.importorskip("transformers")
pytest.importorskip("gguf")
from tests.test_pretrained_llama import (  # noqa: E402 - needs transformers and gguf
    CHATML,
    save_hugging_face,
    small_llama,
    train_byte_level_bpe,
)


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


def test_unknown_model_exits_2_and_lists_the_gpt2_sizes_and_the_llamas(tmp_path, capsys):
    assert cli.main(["generate", "--model", str(tmp_path / "nowhere"), "Every effort"]) == 2
    err = capsys.readouterr().err
    assert "gpt2-124m, gpt2-355m" in err and "smollm2-135m" in err and ".gguf" in err


def test_chat_with_gpt2_exits_2_and_names_a_chat_model(capsys):
    assert cli.main(["generate", "--model", "gpt2-124m", "--chat", "Hello"]) == 2
    assert "--model smollm2-135m" in capsys.readouterr().err


def test_missing_llama_says_how_to_fetch_it_and_exits_2(no_weights, capsys):
    assert cli.main(["generate", "--model", "smollm2-135m", "The capital of France is"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "`course data fetch smollm2-135m`" in captured.err and "COURSE_DATA_MIRROR" in captured.err


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory):
    """A small random Llama saved by save_pretrained, with a byte-level BPE tokenizer and a ChatML template."""
    folder = save_hugging_face(small_llama("tied"), tmp_path_factory.mktemp("llama"))
    train_byte_level_bpe().save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHATML}))
    return folder


def _greedy_text(folder, prompt: list[int], max_new_tokens: int, stop_id: int | None) -> str:
    from previous_chapters import generate_text_simple_cached

    loaded = pretrained_llama.load_llama(folder, progress=False)
    written = generate_text_simple_cached(loaded.model, torch.tensor([prompt]), max_new_tokens, eos_id=stop_id)
    return loaded.tokenizer.decode(written[0, len(prompt) :].tolist())


def test_llama_folder_continues_the_prompt_greedily_by_default(llama_folder, capsys):
    argv = ["generate", "--model", str(llama_folder), "--max-new-tokens", "8", "Every effort"]
    assert cli.main(argv) == 0
    loaded = pretrained_llama.load_llama(llama_folder, progress=False)
    expected = _greedy_text(llama_folder, loaded.prompt_ids("Every effort"), 8, loaded.eos_id)
    assert capsys.readouterr().out == f"Every effort{expected}\n"


def test_llama_samples_with_a_temperature_and_the_seed_fixes_the_sample(llama_folder, capsys):
    greedy = ["generate", "--model", str(llama_folder), "--max-new-tokens", "12", "Every effort"]
    assert cli.main(greedy) == 0
    greedy_text = capsys.readouterr().out
    samples = []
    for seed in ("1", "1", "2", "3"):
        assert cli.main([*greedy, "--temperature", "2.0", "--top-k", "0", "--seed", seed]) == 0
        samples.append(capsys.readouterr().out)
    assert samples[0] == samples[1] and all(sample.startswith("Every effort") for sample in samples)
    assert any(sample != greedy_text for sample in samples)


def test_llama_chat_prints_the_reply_to_the_chat_template(llama_folder, capsys):
    assert cli.main(["generate", "--model", str(llama_folder), "--chat", "--max-new-tokens", "8", "hi"]) == 0
    loaded = pretrained_llama.load_llama(llama_folder, progress=False)
    prompt = loaded.chat_prompt([{"role": "user", "content": "hi"}])
    assert capsys.readouterr().out == _greedy_text(llama_folder, prompt, 8, loaded.end_of_turn_id()) + "\n"


def test_llama_folder_without_a_tokenizer_exits_2(tmp_path, capsys):
    save_hugging_face(small_llama("tied"), tmp_path)
    assert cli.main(["generate", "--model", str(tmp_path), "Every effort"]) == 2
    assert "no tokenizer" in capsys.readouterr().err


def _needs_smollm2() -> None:
    if not data.is_available("smollm2-135m"):
        pytest.skip("needs SmolLM2-135M-Instruct in the data folder (course data fetch smollm2-135m)")


@pytest.mark.slow
def test_smollm2_continues_the_capital_of_france_with_paris(capsys):
    _needs_smollm2()
    assert cli.main(["generate", "--model", "smollm2-135m", "The capital of France is"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The capital of France is") and "Paris" in out


@pytest.mark.slow
def test_smollm2_chat_answers_with_paris_and_stops_at_the_end_of_its_turn(capsys):
    _needs_smollm2()
    assert cli.main(["generate", "--model", "smollm2-135m", "--chat", "What is the capital of France?"]) == 0
    reply = capsys.readouterr().out
    assert "Paris" in reply and "<|im_end|>" not in reply and "What is the capital" not in reply
