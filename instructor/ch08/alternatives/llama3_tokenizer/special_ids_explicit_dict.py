"""special ids in an explicit dict; encode_ordinary when nothing is allowed; one helper builds every chat list"""


class Tokenizer:
    def __init__(self, model_path):
        mergeable = load_tiktoken_bpe(str(model_path))
        n = len(mergeable)
        special = {"<|begin_of_text|>": n, "<|end_of_text|>": n + 1}
        for i in range(4):
            special[f"<|reserved_special_token_{i}|>"] = n + 2 + i
        special["<|start_header_id|>"] = n + 6
        special["<|end_header_id|>"] = n + 7
        special["<|reserved_special_token_4|>"] = n + 8
        special["<|eot_id|>"] = n + 9
        for i in range(5, 251):
            special[f"<|reserved_special_token_{i}|>"] = n + 5 + i
        self.special_tokens = special
        self.model = tiktoken.Encoding(
            name="llama3", pat_str=LLAMA3_PATTERN, mergeable_ranks=mergeable, special_tokens=special
        )

    def encode(self, text, bos=False, eos=False, allowed_special=frozenset()):
        if allowed_special:
            ids = self.model.encode(text, allowed_special=allowed_special, disallowed_special=())
        else:
            ids = self.model.encode_ordinary(text)
        return [self.special_tokens["<|begin_of_text|>"]] * bos + ids + [self.special_tokens["<|end_of_text|>"]] * eos

    def decode(self, ids):
        return self.model.decode(list(ids))


class ChatFormat:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def _build(self, messages, header_only=False):
        special, encode = self.tokenizer.special_tokens, self.tokenizer.encode
        tokens = []
        for message in messages:
            tokens += [special["<|start_header_id|>"], *encode(message["role"]), special["<|end_header_id|>"]]
            tokens += encode("\n\n")
            if not header_only:
                tokens += [*encode(message["content"].strip()), special["<|eot_id|>"]]
        return tokens

    def encode_header(self, message):
        return self._build([message], header_only=True)

    def encode_message(self, message):
        return self._build([message])

    def encode_dialog_prompt(self, dialog):
        opening = [self.tokenizer.special_tokens["<|begin_of_text|>"]]
        return opening + self._build(dialog) + self._build([{"role": "assistant"}], header_only=True)
