"""The chapter 15 reference agrees with independent implementations: its token files with llm.c's
own `write_datafile` (dev/data/data_common.py, written out here); its documents with tiktoken; its
parameter count with Hugging Face's GPT-2 built on the meta device; its accumulated step with one
`torch.optim` step on the whole batch; its loader with a plain slice of the concatenated stream; and
its pieces together: a run of the chapter's own model, loader, train_step and checkpoints resumes
exactly, and DDP in two gloo processes matches one process accumulating twice as much.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder import paths


@pytest.fixture(scope="module")
def ch15():
    if not paths.solution_notebook("ch15").exists():
        pytest.skip("needs solutions/ch15")
    import previous_chapters

    return previous_chapters.chapter("ch15").namespace


def llmc_write_datafile(filename, toks):
    """llm.c's write_datafile for GPT-2 tokens (version 1), as in dev/data/data_common.py."""
    assert len(toks) < 2**31, "token count too large"
    header = np.zeros(256, dtype=np.int32)
    header[0] = 20240520
    header[1] = 1
    header[2] = len(toks)
    toks_np = np.array(toks, dtype=np.uint16)
    with open(filename, "wb") as f:
        f.write(header.tobytes())
        f.write(toks_np.tobytes())


def test_token_files_are_byte_identical_to_llmc(ch15, tmp_path):
    tokens = torch.randint(0, 2**16, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    ch15["write_datafile"](tmp_path / "ours.bin", tokens)
    llmc_write_datafile(tmp_path / "llmc.bin", tokens)
    assert (tmp_path / "ours.bin").read_bytes() == (tmp_path / "llmc.bin").read_bytes()
    assert ch15["read_datafile"](tmp_path / "llmc.bin").tolist() == tokens


def test_documents_are_eot_then_tiktoken_ids(ch15):
    tiktoken = pytest.importorskip("tiktoken")
    from llmcourse.data import gpt2_encoding

    gpt2_encoding()
    encoding = tiktoken.get_encoding("gpt2")
    text = "To be, or not to be: that is the question. <|endoftext|>"
    assert ch15["tokenize_document"](text).tolist() == [50256, *encoding.encode_ordinary(text)]


def test_parameter_count_matches_hugging_face_gpt2(ch15):
    transformers = pytest.importorskip("transformers")
    for name, size in (("124M", {}), ("1558M", {"n_embd": 1600, "n_layer": 48, "n_head": 25})):
        with torch.device("meta"):
            model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**size))
        hf_total = sum(p.numel() for p in model.parameters())  # the head is tied: counted once
        cfg = {
            "vocab_size": 50257,
            "context_length": 1024,
            "emb_dim": size.get("n_embd", 768),
            "n_heads": size.get("n_head", 12),
            "n_layers": size.get("n_layer", 12),
            "drop_rate": 0.0,
            "qkv_bias": True,
        }
        assert ch15["num_params_for_flops"](cfg) == hf_total - 1024 * cfg["emb_dim"], name
    assert ch15["num_params_for_flops"](dict(cfg, emb_dim=768, n_heads=12, n_layers=12)) == 123_653_376


def test_flops_per_token_of_gpt2_124m_by_hand(ch15):
    cfg = {
        "vocab_size": 50257,
        "context_length": 1024,
        "emb_dim": 768,
        "n_heads": 12,
        "n_layers": 12,
        "drop_rate": 0.0,
        "qkv_bias": True,
    }
    n = ch15["num_params_for_flops"](cfg)
    assert ch15["flops_per_token"](cfg, n) == 6 * 123_653_376 + 12 * 12 * 768 * 1024
    assert math.isclose(ch15["estimate_mfu"](1e9, 1e5, 312e12), 1e14 / 312e12)


def test_loader_batches_are_slices_of_the_concatenated_stream(ch15, tmp_path):
    lengths, B, T, world = [70, 3, 41, 90], 2, 5, 3
    stream = torch.randint(0, 50257, (sum(lengths),), generator=torch.Generator().manual_seed(1))
    files, start = [], 0
    for i, length in enumerate(lengths):
        files.append(tmp_path / f"s{i}.bin")
        ch15["write_datafile"](files[-1], stream[start : start + length].tolist())
        start += length
    loaders = [ch15["DistributedDataLoader"](files, B, T, rank, world) for rank in range(world)]
    position = 0
    for _ in range(12):
        if position + B * T * world + 1 > len(stream):
            position = 0
        for rank, loader in enumerate(loaders):
            x, y = loader.next_batch()
            window = stream[position + rank * B * T : position + (rank + 1) * B * T + 1]
            assert torch.equal(x, window[:-1].view(B, T)) and torch.equal(y, window[1:].view(B, T))
        position += B * T * world


TINY = {
    "vocab_size": 64,
    "context_length": 8,
    "emb_dim": 16,
    "n_heads": 2,
    "n_layers": 2,
    "drop_rate": 0.0,
    "qkv_bias": True,
}


