"""Chat prompts from the Jinja chat templates that Hugging Face and GGUF files ship with a model.

A template turns a conversation, a list of {"role": ..., "content": ...} messages, into
the text the model was fine-tuned on; with `add_generation_prompt` it ends with the
header of the assistant's turn, for the model to continue. It is rendered as
`transformers`' `apply_chat_template` renders it: a sandboxed Jinja environment with
trim_blocks, lstrip_blocks, loop controls, `raise_exception` and `strftime_now`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Protocol

# Stands in for a message's text while finding the token that closes a turn.
_CONTENT_MARKER = "\u2063message\u2063"


class SpecialTokenizer(Protocol):
    """A tokenizer that matches its special tokens whole in the text it encodes."""

    special_tokens: dict[str, int]

    def encode(self, text: str) -> list[int]: ...


def _raise_exception(message: str) -> None:
    import jinja2

    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    value: object, ensure_ascii: bool = False, indent: int | None = None, separators=None, sort_keys: bool = False
) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


class ChatTemplate:
    """A Jinja chat template with the tokenizer whose special tokens it writes.

    bos_token and eos_token: the texts the template may write as `{{ bos_token }}` and
    `{{ eos_token }}` (None where the model has none).
    """

    def __init__(
        self, template: str, tokenizer: SpecialTokenizer, bos_token: str | None = None, eos_token: str | None = None
    ):
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        environment = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
        )
        environment.filters["tojson"] = _tojson
        environment.globals["raise_exception"] = _raise_exception
        environment.globals["strftime_now"] = lambda format: datetime.now().strftime(format)
        self._template = environment.from_string(template)
        self.tokenizer = tokenizer
        self._specials = {"bos_token": bos_token or "", "eos_token": eos_token or ""}

    def render(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The text of the conversation `messages`, ending with the assistant's header when add_generation_prompt."""
        return self._template.render(messages=messages, add_generation_prompt=add_generation_prompt, **self._specials)

    def encode(self, messages: list[dict]) -> list[int]:
        """Token ids of the conversation followed by the assistant's header: the prompt of the model's reply."""
        return self.tokenizer.encode(self.render(messages))

    def end_of_turn_id(self) -> int | None:
        """The special token the template writes right after a message's content (ChatML's <|im_end|>,
        Llama 3's <|eot_id|>): the token a model writes when its reply is done. None when there is none."""
        text = self.render([{"role": "user", "content": _CONTENT_MARKER}], add_generation_prompt=False)
        after = text.partition(_CONTENT_MARKER)[2]
        special_ids = set(self.tokenizer.special_tokens.values())
        return next((i for i in self.tokenizer.encode(after) if i in special_ids), None)
