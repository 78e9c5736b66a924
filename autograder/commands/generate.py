"""`course generate`: continue a prompt with a pretrained GPT-2 or Llama, through the course's own code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmcourse import data, pretrained, pretrained_llama

from . import add_command

EPILOG = """\
examples:
  course generate --model gpt2-124m "Every effort moves you"
                                        the book's settings: 25 tokens, temperature 1.5, top-k 50, seed 123
  course generate --model gpt2-355m --temperature 0 "The meaning of life is"
                                        greedy decoding: always the same text
  course generate --model path/to/folder --max-new-tokens 100 --seed 7 "Once upon a time"
                                        a GPT-2 or a Llama saved with Hugging Face's save_pretrained
  course generate --model smollm2-135m "The capital of France is"
                                        SmolLM2-135M-Instruct, a small pretrained Llama: greedy by default
  course generate --model smollm2-135m --chat "What is the capital of France?"
                                        one chat turn in the model's chat template: prints the reply
  course generate --model path/to/model.gguf --temperature 0.7 "Once upon a time"
                                        a Llama in llama.cpp's GGUF format (or a folder in Meta's layout)

GPT-2 is chapter 4's GPTModel loaded by chapter 5's load_weights_into_gpt and sampled by
chapter 5's generate. A Llama is chapter 8's Llama3Model loaded by load_weights_into_llama;
with temperature 0 (its default) it decodes greedily with chapter 8's KV cache
(generate_text_simple_cached), else it samples with chapter 5's generate; it stops at its
end-of-text token (end-of-turn token with --chat). This is the reference code when the
course has solutions/, else your own notebooks. `course data fetch NAME` downloads a
model's files once (COURSE_DATA_MIRROR serves them in a lab without internet).

exit status: 0 the text was written, 1 the course's code failed, 2 an unknown model or missing weights
"""
GPT2_TEMPERATURE = 1.5  # the book's
DEFAULT_NEW_TOKENS = 25
CHAT_NEW_TOKENS = 200  # room for a reply: it usually ends earlier, at the end-of-turn token


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `generate` to the `course` command line."""
    parser = add_command(
        subparsers,
        "generate",
        "continue a prompt with a pretrained GPT-2 or Llama through the course's own code",
        "Load a pretrained GPT-2 into the course's GPTModel, or a Llama into its Llama3Model, and print "
        "the prompt followed by the text the model writes (with --chat: the model's reply).",
        EPILOG,
    )
    parser.add_argument("prompt", metavar="PROMPT", help="the text to continue (with --chat: the user's message)")
    parser.add_argument(
        "--model",
        required=True,
        metavar="NAME_OR_PATH",
        help=f"a GPT-2 size ({', '.join(pretrained.GPT2_SIZES)}), "
        f"a Llama ({', '.join(pretrained_llama.LLAMA_MODELS)}), "
        "a folder (Hugging Face's config.json and model.safetensors, or Meta's params.json and "
        "consolidated.00.pth) or a .gguf file",
    )
    parser.add_argument(
        "--chat",
        action="store_true",
        help="send PROMPT as a user message in the model's chat template and print the reply (Llama models)",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        metavar="N",
        help=f"how many tokens to add at most (default: {DEFAULT_NEW_TOKENS}; {CHAT_NEW_TOKENS} with --chat)",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="softmax temperature; 0 picks the most likely token each time "
        f"(default: {GPT2_TEMPERATURE} for GPT-2, as the book; 0 for Llama models)",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=50,
        metavar="K",
        help="when sampling, draw among the K most likely tokens only; 0 for all of them (default: 50, as the book)",
    )
    parser.add_argument("--seed", type=int, default=123, help="random seed of the sampling (default: 123)")
    parser.add_argument("--verbose", action="store_true", help="show the traceback when the course's code fails")
    parser.set_defaults(func=run)


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.max_new_tokens is not None and args.max_new_tokens < 0:
        return "--max-new-tokens should be 0 or more"
    if args.temperature is not None and args.temperature < 0:
        return "--temperature should be 0 (greedy) or more"
    if args.top_k < 0:
        return "--top-k should be 0 (no limit) or more"
    return None


def _fail(message: str) -> int:
    print(f"course generate: {message}", file=sys.stderr)
    return 2


