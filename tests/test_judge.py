"""The response judge: score parsing, the local judge on a scripted model, and the Ollama judge through the
official client against a fake Ollama server on 127.0.0.1 (nothing real is needed or reached)."""

from __future__ import annotations

import json
import socket
import string
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from torch import nn

from autograder.checks.toy_models import CharTokenizer
from llmcourse import judge

TOKENIZER = CharTokenizer(string.printable)
EOS = TOKENIZER.encode("~")[0]
TRIPLE = ("Name a primary color.", "Red.", "Blue.")


@pytest.mark.parametrize(
    "reply, score",
    [
        ("85", 85),
        (" 100\n", 100),
        ("Score: 7 out of 100", 7),
        ("150", 100),
        ("0", 0),
        ("I cannot tell.", None),
        ("", None),
    ],
)
def test_parse_score_takes_the_first_integer_capped_at_100(reply, score):
    assert judge.parse_score(reply) == score


def test_judge_prompt_holds_the_triple_and_the_book_request():
    request = judge.judge_prompt(*TRIPLE)
    assert "`Name a primary color.`" in request and "`Red.`" in request and "`Blue.`" in request
    assert request.endswith("Respond with the integer number only.")


class ReplyModel(nn.Module):
    """Writes `reply` after a prompt of `prompt_length` tokens, then end-of-text tokens (greedily)."""

    def __init__(self, prompt_length: int, reply: list[int]):
        super().__init__()
        self.prompt_length, self.reply = prompt_length, reply

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (1, num_tokens) -> logits (1, num_tokens, vocab_size)."""
        logits = torch.zeros(*idx.shape, len(string.printable))
        for position in range(idx.shape[1]):
            written = position + 1 - self.prompt_length
            logits[:, position, self.reply[written] if 0 <= written < len(self.reply) else EOS] = 10.0
        return logits


def _local_judge(reply: str, max_new_tokens: int = judge.SCORE_TOKENS) -> judge.LocalJudge:
    """A local judge whose model writes `reply`, then the end-of-text token, after the request and the cue."""
    prompt = TOKENIZER.encode(judge.judge_prompt(*TRIPLE) + judge.SCORE_CUE)
    model = ReplyModel(len(prompt), TOKENIZER.encode(reply))
    return judge.LocalJudge(model, TOKENIZER, 1024, EOS, name="scripted", max_new_tokens=max_new_tokens)


def test_local_judge_reads_the_greedy_reply_up_to_the_end_of_text_token():
    (score,) = judge.score_responses(_local_judge(" 42"), [TRIPLE])
    assert (score.reply, score.score, score.response) == (" 42", 42, "Blue.")


def test_local_judge_stops_after_max_new_tokens():
    (score,) = judge.score_responses(_local_judge(" 42", max_new_tokens=2), [TRIPLE])
    assert (score.reply, score.score) == (" 4", 4)


def test_write_scores_writes_the_judge_the_mean_and_every_reply(tmp_path):
    scores = [
        judge.Score("p", "r", "a", " 40", 40),
        judge.Score("p", "r", "b", "none", None),
        judge.Score("p", "r", "c", "80", 80),
    ]
    path = judge.write_scores(tmp_path / "results" / "scores.json", _local_judge("1"), scores)
    written = json.loads(path.read_text(encoding="utf-8"))
    assert (written["judge"], written["mean_score"], written["scored"]) == ("scripted", 60, 2)
    assert [s["score"] for s in written["scores"]] == [40, None, 80]


class FakeOllama(BaseHTTPRequestHandler):
    """Answers /api/tags and /api/chat as `ollama serve` does; keeps every request it gets on the server."""

    def do_GET(self):
        if self.path == "/api/tags":
            self._json(
                {
                    "models": [
                        {"model": name, "name": name, "size": 1, "digest": "0" * 64} for name in self.server.pulled
                    ]
                }
            )
        else:
            self._json({"error": "not found"}, status=404)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, body))
        model = body.get("model", "")
        if self.path == "/api/chat" and (model if ":" in model else f"{model}:latest") in self.server.pulled:
            self._json(
                {
                    "model": body["model"],
                    "created_at": "2024-05-01T00:00:00Z",
                    "done": True,
                    "message": {"role": "assistant", "content": self.server.reply},
                }
            )
        else:
            self._json({"error": f"model '{model}' not found"}, status=404)

    def _json(self, payload: dict, status: int = 200):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_ollama():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOllama)
    server.pulled, server.requests, server.reply = ["llama3:latest"], [], "Score: 85"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_running_ollama_server_with_the_model_becomes_the_judge(fake_ollama):
    server, host = fake_ollama
    assert judge.ollama_models(host) == ["llama3:latest"]
    chosen = judge.choose_judge(_local_judge("1"), host=host)
    assert isinstance(chosen, judge.OllamaJudge) and chosen.name == "ollama:llama3"
    (score,) = judge.score_responses(chosen, [TRIPLE])
    assert (score.reply, score.score) == ("Score: 85", 85)
    path, body = server.requests[-1]
    assert path == "/api/chat" and body["model"] == "llama3" and body["stream"] is False
    assert body["messages"] == [{"role": "user", "content": judge.judge_prompt(*TRIPLE)}]
    assert body["options"] == judge.OLLAMA_OPTIONS


def test_a_server_without_the_model_leaves_the_local_judge(fake_ollama):
    server, host = fake_ollama
    server.pulled = ["phi3:mini"]
    local = _local_judge("1")
    assert judge.choose_judge(local, host=host) is local


def test_no_server_means_no_ollama_and_the_local_judge():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        host = f"http://127.0.0.1:{probe.getsockname()[1]}"
    start = time.monotonic()
    assert judge.ollama_models(host) is None
    local = _local_judge("1")
    assert judge.choose_judge(local, host=host) is local
    assert time.monotonic() - start < 5


def test_ollama_host_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert judge.ollama_host() == judge.OLLAMA_HOST
    monkeypatch.setenv("OLLAMA_HOST", "http://10.0.0.2:11434")
    assert judge.ollama_host() == "http://10.0.0.2:11434"
