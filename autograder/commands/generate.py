"""`course generate`: continue a prompt with a pretrained GPT-2, through the course's own code."""
from __future__ import annotations

import argparse
import sys

from . import add_command
from .. import data, pretrained

EPILOG = """\
examples:
  course generate --model gpt2-124m "Every effort moves you"
                                        the book's settings: 25 tokens, temperature 1.5, top-k 50, seed 123
  course generate --model gpt2-355m --temperature 0 "The meaning of life is"
                                        greedy decoding: always the same text
  course generate --model path/to/folder --max-new-tokens 100 --seed 7 "Once upon a time"
                                        a GPT-2 saved with Hugging Face's save_pretrained

The model is chapter 4's GPTModel loaded by chapter 5's load_weights_into_gpt and sampled
by chapter 5's generate: the reference code when the course has solutions/, else your own
notebooks. `course data fetch gpt2-124m` downloads the weights and the tokenizer files once
(COURSE_DATA_MIRROR serves them in a lab without internet).

exit status: 0 the text was written, 1 the course's code failed, 2 an unknown model or missing weights
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `generate` to the `course` command line."""
    parser = add_command(
        subparsers,
        "generate",
        "continue a prompt with a pretrained GPT-2 through the course's own code",
        "Load a pretrained GPT-2 into the course's GPTModel and print the prompt followed by "
        "the text the model writes.",
        EPILOG,
    )
    parser.add_argument("prompt", metavar="PROMPT", help="the text to continue")
    parser.add_argument(
        "--model",
        required=True,
        metavar="NAME_OR_FOLDER",
        help=f"a GPT-2 size ({', '.join(pretrained.GPT2_SIZES)}) or a folder with config.json and model.safetensors",
    )
    parser.add_argument("--max-new-tokens", type=int, default=25, metavar="N",
                        help="how many tokens to add at most (default: 25)")
    parser.add_argument("--temperature", type=float, default=1.5,
                        help="softmax temperature; 0 picks the most likely token each time (default: 1.5, as the book)")
    parser.add_argument("--top-k", type=int, default=50, metavar="K",
                        help="sample among the K most likely tokens only; 0 for all of them (default: 50, as the book)")
    parser.add_argument("--seed", type=int, default=123, help="random seed of the sampling (default: 123)")
    parser.add_argument("--verbose", action="store_true", help="show the traceback when the course's code fails")
    parser.set_defaults(func=run)


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.max_new_tokens < 0:
        return "--max-new-tokens should be 0 or more"
    if args.temperature < 0:
        return "--temperature should be 0 (greedy) or more"
    if args.top_k < 0:
        return "--top-k should be 0 (no limit) or more"
    return None


def _not_fetched(what: str, group: str, exc: data.DataFetchError) -> int:
    reason = str(exc).splitlines()[0].split("; ")[0]
    print(f"course generate: {what} not in {data.data_dir()} and could not be downloaded ({reason}): "
          f"run `course data fetch {group}`, or set COURSE_DATA_MIRROR to a server or folder with the "
          "course data files", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Print the prompt and its continuation; 2 for an unknown model or files that cannot be fetched."""
    problem = _usage_problem(args)
    if problem:
        print(f"course generate: {problem}", file=sys.stderr)
        return 2
    # A size's group brings its weights and the tokenizer, so one fetch is enough whatever is missing.
    group = args.model if args.model in pretrained.GPT2_SIZES else "gpt2-bpe"
    try:
        tokenizer = data.gpt2_encoding()
    except data.DataFetchError as exc:
        return _not_fetched("GPT-2's tokenizer files are", group, exc)
    try:
        model, cfg = pretrained.load_gpt2(args.model)
    except pretrained.UnknownModelError as exc:
        print(f"course generate: {exc}", file=sys.stderr)
        return 2
    except data.DataFetchError as exc:
        return _not_fetched(f"the weights of {args.model} are", group, exc)

    import torch

    from previous_chapters import generate, text_to_token_ids, token_ids_to_text

    torch.manual_seed(args.seed)
    token_ids = generate(model, text_to_token_ids(args.prompt, tokenizer), max_new_tokens=args.max_new_tokens,
                         context_size=cfg["context_length"], temperature=args.temperature,
                         top_k=min(args.top_k, cfg["vocab_size"]) or None)
    print(token_ids_to_text(token_ids, tokenizer))
    return 0