def _not_fetched(what: str, group: str, exc: data.DataFetchError) -> int:
    reason = str(exc).splitlines()[0].split("; ")[0]
    return _fail(
        f"{what} not in {data.data_dir()} and could not be downloaded ({reason}): "
        f"run `course data fetch {group}`, or set COURSE_DATA_MIRROR to a server or folder with the "
        "course data files"
    )


def _unknown_model(model: str) -> int:
    return _fail(
        f"unknown model {model!r}: give a GPT-2 size ({', '.join(pretrained.GPT2_SIZES)}), a Llama "
        f"({', '.join(pretrained_llama.LLAMA_MODELS)}), a folder (Hugging Face's config.json and "
        "model.safetensors, or Meta's params.json and consolidated.00.pth) or a .gguf file"
    )


def run(args: argparse.Namespace) -> int:
    """Print the prompt and its continuation (the reply with --chat); 2 for an unknown model or missing files."""
    problem = _usage_problem(args)
    if problem:
        return _fail(problem)
    if args.max_new_tokens is None:
        args.max_new_tokens = CHAT_NEW_TOKENS if args.chat else DEFAULT_NEW_TOKENS
    if pretrained_llama.is_llama(args.model):
        return _run_llama(args)
    if args.model not in pretrained.GPT2_SIZES and not Path(args.model).is_dir():
        return _unknown_model(args.model)
    if args.chat:
        return _fail("--chat needs a Llama with a chat template, such as --model smollm2-135m; GPT-2 has none")
    return _run_gpt2(args)


def _run_gpt2(args: argparse.Namespace) -> int:
    # A size's group brings its weights and the tokenizer, so one fetch is enough whatever is missing.
    group = args.model if args.model in pretrained.GPT2_SIZES else "gpt2-bpe"
    try:
        tokenizer = data.gpt2_encoding()
    except data.DataFetchError as exc:
        return _not_fetched("GPT-2's tokenizer files are", group, exc)
    try:
        model, cfg = pretrained.load_gpt2(args.model)
    except pretrained.UnknownModelError as exc:
        return _fail(str(exc))
    except data.DataFetchError as exc:
        return _not_fetched(f"the weights of {args.model} are", group, exc)

    import torch

    from previous_chapters import generate, text_to_token_ids, token_ids_to_text

    torch.manual_seed(args.seed)
    temperature = GPT2_TEMPERATURE if args.temperature is None else args.temperature
    token_ids = generate(
        model,
        text_to_token_ids(args.prompt, tokenizer),
        max_new_tokens=args.max_new_tokens,
        context_size=cfg["context_length"],
        temperature=temperature,
        top_k=min(args.top_k, cfg["vocab_size"]) or None,
    )
    print(token_ids_to_text(token_ids, tokenizer))
    return 0


def _run_llama(args: argparse.Namespace) -> int:
    try:
        llama = pretrained_llama.load_llama(args.model)
        if args.chat:
            prompt, stop_id = llama.chat_prompt([{"role": "user", "content": args.prompt}]), llama.end_of_turn_id()
        else:
            prompt, stop_id = llama.prompt_ids(args.prompt), llama.eos_id
    except pretrained_llama.UnknownLlamaError as exc:
        return _fail(f"{args.model}: {exc}")
    except data.DataFetchError as exc:
        return _not_fetched(f"the files of {args.model} are", args.model, exc)

    new_ids = _continue_llama(llama, prompt, stop_id, args)
    reply = llama.tokenizer.decode(new_ids)
    print(reply if args.chat else args.prompt + reply)
    return 0


def _continue_llama(
    llama: pretrained_llama.LoadedLlama, prompt: list[int], stop_id: int | None, args: argparse.Namespace
) -> list[int]:
    """The token ids a Llama writes after `prompt`, up to args.max_new_tokens, without `stop_id`."""
    import torch

    from previous_chapters import generate, generate_text_simple_cached

    ids = torch.tensor([prompt])
    context_size = llama.cfg["context_length"]
    if not args.temperature:
        written = generate_text_simple_cached(
            llama.model, ids, args.max_new_tokens, context_size=context_size, eos_id=stop_id
        )
    else:
        torch.manual_seed(args.seed)
        written = generate(
            llama.model,
            ids,
            max_new_tokens=args.max_new_tokens,
            context_size=context_size,
            temperature=args.temperature,
            top_k=min(args.top_k, llama.cfg["vocab_size"]) or None,
            eos_id=stop_id,
        )
    return written[0, len(prompt) :].tolist()
