"""Pretrained Llamas in the course's Llama3Model agree with Hugging Face's LlamaForCausalLM on the same weights.

Small random models are written by the tests in each layout the loader reads: Hugging Face's
(save_pretrained), Meta's (consolidated.00.pth, params.json, tokenizer.model) and llama.cpp's
GGUF (queries and keys permuted, weights quantized). The permutations here are written from
the conversion scripts' own definitions, independently of the loader.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from llmcourse import data, pretrained_llama
from llmcourse.bpe_tokenizer import TokenizerFormatError, gpt2_pattern, read_tokenizer_json

transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")
tokenizers = pytest.importorskip("tokenizers")
transformers.logging.set_verbosity_error()

# 256 single-byte tokens plus 256 more: Llama 3's special tokens after a byte-only tokenizer.model,
# or the specials and merges of the small byte-level BPE trained below.
VOCAB_SIZE = 512
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
VARIED_TEXT = [
    "Every effort moves you",
    "  two spaces, then\ttabs\t\tand\nnewlines\n\n\n",
    "x 123 456 7890",
    "a  1",
    " 3.14159",
    "it's, we'll, they've; I'd",
    "héllo wörld, naïve café",
    "日本語のテキスト",
    "emoji 😀🎉 and ١٢٣ digits",
    "<|im_start|>user\nhi<|im_end|>",
    "trailing spaces   ",
    "CAPITALS and MiXeD",
    "a\x04b",
]
# Hugging Face configurations of the small models: grouped-query attention throughout.
SMALL = {
    "hidden_size": 64,
    "intermediate_size": 192,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "vocab_size": VOCAB_SIZE,
    "initializer_range": 0.2,
}
CONFIGS = {
    # Llama 3.1's RoPE scaling with a short original context, so that it matters within 64 tokens.
    "llama3-rope": {
        "tie_word_embeddings": False,
        "rope_parameters": {
            "rope_type": "llama3",
            "rope_theta": 10000.0,
            "factor": 4.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        },
    },
    "tied": {"tie_word_embeddings": True, "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}},
    # What Meta's params.json can say (use_scaled_rope: factor 8, original context 8192) and a GGUF's rope_freqs.
    "meta-scaled": {
        "tie_word_embeddings": False,
        "rope_parameters": {
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    },
}
PROMPTS = [[5, 17, 300, 42], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]


def small_llama(name: str) -> transformers.LlamaForCausalLM:
    """A random two-layer Llama of configuration CONFIGS[name], drawn wide so that greedy choices are far apart."""
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL, **CONFIGS[name])).eval()
    model.generation_config.eos_token_id = None  # generate every token asked for, as the course's greedy loop
    model.generation_config.pad_token_id = 0
    return model


def save_hugging_face(model: transformers.LlamaForCausalLM, folder: Path, older_spelling: bool = False) -> Path:
    """`save_pretrained` into folder; with older_spelling, config.json says rope_theta and rope_scaling as the Hub's
    Llama 3 files do, not transformers 5's rope_parameters."""
    model.save_pretrained(folder)
    if older_spelling:
        config = json.loads((folder / "config.json").read_text())
        rope = config.pop("rope_parameters")
        config["rope_theta"] = rope.pop("rope_theta")
        config["rope_scaling"] = rope
        (folder / "config.json").write_text(json.dumps(config))
    return folder


