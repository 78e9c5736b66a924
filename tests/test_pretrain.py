"""The pretraining script and its corpus preparation, run for real on tiny data: `torchrun` with two
gloo processes against one process, a run stopped and resumed against one that was not, the
corpora written through the data layer from a local web server, and the command lines' errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder import paths
from autograder.checks.ranks import free_port
from autograder.checks.test_ch15 import MAGIC, VERSION, write_llmc  # llm.c's format, not the chapter's code
from llmcourse import data
from llmcourse import pretrain_data as prepare
from llmcourse.pretrain import train
from tests.test_data import FakeServer, _handler

ROOT = paths.course_root()
CHARS = [chr(c) for c in range(ord("a"), ord("a") + 24)] + list(" .,;:!?\n")  # a 32-character vocabulary
TINY = {
    "tokenizer": "char",
    "vocab_size": len(CHARS),
    "context_length": 8,
    "emb_dim": 16,
    "n_heads": 2,
    "n_layers": 2,
    "drop_rate": 0.0,
    "qkv_bias": False,  # the key bias gets a gradient of rounding noise only, which Adam magnifies
    "batch_size": 2,
    "total_batch_size": 64,  # 2 x 8 tokens x 4 micro-batches in one process, x 2 on each of 2 ranks
    "max_steps": 3,
    "warmup_steps": 1,
    "max_lr": 1e-2,
    "min_lr": 1e-3,
    "dtype": "float32",
    "peak_flops": 1e9,
    "log_interval": 1,
    "eval_interval": 2,
    "eval_steps": 2,
    "sample_tokens": 4,
}

pytestmark = pytest.mark.skipif(
    not paths.solution_notebook("ch15").exists(), reason="the script runs chapter 15's reference code"
)


def read_llmc_file(path: Path) -> np.ndarray:
    header = np.frombuffer(path.read_bytes()[:1024], dtype=np.int32)
    assert (header[0], header[1]) == (MAGIC, VERSION), path
    tokens = np.frombuffer(path.read_bytes()[1024:], dtype=np.uint16)
    assert len(tokens) == header[2], path
    return tokens


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A char-level corpus of random tokens: a validation shard and two training shards."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_llmc(folder / "tiny_val_000000.bin", rng.integers(0, len(CHARS), 400))
    write_llmc(folder / "tiny_train_000001.bin", rng.integers(0, len(CHARS), 700))
    write_llmc(folder / "tiny_train_000002.bin", rng.integers(0, len(CHARS), 900))
    (folder / "meta.json").write_text(json.dumps({"vocab_size": len(CHARS), "chars": CHARS}), encoding="utf-8")
    return folder


def write_config(path: Path, corpus: Path, **settings) -> Path:
    values = {**TINY, "data_dir": str(corpus), "out_dir": str(path.parent / "run"), **settings}
    path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()), encoding="utf-8")
    return path


def rows(out_dir: Path, key: str) -> dict[int, float]:
    """step -> the value of `key` in the run's metrics.jsonl, for the rows that have one."""
    lines = (out_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["step"]: row[key] for row in map(json.loads, lines) if key in row}


def losses(out_dir: Path) -> dict[int, float]:
    return rows(out_dir, "loss")


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]


# HellaSwag's format (ctx, 4 endings, label), short enough for a context of 32 tokens.
HELLASWAG = [
    {"ctx": "A man is sitting on a roof. he", "endings": ["is ripping tiles off.", "sings.", "is a cube.", "runs."]},
    {"ctx": "She pours the tea and", "endings": ["drinks it.", "flies away.", "reads a roof.", "is tiles."]},
    {"ctx": "The dog runs to the ball and", "endings": ["eats a car.", "catches it.", "sleeps on tea.", "sits."]},
    {"ctx": "He opens the door,", "endings": ["walks in.", "is blue.", "drinks the door.", "a cat."]},
    {"ctx": "They paint the wall", "endings": ["green.", "with a fork.", "to the sea.", "slowly and well."]},
]


