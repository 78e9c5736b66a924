"""Scoring a model's responses from 0 to 100 with a judge model, as chapter 7 evaluates its fine-tuned model.

A judge reads (prompt, reference output, model response) and answers with a number.
By default the judge is a local model run through the course's own generation code
(chapter 5's greedy `generate`); when an Ollama server answers (the book's judge is
Llama 3 served by Ollama), `choose_judge` hands the work to it through the official
`ollama` client instead. Nothing here needs the server: it is detected with a short
timeout, and its absence only means the local judge is used.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from torch import nn

OLLAMA_HOST = "http://127.0.0.1:11434"  # where `ollama serve` listens unless OLLAMA_HOST says otherwise
OLLAMA_MODEL = "llama3"  # the book's judge
DETECT_TIMEOUT_S = 0.5
# Greedy decoding, a fixed seed and the book's context window, so the same triple gets the same score.
OLLAMA_OPTIONS = {"seed": 123, "temperature": 0, "num_ctx": 2048}
# A completion model continues text: this cue after the request puts the number next.
SCORE_CUE = "\n\nScore:"
SCORE_TOKENS = 5  # room for " 100" and a stop


def judge_prompt(prompt: str, reference: str, response: str) -> str:
    """The book's request to the judge: score `response` to `prompt` against `reference`, integer only."""
    return (
        f"Given the input `{prompt}` and correct output `{reference}`, score the model response `{response}` "
        "on a scale from 0 to 100, where 100 is the best score. Respond with the integer number only."
    )


def parse_score(reply: str) -> int | None:
    """The first integer in the judge's reply, capped at 100; None when the reply holds no number."""
    match = re.search(r"\d+", reply)
    return None if match is None else min(int(match.group()), 100)


class Judge(Protocol):
    name: str

    def reply(self, request: str) -> str:
        """The judge's answer to one request (a text that should hold a score)."""


class LocalJudge:
    """A model of the course (GPTModel, Llama3Model, or any (batch, num_tokens) -> logits module) as the judge.

    It answers greedily through chapter 5's `generate`, in eval mode, at most `max_new_tokens`
    tokens, stopping at `eos_id`; `cue` follows the request so that the number comes next.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        context_length: int,
        eos_id: int | None,
        name: str = "local model",
        cue: str = SCORE_CUE,
        max_new_tokens: int = SCORE_TOKENS,
    ):
        self.model, self.tokenizer, self.context_length, self.eos_id = model, tokenizer, context_length, eos_id
        self.name, self.cue, self.max_new_tokens = name, cue, max_new_tokens

    def reply(self, request: str) -> str:
        import torch

        from previous_chapters import generate

        ids = torch.tensor([self.tokenizer.encode(request + self.cue)])
        self.model.eval()
        written = generate(self.model, ids, self.max_new_tokens, self.context_length, eos_id=self.eos_id)
        return self.tokenizer.decode(written[0, ids.shape[1] :].tolist())


class OllamaJudge:
    """A model served by Ollama as the judge, asked through the official client's chat endpoint."""

    def __init__(self, model: str = OLLAMA_MODEL, host: str | None = None):
        import ollama

        self.model, self.name = model, f"ollama:{model}"
        self.client = ollama.Client(host=host or ollama_host())

    def reply(self, request: str) -> str:
        answer = self.client.chat(
            model=self.model, messages=[{"role": "user", "content": request}], options=OLLAMA_OPTIONS
        )
        return answer["message"]["content"]


def ollama_host() -> str:
    """The Ollama server's address: $OLLAMA_HOST when set, else Ollama's default."""
    return os.environ.get("OLLAMA_HOST") or OLLAMA_HOST


def ollama_models(host: str | None = None, timeout: float = DETECT_TIMEOUT_S) -> list[str] | None:
    """The models an Ollama server at `host` has pulled, or None when no server answers within `timeout` seconds."""
    import httpx
    import ollama

    try:
        with ollama.Client(host=host or ollama_host(), timeout=timeout) as client:
            return [model.model for model in client.list().models if model.model]
    except (ConnectionError, httpx.HTTPError, ollama.ResponseError, ValueError):
        return None


def _has_model(pulled: list[str], model: str) -> bool:
    """`llama3` matches `llama3:latest`; a name with a tag matches only itself."""
    return any(name == model or (":" not in model and name.split(":")[0] == model) for name in pulled)


def choose_judge(local: Judge, model: str = OLLAMA_MODEL, host: str | None = None) -> Judge:
    """An OllamaJudge when a server at `host` answers and has `model`, else `local`."""
    pulled = ollama_models(host)
    if pulled is not None and _has_model(pulled, model):
        return OllamaJudge(model, host)
    return local


@dataclass
class Score:
    """One judged response: what was asked, the reference, the response, the judge's reply and its score."""

    prompt: str
    reference: str
    response: str
    reply: str
    score: int | None


def score_responses(judge: Judge, triples: list[tuple[str, str, str]], progress: bool = False) -> list[Score]:
    """Asks `judge` about every (prompt, reference output, model response) triple."""
    if progress:
        from tqdm.auto import tqdm

        triples = tqdm(triples, desc=f"scoring with {judge.name}")
    scores = []
    for prompt, reference, response in triples:
        reply = judge.reply(judge_prompt(prompt, reference, response))
        scores.append(Score(prompt, reference, response, reply, parse_score(reply)))
    return scores


def write_scores(path: str | Path, judge: Judge, scores: list[Score]) -> Path:
    """Writes the scores as JSON ({"judge", "mean_score", "scored", "scores": [...]}) and returns the path.

    The mean is over the replies that held a number; `scored` says how many did.
    """
    numbers = [s.score for s in scores if s.score is not None]
    summary = {
        "judge": judge.name,
        "mean_score": sum(numbers) / len(numbers) if numbers else None,
        "scored": len(numbers),
        "scores": [asdict(s) for s in scores],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