def interleave(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Rotate-half rows to the interleaved RoPE layout of Meta and llama.cpp: llama.cpp's convert_hf_to_gguf.py
    `permute` (reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2)), the inverse of the `permute` of
    transformers' convert_llama_weights_to_hf.py."""
    rows, columns = weight.shape
    return weight.reshape(n_heads, 2, rows // n_heads // 2, columns).swapaxes(1, 2).reshape(rows, columns)


def save_meta_layout(model: transformers.LlamaForCausalLM, folder: Path) -> Path:
    """Meta's layout of `model`: consolidated.00.pth, params.json and a tokenizer.model of the 256 single bytes."""
    config, state = model.config, model.state_dict()
    meta = {"tok_embeddings.weight": state["model.embed_tokens.weight"], "norm.weight": state["model.norm.weight"]}
    if not config.tie_word_embeddings:
        meta["output.weight"] = state["lm_head.weight"]
    for i in range(config.num_hidden_layers):
        hf, layer = f"model.layers.{i}.", f"layers.{i}."
        meta[layer + "attention.wq.weight"] = interleave(
            state[hf + "self_attn.q_proj.weight"], config.num_attention_heads
        )
        meta[layer + "attention.wk.weight"] = interleave(
            state[hf + "self_attn.k_proj.weight"], config.num_key_value_heads
        )
        for meta_name, hf_name in [
            ("attention.wv", "self_attn.v_proj"),
            ("attention.wo", "self_attn.o_proj"),
            ("feed_forward.w1", "mlp.gate_proj"),
            ("feed_forward.w3", "mlp.up_proj"),
            ("feed_forward.w2", "mlp.down_proj"),
            ("attention_norm", "input_layernorm"),
            ("ffn_norm", "post_attention_layernorm"),
        ]:
            meta[f"{layer}{meta_name}.weight"] = state[f"{hf}{hf_name}.weight"]
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(meta, folder / "consolidated.00.pth")
    rope = config.rope_parameters
    (folder / "params.json").write_text(
        json.dumps(
            {
                "dim": config.hidden_size,
                "n_layers": config.num_hidden_layers,
                "n_heads": config.num_attention_heads,
                "n_kv_heads": config.num_key_value_heads,
                "vocab_size": config.vocab_size,
                "multiple_of": 64,
                "ffn_dim_multiplier": None,
                "norm_eps": config.rms_norm_eps,
                "rope_theta": rope["rope_theta"],
                "use_scaled_rope": rope["rope_type"] == "llama3",
                "max_seq_len": config.max_position_embeddings,
            }
        )
    )
    ranks = "".join(f"{base64.b64encode(bytes([byte])).decode()} {byte}\n" for byte in range(256))
    (folder / "tokenizer.model").write_text(ranks)
    return folder


def train_byte_level_bpe() -> tokenizers.Tokenizer:
    """A byte-level BPE of VOCAB_SIZE tokens as SmolLM2's is built: specials first, then the 256 bytes, then merges;
    digits split one by one before GPT-2's pre-tokenizer."""
    from tokenizers import decoders, models, pre_tokenizers

    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([Path(__file__).read_text(encoding="utf-8"), *VARIED_TEXT], trainer)
    assert tokenizer.get_vocab_size() == VOCAB_SIZE
    return tokenizer


def vocabulary(tokenizer: tokenizers.Tokenizer) -> tuple[list[str], list[str]]:
    """The tokens by id and the merges ("Ġ t") of a trained byte-level BPE."""
    model = json.loads(tokenizer.to_str())["model"]
    tokens = [""] * len(model["vocab"])
    for token, i in model["vocab"].items():
        tokens[i] = token
    return tokens, [" ".join(merge) if isinstance(merge, list) else merge for merge in model["merges"]]


def quantized(weight: torch.Tensor, kind: gguf.GGMLQuantizationType) -> np.ndarray:
    return gguf.quants.quantize(weight.numpy(), kind)


def llama_cpp_rope_factors(rope: dict, head_dim: int) -> np.ndarray:
    """The rope_freqs.weight that llama.cpp's convert_hf_to_gguf.py writes for Llama 3.1's RoPE scaling."""
    frequencies = 1.0 / rope["rope_theta"] ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    original, low, high = rope["original_max_position_embeddings"], rope["low_freq_factor"], rope["high_freq_factor"]
    factors = []
    for wavelength in 2 * math.pi / frequencies:
        if wavelength < original / high:
            factors.append(1.0)
        elif wavelength > original / low:
            factors.append(rope["factor"])
        else:
            smooth = (original / wavelength - low) / (high - low)
            factors.append(1 / ((1 - smooth) / rope["factor"] + smooth))
    return np.array(factors, dtype=np.float32)


def save_gguf(
    model: transformers.LlamaForCausalLM,
    path: Path,
    tokenizer: tokenizers.Tokenizer,
    pre: str,
) -> transformers.LlamaForCausalLM:
    """`model` in llama.cpp's layout: queries and keys interleaved, the embedding in Q8_0, the other matrices in
    Q4_1, norms in F32, the tokenizer's vocabulary as metadata. Returns a copy of `model` holding the weights
    that the quantization leaves (the reference for the loader)."""
    config, state = model.config, model.state_dict()
    tokens, merges = vocabulary(tokenizer)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types([3 if token in SPECIAL_TOKENS else 1 for token in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(SPECIAL_TOKENS.index("<|im_start|>"))
    writer.add_eos_token_id(SPECIAL_TOKENS.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)
    head_dim = config.hidden_size // config.num_attention_heads
    if config.rope_parameters["rope_type"] == "llama3":
        writer.add_tensor("rope_freqs.weight", llama_cpp_rope_factors(config.rope_parameters, head_dim))
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    parts = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    reference = {}
    for name, tensor in state.items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        if name not in names:
            layer, part = name.removeprefix("model.layers.").removesuffix(".weight").split(".", 1)
            names[name] = f"blk.{layer}.{parts[part]}.weight"
        stored = tensor
        if name.endswith("q_proj.weight"):
            stored = interleave(tensor, config.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            stored = interleave(tensor, config.num_key_value_heads)
        if tensor.dim() == 1:
            writer.add_tensor(names[name], stored.numpy())
            reference[name] = tensor
            continue
        kind = gguf.GGMLQuantizationType.Q8_0 if "embed" in name else gguf.GGMLQuantizationType.Q4_1
        packed = quantized(stored, kind)
        writer.add_tensor(names[name], packed, raw_shape=packed.shape, raw_dtype=kind)
        # Quantization works row by row, so the rows of the permuted matrix quantize as they would unpermuted.
        reference[name] = torch.from_numpy(gguf.quants.dequantize(quantized(tensor, kind), kind))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    dequantized = copy.deepcopy(model)
    dequantized.load_state_dict(reference, strict=False)  # a tied head follows the embedding
    return dequantized


@pytest.fixture(scope="module")
def trained_bpe() -> tokenizers.Tokenizer:
    return train_byte_level_bpe()


@pytest.fixture(scope="module", params=list(CONFIGS))
def hf_folder(request, tmp_path_factory) -> tuple[Path, transformers.LlamaForCausalLM]:
    """Each small model saved by save_pretrained (the llama3-rope one with the Hub's older config spelling)."""
    model = small_llama(request.param)
    folder = tmp_path_factory.mktemp(f"hf-{request.param}")
    return save_hugging_face(model, folder, older_spelling=request.param == "llama3-rope"), model


@pytest.fixture(scope="module", params=["tied", "meta-scaled"])
def meta_folder(request, tmp_path_factory) -> tuple[Path, transformers.LlamaForCausalLM]:
    model = small_llama(request.param)
    return save_meta_layout(model, tmp_path_factory.mktemp(f"meta-{request.param}")), model


@pytest.fixture(scope="module", params=["tied", "meta-scaled"])
def gguf_file(request, tmp_path_factory, trained_bpe) -> tuple[Path, transformers.LlamaForCausalLM]:
    path = tmp_path_factory.mktemp(f"gguf-{request.param}") / "small.gguf"
    return path, save_gguf(small_llama(request.param), path, trained_bpe, "smollm")


def _max_logit_difference(ours: torch.nn.Module, hf_model: transformers.LlamaForCausalLM, ids: torch.Tensor) -> float:
    with torch.no_grad():
        return (ours(ids) - hf_model(ids).logits).abs().max().item()


def _assert_same_model(loaded: pretrained_llama.LoadedLlama, hf_model: transformers.LlamaForCausalLM) -> None:
    """Logits within 1e-4 on prompts and on a batch that fills the context; identical greedy tokens."""
    from previous_chapters import generate_text_simple_cached

    assert not loaded.model.training
    batch = torch.randint(0, VOCAB_SIZE, (2, 64), generator=torch.Generator().manual_seed(1))
    assert _max_logit_difference(loaded.model, hf_model, batch) < 1e-4
    for prompt in PROMPTS:
        ids = torch.tensor([prompt])
        assert _max_logit_difference(loaded.model, hf_model, ids) < 1e-4
        mine = generate_text_simple_cached(loaded.model, ids, max_new_tokens=20)
        theirs = hf_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=20)
        assert mine.tolist() == theirs.tolist()


def _expected_cfg(hf_model: transformers.LlamaForCausalLM) -> dict:
    rope = hf_model.config.rope_parameters
    rope_freq = None
    if rope["rope_type"] == "llama3":
        rope_freq = {
            "factor": rope["factor"],
            "low_freq_factor": rope["low_freq_factor"],
            "high_freq_factor": rope["high_freq_factor"],
            "original_context_length": rope["original_max_position_embeddings"],
        }
    return {
        "vocab_size": VOCAB_SIZE,
        "context_length": 64,
        "emb_dim": 64,
        "n_heads": 4,
        "n_layers": 2,
        "hidden_dim": 192,
        "n_kv_groups": 2,
        "rope_base": rope["rope_theta"],
        "rope_freq": rope_freq,
        "dtype": torch.float32,
    }


def _assert_loads_as(path: Path, hf_model: transformers.LlamaForCausalLM) -> None:
    loaded = pretrained_llama.load_llama(path, progress=False)
    assert loaded.cfg == _expected_cfg(hf_model)
    _assert_same_model(loaded, hf_model)


def test_hugging_face_folder_matches_llama_for_causal_lm(hf_folder):
    _assert_loads_as(*hf_folder)


def test_sharded_hugging_face_checkpoint_loads_every_shard(tmp_path):
    hf_model = small_llama("llama3-rope")
    hf_model.save_pretrained(tmp_path, max_shard_size="100KB")
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 1
    _assert_same_model(pretrained_llama.load_llama(tmp_path, progress=False), hf_model)


def test_meta_layout_matches_llama_for_causal_lm(meta_folder):
    _assert_loads_as(*meta_folder)


def test_meta_layout_brings_llama3_tokenizer_and_chat_format(meta_folder):
    loaded = pretrained_llama.load_llama(meta_folder[0], progress=False)
    begin_of_text, start_header, end_header, eot = 256, 256 + 6, 256 + 7, 256 + 9
    assert loaded.prompt_ids("hi") == [begin_of_text, ord("h"), ord("i")]
    assert loaded.tokenizer.decode([ord("h"), ord("i")]) == "hi"
    prompt = loaded.chat_prompt([{"role": "user", "content": "hi"}])
    user_turn = [start_header, *b"user", end_header, *b"\n\n", *b"hi", eot]
    assert prompt == [begin_of_text, *user_turn, start_header, *b"assistant", end_header, *b"\n\n"]
    assert loaded.end_of_turn_id() == eot and loaded.eos_id == 257


def test_gguf_matches_llama_for_causal_lm_on_the_dequantized_weights(gguf_file):
    _assert_loads_as(*gguf_file)


def test_gguf_tokenizer_encodes_as_the_hugging_face_tokenizer_it_came_from(gguf_file, trained_bpe):
    loaded = pretrained_llama.load_llama(gguf_file[0], progress=False)
    source = Path(__file__).read_text(encoding="utf-8")
    for text in [*VARIED_TEXT, *(source[i : i + 500] for i in range(0, len(source), 500))]:
        assert loaded.tokenizer.encode(text) == trained_bpe.encode(text).ids, text
        assert loaded.tokenizer.decode(trained_bpe.encode(text).ids) == trained_bpe.decode(
            trained_bpe.encode(text).ids, skip_special_tokens=False
        )
    assert loaded.bos_id is None  # add_bos_token false
    assert loaded.eos_id == SPECIAL_TOKENS.index("<|im_end|>")


@pytest.mark.parametrize("pre", ["llama-bpe", "gpt2"])
def test_gguf_tokenizer_encodes_as_transformers_reads_the_same_file(pre, trained_bpe, tmp_path):
    path = tmp_path / "small.gguf"
    save_gguf(small_llama("tied"), path, trained_bpe, pre)
    loaded = pretrained_llama.load_llama(path, progress=False)
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    for text in VARIED_TEXT:
        assert loaded.tokenizer.encode(text) == theirs.encode(text, add_special_tokens=False), text


def test_gguf_chat_prompt_renders_the_files_chat_template(gguf_file, trained_bpe):
    loaded = pretrained_llama.load_llama(gguf_file[0], progress=False)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]
    text = (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert loaded.chat_prompt(messages) == trained_bpe.encode(text).ids
    assert loaded.end_of_turn_id() == SPECIAL_TOKENS.index("<|im_end|>")


def test_hugging_face_folder_brings_its_tokenizer_and_chat_template(hf_folder, trained_bpe, tmp_path):
    folder = tmp_path / "with-tokenizer"
    save_hugging_face(hf_folder[1], folder)
    trained_bpe.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHATML, "eos_token": "<|im_end|>"}))
    loaded = pretrained_llama.load_llama(folder, progress=False)
    for text in VARIED_TEXT:
        assert loaded.prompt_ids(text) == trained_bpe.encode(text).ids, text
    assert (
        loaded.chat_prompt([{"role": "user", "content": "hi"}])
        == trained_bpe.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n").ids
    )
    assert loaded.end_of_turn_id() == SPECIAL_TOKENS.index("<|im_end|>")