@pytest.mark.parametrize("optimizer_state", ["whole", "zero1"])
def test_two_torchrun_processes_accumulating_k_match_one_process_accumulating_2k(
    tmp_path, corpus, capsys, needs_gpt2_files, optimizer_state
):
    """DDP with each rank holding all of AdamW's state, or its share of it (ZeRO stage 1)."""
    torchrun = shutil.which("torchrun") or pytest.skip("torchrun is not on PATH")
    hellaswag = tmp_path / "hellaswag.jsonl"
    hellaswag.write_text("".join(json.dumps({**ex, "label": i % 4}) + "\n" for i, ex in enumerate(HELLASWAG)))
    gpt2 = {"tokenizer": "gpt2", "vocab_size": 50304, "context_length": 32, "total_batch_size": 256}
    config = write_config(tmp_path / "tiny.toml", corpus, **gpt2, hellaswag_interval=2, hellaswag_file=str(hellaswag))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "COURSE_ROOT": str(ROOT)}
    command = [torchrun, "--nproc_per_node=2", f"--master_port={free_port()}", "-m", "llmcourse.pretrain"]
    done = subprocess.run(
        [
            *command,
            "--config",
            str(config),
            "--out_dir",
            str(tmp_path / "ddp"),
            "--zero1",
            str(optimizer_state == "zero1"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 x 32 x 2 process(es) x 2 micro-batches" in done.stdout, done.stdout
    assert done.stdout.count("sample:") == 1  # rank 0 alone logs and samples
    assert ("(ZeRO stage 1)" in done.stdout) == (optimizer_state == "zero1")

    assert train.main(["--config", str(config), "--out_dir", str(tmp_path / "one")]) == 0
    assert "2 x 32 x 1 process(es) x 4 micro-batches" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "ddp").glob("*.pt")) == ["ckpt_000003.pt"]
    ddp, one = weights(tmp_path / "ddp" / "ckpt_000003.pt"), weights(tmp_path / "one" / "ckpt_000003.pt")
    assert list(ddp) == list(one)  # no `module.` prefix from DDP
    for name in one:
        torch.testing.assert_close(ddp[name], one[name], rtol=1e-5, atol=1e-6, msg=name)
    assert losses(tmp_path / "ddp") == pytest.approx(losses(tmp_path / "one"), rel=1e-5)
    # HellaSwag's examples are split across the ranks and their counts summed.
    scored = [rows(tmp_path / run, "hellaswag_examples") for run in ("ddp", "one")]
    assert scored[0] == scored[1] == {0: len(HELLASWAG), 2: len(HELLASWAG), 3: len(HELLASWAG)}


def test_a_run_stopped_and_resumed_matches_one_that_was_not(tmp_path, corpus):
    config = write_config(tmp_path / "tiny.toml", corpus, drop_rate=0.2, lr_decay_steps=6, sample_tokens=0)
    assert train.main(["--config", str(config), "--out_dir", str(tmp_path / "whole"), "--max_steps", "6"]) == 0
    stopped = ["--config", str(config), "--out_dir", str(tmp_path / "stopped")]
    assert train.main([*stopped, "--max_steps", "3"]) == 0
    assert train.main([*stopped, "--max_steps", "6", "--resume", "auto"]) == 0

    whole, resumed = losses(tmp_path / "whole"), losses(tmp_path / "stopped")
    assert sorted(resumed) == list(range(6))
    assert resumed == whole  # dropout draws the same masks only if every RNG state came back
    final = weights(tmp_path / "whole" / "ckpt_000006.pt")
    for name, tensor in weights(tmp_path / "stopped" / "ckpt_000006.pt").items():
        assert torch.equal(tensor, final[name]), name


def test_resuming_from_a_missing_checkpoint_is_refused(tmp_path, corpus, capsys):
    config = write_config(tmp_path / "tiny.toml", corpus)
    assert train.main(["--config", str(config), "--resume", str(tmp_path / "nowhere.pt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


# A few sections of a play: documents are split at blank lines.
PLAY = (
    b"First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    b"All:\nSpeak, speak.\n\n"
    b"First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
    b"All:\nResolved. resolved.\n"
)


@pytest.fixture
def served_play(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The play as tinyshakespeare.txt, and GPT-2's tokenizer files, from a web server on 127.0.0.1,
    through a manifest of their own into an empty data folder."""
    files = {"tinyshakespeare.txt": PLAY}
    for name in data.GPT2_TIKTOKEN_BLOBS:
        if not data.is_available(name):
            pytest.skip("needs the GPT-2 tokenizer files (course data fetch gpt2-bpe, or ../shared/data)")
        files[name] = (data.data_dir() / name).read_bytes()
    fake = FakeServer(files=files)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    fake.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(
        "".join(
            f'[files."{name}"]\nurl = "{fake.base}/{name}"\nsize = {len(content)}\n'
            f'sha256 = "{hashlib.sha256(content).hexdigest()}"\ndescription = "{name}"\n\n'
            for name, content in files.items()
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("COURSE_DATA_MANIFEST", str(manifest))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "downloads"))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    yield fake
    httpd.shutdown()
    httpd.server_close()


def test_tinyshakespeare_is_downloaded_verified_and_written_as_gpt2_shards(served_play, tmp_path, capsys):
    import tiktoken

    out = tmp_path / "shards"
    assert prepare.main(["--corpus", "tinyshakespeare", "--out", str(out), "--shard_size", "20"]) == 0
    assert ("/tinyshakespeare.txt", None) in served_play.requests
    assert (tmp_path / "downloads" / "tinyshakespeare.txt").read_bytes() == PLAY
    encoding = tiktoken.get_encoding("gpt2")
    sections = PLAY.decode().split("\n\n")
    expected = [
        token
        for i, section in enumerate(sections)
        for token in [
            encoding.eot_token,
            *encoding.encode_ordinary(section + ("\n\n" if i < len(sections) - 1 else "")),
        ]
    ]
    names = sorted(p.name for p in out.iterdir())
    assert names[0] == "tinyshakespeare_train_000001.bin" and names[-1] == "tinyshakespeare_val_000000.bin"
    shards = [out / "tinyshakespeare_val_000000.bin"] + [out / name for name in names[:-1]]
    assert [len(read_llmc_file(shard)) for shard in shards[:-1]] == [20] * (len(shards) - 1)
    assert np.concatenate([read_llmc_file(shard) for shard in shards]).tolist() == expected
    assert f"{len(expected):,} tokens (20 for validation)" in capsys.readouterr().out


def test_shakespeare_char_splits_90_10_with_the_texts_own_characters(served_play, tmp_path):
    out = tmp_path / "char"
    assert prepare.main(["--corpus", "shakespeare_char", "--out", str(out)]) == 0
    text = PLAY.decode()
    chars = json.loads((out / "meta.json").read_text(encoding="utf-8"))["chars"]
    assert chars == sorted(set(text))
    split = int(len(text) * 0.9)
    decode = lambda path: "".join(chars[t] for t in read_llmc_file(path))  # noqa: E731
    assert decode(out / "shakespeare_char_train_000001.bin") == text[:split]
    assert decode(out / "shakespeare_char_val_000000.bin") == text[split:]


def test_a_corpus_with_the_wrong_checksum_is_refused(served_play, tmp_path, capsys):
    served_play.files["tinyshakespeare.txt"] = PLAY.upper()
    assert prepare.main(["--corpus", "shakespeare_char", "--out", str(tmp_path / "char")]) == 1
    assert "sha256" in capsys.readouterr().err
    assert not (tmp_path / "char").exists()


def test_fineweb_edu_without_the_datasets_library_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "datasets", None)
    assert prepare.main(["--corpus", "fineweb_edu", "--out", str(tmp_path / "fw")]) == 1
    assert "pip install datasets" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["llmcourse.pretrain", "llmcourse.pretrain_data"])
def test_help_describes_the_command(module):
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    expected = ["--config", "--resume", "--max_steps", "torchrun", "--rdzv_endpoint"]
    if module.endswith("_data"):
        expected = ["--corpus", "tinyshakespeare", "shakespeare_char", "fineweb_edu", "--shard_size"]
    assert all(word in done.stdout for word in expected), done.stdout


@pytest.mark.parametrize(
    ("settings", "table", "message"),
    [
        ({"max_step": 3}, "", "unknown config key 'max_step'; did you mean 'max_steps'?"),
        ({"max_steps": "3"}, "", "'max_steps' should be int; found '3'"),
        ({"dtype": "float16"}, "", "'dtype' should be one of auto, bfloat16, float32; found 'float16'"),
        ({}, "[model]\nemb_dim = 16\n", "unknown config key 'model'"),
    ],
)
def test_a_bad_config_file_is_refused_with_the_key_named(tmp_path, corpus, capsys, settings, table, message):
    config = write_config(tmp_path / "bad.toml", corpus, **settings)
    config.write_text(config.read_text(encoding="utf-8") + table, encoding="utf-8")
    assert train.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and message in err, err


def test_a_batch_that_does_not_divide_into_micro_batches_is_refused(tmp_path, corpus, capsys):
    config = write_config(tmp_path / "tiny.toml", corpus, total_batch_size=60)
    assert train.main(["--config", str(config)]) == 2
    assert "total_batch_size (60) should be a multiple of" in capsys.readouterr().err


def test_an_unknown_override_is_refused(tmp_path, corpus, capsys):
    config = write_config(tmp_path / "tiny.toml", corpus)
    with pytest.raises(SystemExit) as exit_code:
        train.main(["--config", str(config), "--max_step", "3"])
    assert exit_code.value.code == 2
    assert "unrecognized arguments: --max_step" in capsys.readouterr().err


def test_the_shipped_configs_are_valid_and_the_baby_gpt_is_nanogpts():
    from llmcourse.pretrain.config import make_config, read_config_file

    configs = {path.stem: path for path in (ROOT / "configs" / "pretrain").glob("*.toml")}
    assert set(configs) == {"tiny_cpu", "shakespeare_char", "gpt2_124m_fineweb_edu"}
    loaded = {name: make_config(read_config_file(path), str(path)) for name, path in configs.items()}
    baby = loaded["shakespeare_char"]
    assert (baby.n_layers, baby.n_heads, baby.emb_dim, baby.context_length, baby.batch_size) == (6, 6, 384, 256, 64)
    assert (baby.drop_rate, baby.max_lr, baby.max_steps, baby.warmup_steps, baby.min_lr, baby.beta2) == (
        0.2,
        1e-3,
        5000,
        100,
        1e-4,
        0.99,
    )
    gpt2 = loaded["gpt2_124m_fineweb_edu"]
    assert gpt2.total_batch_size == 524288 == gpt2.batch_size * gpt2.context_length * 8
    assert (gpt2.max_lr, gpt2.min_lr, gpt2.warmup_steps, gpt2.max_steps, gpt2.hellaswag_interval) == (
        6e-4,
        6e-5,
        715,
        19073,
        250,
    )


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H200", 989e12),
        ("NVIDIA A100-SXM4-80GB", 312e12),
        ("NVIDIA A10G", 125e12),
        ("NVIDIA L40", 181e12),
        ("Tesla T4", None),
    ],
)
def test_mfu_is_measured_against_the_cards_dense_bf16_peak(name, peak):
    from llmcourse.pretrain.throughput import gpu_peak_flops

    assert gpu_peak_flops(name) == peak
