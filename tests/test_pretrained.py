"""Pretrained GPT-2 in the course's GPTModel agrees with Hugging Face's GPT-2 on the same weights."""

from __future__ import annotations

import functools
import hashlib
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from llmcourse import data, pretrained

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

PROMPTS = [
    [6109, 3626, 6100, 345],
    [15496, 11, 466, 345, 588, 8887, 30],
]  # "Every effort moves you", "Hello, do you like tea?"
SMALL = {"emb_dim": 64, "n_layers": 2, "n_heads": 4}


def save_small_gpt2(folder: Path) -> transformers.GPT2LMHeadModel:
    """A random two-layer GPT-2 with GPT-2's vocabulary and context, saved by `save_pretrained` into `folder`.

    Weights drawn wider than GPT-2's initialisation, so that the next-token choices are far apart
    and greedy decoding does not repeat one token.
    """
    config = transformers.GPT2Config(
        n_layer=SMALL["n_layers"],
        n_embd=SMALL["emb_dim"],
        n_head=SMALL["n_heads"],
        n_positions=1024,
        vocab_size=50257,
        initializer_range=0.3,
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def small_gpt2(tmp_path_factory) -> tuple[Path, transformers.GPT2LMHeadModel]:
    folder = tmp_path_factory.mktemp("small-gpt2")
    return folder, save_small_gpt2(folder)


def _greedy_like_hugging_face(ours, hf_model, prompt: list[int], max_new_tokens: int) -> None:
    from previous_chapters import generate

    ids = torch.tensor([prompt])
    mine = generate(ours, ids, max_new_tokens=max_new_tokens, context_size=1024, temperature=0.0)
    theirs = hf_model.generate(
        ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=50256
    )
    assert mine.tolist() == theirs.tolist()


def _max_logit_difference(ours, hf_model, ids: torch.Tensor) -> float:
    with torch.no_grad():
        return (ours(ids) - hf_model(ids).logits).abs().max().item()


def test_gpt2_config_gives_each_size_its_shape_and_gpt2s_settings():
    assert pretrained.gpt2_config("gpt2-124m") == {
        "vocab_size": 50257,
        "context_length": 1024,
        "emb_dim": 768,
        "n_heads": 12,
        "n_layers": 12,
        "drop_rate": 0.0,
        "qkv_bias": True,
    }
    shapes = {
        name: (
            pretrained.gpt2_config(name)["emb_dim"],
            pretrained.gpt2_config(name)["n_layers"],
            pretrained.gpt2_config(name)["n_heads"],
        )
        for name in pretrained.GPT2_SIZES
    }
    assert shapes == {
        "gpt2-124m": (768, 12, 12),
        "gpt2-355m": (1024, 24, 16),
        "gpt2-774m": (1280, 36, 20),
        "gpt2-1558m": (1600, 48, 25),
    }


def test_gpt2_config_of_an_unknown_size_lists_the_known_ones():
    with pytest.raises(ValueError, match="gpt2-124m, gpt2-355m, gpt2-774m, gpt2-1558m"):
        pretrained.gpt2_config("gpt2-7b")


def test_124m_configuration_has_the_books_parameter_count():
    from previous_chapters import GPTModel

    def count(cfg: dict) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in GPTModel(cfg).parameters())

    cfg = pretrained.gpt2_config("gpt2-124m")
    assert count({**cfg, "qkv_bias": False}) == 163_009_536  # the book's count: untied output head
    with_biases = count(cfg)
    assert with_biases == 163_009_536 + 12 * 3 * 768
    assert with_biases - 50257 * 768 == 124_439_808  # Hugging Face's count, the output head tied to wte


def test_read_gpt2_safetensors_names_tensors_as_openais_gpt2(small_gpt2, tmp_path):
    from safetensors.torch import save_file

    folder, _ = small_gpt2
    params = pretrained.read_gpt2_safetensors(folder / "model.safetensors", progress=False)
    assert "wte.weight" in params and "h.1.mlp.c_proj.bias" in params
    assert not any(name.startswith("transformer.") for name in params)
    assert params["h.0.attn.c_attn.weight"].shape == (64, 3 * 64)
    # OpenAI's own files have no prefix but store the causal masks; save_pretrained may write lm_head.
    stored = {
        **params,
        "h.0.attn.bias": torch.ones(1, 1, 4, 4),
        "h.0.attn.masked_bias": torch.tensor(-1e4),
        "lm_head.weight": params["wte.weight"].clone(),
    }
    save_file(stored, str(tmp_path / "openai.safetensors"))
    again = pretrained.read_gpt2_safetensors(tmp_path / "openai.safetensors", progress=False)
    assert sorted(again) == sorted(params)
    assert all(torch.equal(again[name], params[name]) for name in params)