def test_tokenizer_json_post_processor_gives_the_begin_of_text_id(trained_bpe, tmp_path):
    from tokenizers import processors

    trained_bpe = tokenizers.Tokenizer.from_str(trained_bpe.to_str())
    trained_bpe.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", special_tokens=[("<|im_start|>", SPECIAL_TOKENS.index("<|im_start|>"))]
    )
    trained_bpe.save(str(tmp_path / "tokenizer.json"))
    tokenizer, bos_id = read_tokenizer_json(tmp_path / "tokenizer.json")
    assert bos_id == SPECIAL_TOKENS.index("<|im_start|>")
    assert [bos_id, *tokenizer.encode("Every effort")] == trained_bpe.encode("Every effort").ids


def test_tokenizer_json_with_an_unknown_pre_tokenizer_is_refused(trained_bpe, tmp_path):
    from tokenizers import pre_tokenizers

    trained_bpe = tokenizers.Tokenizer.from_str(trained_bpe.to_str())
    trained_bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    trained_bpe.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerFormatError, match="Whitespace"):
        read_tokenizer_json(tmp_path / "tokenizer.json")


def test_tokenizer_json_of_gpt2s_kind_splits_as_gpt2(trained_bpe, tmp_path):
    from tokenizers import pre_tokenizers

    trained_bpe = tokenizers.Tokenizer.from_str(trained_bpe.to_str())
    trained_bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trained_bpe.save(str(tmp_path / "tokenizer.json"))
    tokenizer, _ = read_tokenizer_json(tmp_path / "tokenizer.json")
    assert tokenizer.encoding._pat_str == gpt2_pattern()
    for text in VARIED_TEXT:
        assert tokenizer.encode(text) == trained_bpe.encode(text).ids, text