def test_accumulation_equals_one_torch_optim_step_on_the_whole_batch(ch15):
    torch.manual_seed(0)
    accumulated, whole = ch15["GPTModel"](TINY), ch15["GPTModel"](TINY)
    whole.load_state_dict(accumulated.state_dict())
    x = torch.randint(0, 64, (8, 8))
    y = torch.randint(0, 64, (8, 8))
    ch15["train_step"](
        accumulated, torch.optim.SGD(accumulated.parameters(), lr=0.3), list(zip(x.split(2), y.split(2)))
    )
    optimizer = torch.optim.SGD(whole.parameters(), lr=0.3)
    F.cross_entropy(whole(x).flatten(0, 1), y.flatten()).backward()
    optimizer.step()
    for a, b in zip(accumulated.parameters(), whole.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_optimizer_groups_split_by_dimension(ch15):
    model = ch15["GPTModel"](TINY)
    optimizer = ch15["configure_optimizers"](model, 0.1, 1e-3)
    decay, no_decay = optimizer.param_groups
    assert {id(p) for p in decay["params"]} == {id(p) for p in model.parameters() if p.dim() >= 2}
    assert {id(p) for p in no_decay["params"]} == {id(p) for p in model.parameters() if p.dim() < 2}
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)


def test_gpt2_init_keeps_the_residual_stream_variance_flat(ch15):
    """With the 1/sqrt(2 n_layers) scaling the residual stream's spread at the top grows far less than without."""
    cfg = dict(TINY, vocab_size=256, emb_dim=128, n_heads=4, n_layers=12, context_length=32)
    torch.manual_seed(0)
    model = ch15["GPTModel"](cfg).eval()
    ch15["init_gpt2_weights"](model)
    x = torch.randint(0, 256, (4, 32))
    with torch.no_grad():
        h = model.tok_emb(x) + model.pos_emb(torch.arange(32))
        first = h.std().item()
        for block in model.trf_blocks:
            h = block(h)
    assert h.std().item() < 2.0 * first
    assert model.out_head.weight is model.tok_emb.weight


def test_chapter_pieces_resume_a_run_exactly(ch15, tmp_path):
    """The chapter's model (dropout on), loader, train_step, schedule and checkpoints: stop at step 3, resume."""
    files = []
    for i in range(2):
        files.append(tmp_path / f"train_{i}.bin")
        ch15["write_datafile"](
            files[-1], torch.randint(0, 64, (150,), generator=torch.Generator().manual_seed(i)).tolist()
        )
    cfg = dict(TINY, drop_rate=0.2)

    def run(start, stop, checkpoint=None, resume=None):
        torch.manual_seed(start)
        model = ch15["GPTModel"](cfg)
        ch15["init_gpt2_weights"](model)
        optimizer = ch15["configure_optimizers"](model, 0.1, 1e-2)
        loader = ch15["DistributedDataLoader"](files, 2, 8)
        if resume:
            start = ch15["load_checkpoint"](resume, model, optimizer, loader)
        losses = []
        for step in range(start, stop):
            for group in optimizer.param_groups:
                group["lr"] = ch15["get_lr"](step, 1e-2, 1e-3, 2, stop)
            losses.append(ch15["train_step"](model, optimizer, [loader.next_batch() for _ in range(2)], grad_clip=1.0))
            if checkpoint and step + 1 == 3:
                ch15["save_checkpoint"](checkpoint, model, optimizer, step + 1, loader)
        return losses, model

    full, model = run(0, 7, checkpoint=tmp_path / "ckpt.pt")
    resumed, resumed_model = run(0, 7, resume=tmp_path / "ckpt.pt")
    assert resumed == full[3:]
    for a, b in zip(model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_most_likely_ending_is_the_highest_mean_log_probability(ch15):
    gen = torch.Generator().manual_seed(3)
    tokens = torch.randint(1, 50, (4, 9), generator=gen)
    mask = torch.zeros(4, 9, dtype=torch.long)
    for row, end in enumerate((5, 9, 7, 6)):
        mask[row, 3:end] = 1
        tokens[row, end:] = 0
    logits = torch.randn(4, 9, 50, generator=gen) * 2
    log_probs = torch.log_softmax(logits, dim=-1)
    scores = []
    for row in range(4):
        picked = [log_probs[row, t - 1, tokens[row, t]].item() for t in range(1, 9) if mask[row, t]]
        scores.append(sum(picked) / len(picked))
    assert ch15["most_likely_ending"](tokens, mask, logits) == max(range(4), key=scores.__getitem__)


def test_ddp_in_two_gloo_processes_matches_one_process_accumulating_twice(ch15):
    from autograder.checks.ranks import RANKS_DEADLINE_S, expect_ranks_finished, run_processes

    def batches(rank, step):
        gen = torch.Generator().manual_seed(100 * step + rank)
        return [
            (torch.randint(0, 64, (2, 8), generator=gen), torch.randint(0, 64, (2, 8), generator=gen)) for _ in range(2)
        ]

    def work(rank, progress):
        import os

        os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"})
        _, _, world, device = ch15["setup_distributed"]()
        torch.manual_seed(0)
        model = ch15["GPTModel"](TINY)
        wrapped = ch15["wrap_model"](model, device, world)
        optimizer = torch.optim.SGD(wrapped.parameters(), lr=0.3)
        for step in range(2):
            ch15["train_step"](wrapped, optimizer, batches(rank, step))
        del wrapped, optimizer
        ch15["cleanup_distributed"]()
        return [p.detach().clone() for p in model.parameters()]

    results = expect_ranks_finished(run_processes(work, 2, RANKS_DEADLINE_S), 2, "ddp")
    torch.manual_seed(0)
    model = ch15["GPTModel"](TINY)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    for step in range(2):
        ch15["train_step"](model, optimizer, batches(0, step) + batches(1, step))
    for rank_params in results:
        for a, b in zip(rank_params, model.parameters(), strict=True):
            torch.testing.assert_close(a, b.detach(), atol=1e-5, rtol=1e-5)