def test_load_gpt2_from_a_folder_matches_hugging_faces_logits(small_gpt2):
    folder, hf_model = small_gpt2
    gpt, cfg = pretrained.load_gpt2(folder, progress=False)
    assert cfg == {**pretrained.gpt2_config("gpt2-124m"), **SMALL}
    assert not gpt.training
    for prompt in PROMPTS:
        assert _max_logit_difference(gpt, hf_model, torch.tensor([prompt])) < 1e-4
    batch = torch.randint(0, 50257, (2, 40), generator=torch.Generator().manual_seed(1))
    assert _max_logit_difference(gpt, hf_model, batch) < 1e-4


def test_greedy_generation_matches_hugging_faces_generate(small_gpt2):
    folder, hf_model = small_gpt2
    gpt, _ = pretrained.load_gpt2(folder, progress=False)
    for prompt in PROMPTS:
        _greedy_like_hugging_face(gpt, hf_model, prompt, max_new_tokens=12)


def test_load_gpt2_of_something_else_says_what_a_model_is(tmp_path):
    with pytest.raises(pretrained.UnknownModelError, match="neither a GPT-2 size"):
        pretrained.load_gpt2(tmp_path / "nowhere", progress=False)
    with pytest.raises(pretrained.UnknownModelError, match="no config.json"):
        pretrained.load_gpt2(tmp_path, progress=False)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_folder(tmp_path):
    """A folder served over HTTP on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_load_gpt2_by_name_downloads_the_weights_verified_by_sha256(small_gpt2, web_folder, tmp_path, monkeypatch):
    folder, hf_model = small_gpt2
    served, base = web_folder
    shutil.copyfile(folder / "model.safetensors", served / "gpt2-124m.safetensors")
    digest = hashlib.sha256((served / "gpt2-124m.safetensors").read_bytes()).hexdigest()
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(  # no size: the file is pinned by its sha256 alone
        f'[files."gpt2-124m.safetensors"]\nurl = "{base}/gpt2-124m.safetensors"\n'
        f'sha256 = "{digest}"\ndescription = "a small GPT-2 under the 124M name"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("COURSE_DATA_MANIFEST", str(manifest))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "downloads"))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    monkeypatch.setitem(pretrained.GPT2_SIZES, "gpt2-124m", SMALL)

    gpt, _ = pretrained.load_gpt2("gpt2-124m", progress=False)
    assert data.is_available("gpt2-124m.safetensors")
    assert _max_logit_difference(gpt, hf_model, torch.tensor(PROMPTS[:1])) < 1e-4

    (served / "gpt2-124m.safetensors").write_bytes(b"not the weights")
    (tmp_path / "downloads" / "gpt2-124m.safetensors").unlink()
    with pytest.raises(data.DataFetchError, match=f"(?s)expects {digest}.*course data fetch gpt2-124m"):
        pretrained.load_gpt2("gpt2-124m", progress=False)


@pytest.mark.slow
def test_real_gpt2_124m_matches_hugging_face(tmp_path):
    if not data.is_available("gpt2-124m.safetensors"):
        pytest.skip("needs OpenAI's GPT-2 124M in the data folder (course data fetch gpt2-124m)")
    gpt, cfg = pretrained.load_gpt2("gpt2-124m", progress=False)
    params = pretrained.read_gpt2_safetensors(data.data_path("gpt2-124m.safetensors"), progress=False)
    hf_model = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    state = {f"transformer.{name}": tensor for name, tensor in params.items()}
    hf_model.load_state_dict({**state, "lm_head.weight": params["wte.weight"]}, strict=True)

    tokens = data.gpt2_encoding().encode("Every effort moves you")
    assert _max_logit_difference(gpt, hf_model, torch.tensor([tokens])) < 1e-4
    _greedy_like_hugging_face(gpt, hf_model, tokens, max_new_tokens=20)