def test_load_llama_by_name_unpacks_the_gguf_of_its_wheel_once(gguf_file, tmp_path, monkeypatch):
    path, hf_model = gguf_file
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with zipfile.ZipFile(mirror / "small-0.1-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as wheel:
        wheel.write(path, "small/small.gguf")
    digest = hashlib.sha256((mirror / "small-0.1-py3-none-any.whl").read_bytes()).hexdigest()
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(
        f'[files."small-0.1-py3-none-any.whl"]\nurl = "https://example.invalid/small.whl"\n'
        f'sha256 = "{digest}"\ndescription = "a small Llama in a wheel"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("COURSE_DATA_MANIFEST", str(manifest))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "downloads"))
    monkeypatch.setenv("COURSE_DATA_MIRROR", mirror.as_uri())
    monkeypatch.setitem(
        pretrained_llama.LLAMA_MODELS,
        "smollm2-135m",
        pretrained_llama.GGUFInWheel("small-0.1-py3-none-any.whl", "small/small.gguf"),
    )

    loaded = pretrained_llama.load_llama("smollm2-135m", progress=False)
    assert _max_logit_difference(loaded.model, hf_model, torch.tensor(PROMPTS[:1])) < 1e-4
    unpacked = tmp_path / "downloads" / "unpacked" / "small-0.1-py3-none-any" / "small.gguf"
    assert unpacked.read_bytes() == path.read_bytes()
    written = unpacked.stat().st_mtime_ns
    pretrained_llama.load_llama("smollm2-135m", progress=False)
    assert unpacked.stat().st_mtime_ns == written


def test_is_llama_tells_llama_files_from_gpt2_folders(hf_folder, meta_folder, gguf_file, tmp_path):
    gpt2 = tmp_path / "gpt2"
    gpt2.mkdir()
    (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    assert pretrained_llama.is_llama("smollm2-135m") and pretrained_llama.is_llama(gguf_file[0])
    assert pretrained_llama.is_llama(hf_folder[0]) and pretrained_llama.is_llama(meta_folder[0])
    assert not pretrained_llama.is_llama(gpt2) and not pretrained_llama.is_llama("gpt2-124m")


def test_load_llama_of_something_else_says_what_a_llama_is(tmp_path):
    with pytest.raises(pretrained_llama.UnknownLlamaError, match="neither a Llama the course knows"):
        pretrained_llama.load_llama(tmp_path / "nowhere", progress=False)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(pretrained_llama.UnknownLlamaError, match="model_type 'gpt2'"):
        pretrained_llama.load_llama(tmp_path, progress=False)


def test_load_llama_refuses_an_rms_norm_epsilon_the_course_does_not_have(tmp_path):
    model = small_llama("tied")
    model.config.rms_norm_eps = 1e-6
    model.save_pretrained(tmp_path)
    with pytest.raises(pretrained_llama.UnknownLlamaError, match="epsilon 1e-06"):
        pretrained_llama.load_llama(tmp_path, progress=False)


def _smollm2_gguf() -> Path:
    if not data.is_available("smollm2-135m"):
        pytest.skip("needs SmolLM2-135M-Instruct in the data folder (course data fetch smollm2-135m)")
    return pretrained_llama.unpacked_gguf(pretrained_llama.LLAMA_MODELS["smollm2-135m"])


@pytest.mark.slow
def test_real_smollm2_matches_transformers_on_the_same_gguf():
    path = _smollm2_gguf()
    loaded = pretrained_llama.load_llama("smollm2-135m", progress=False)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name).eval()
    prompts = [
        "The capital of France is",
        "Every effort moves you",
        "def fibonacci(n):",
        "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n",
        "I had always thought Jack Gisburn rather a cheap genius--though a good fellow enough--so it was no "
        "great surprise to me to hear that, in the height of his glory, he had dropped his painting, married "
        "a rich widow, and established himself in a villa on the Riviera.",
    ]
    differences, agreement, positions = [], 0, 0
    for prompt in prompts:
        ids = torch.tensor([loaded.prompt_ids(prompt)])
        with torch.no_grad():
            mine, reference = loaded.model(ids), theirs(ids).logits
        differences.append((mine - reference).abs().max().item())
        agreement += (mine.argmax(-1) == reference.argmax(-1)).sum().item()
        positions += ids.shape[1]
    print(
        f"SmolLM2-135M vs transformers: max |logit difference| {max(differences):.2e} "
        f"(per prompt {', '.join(f'{d:.1e}' for d in differences)}); argmax agrees at {agreement}/{positions}"
    )
    assert max(differences) < 1e-3
    assert agreement == positions


@pytest.mark.slow
def test_real_smollm2_knows_the_capital_of_france():
    from previous_chapters import generate_text_simple_cached

    _smollm2_gguf()
    loaded = pretrained_llama.load_llama("smollm2-135m", progress=False)
    prompt = loaded.prompt_ids("The capital of France is")
    written = generate_text_simple_cached(loaded.model, torch.tensor([prompt]), 10, eos_id=loaded.eos_id)
    assert "Paris" in loaded.tokenizer.decode(written[0, len(prompt) :].tolist())


@pytest.mark.slow
def test_real_smollm2_tokenizer_encodes_as_its_hugging_face_tokenizer():
    """SmolLM2's tokenizer.json runs Digits(individual_digits) and then GPT-2's ByteLevel split; transformers'
    GGUF reader does not know the "smollm" pre-tokenizer, so its tokenizer gets that split here."""
    from tokenizers import pre_tokenizers

    path = _smollm2_gguf()
    loaded = pretrained_llama.load_llama("smollm2-135m", progress=False)
    theirs = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    theirs.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    texts = list(VARIED_TEXT)
    if data.is_available("tinyshakespeare.txt"):
        plays = data.data_path("tinyshakespeare.txt").read_text(encoding="utf-8")
        texts += [plays[i : i + 2000] for i in range(0, len(plays), 2000)]
    for text in texts:
        assert loaded.tokenizer.encode(text) == theirs.encode(text, add_special_tokens=False), text[:80]
