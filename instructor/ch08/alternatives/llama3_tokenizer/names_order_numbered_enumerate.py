"""the names in order, numbered with enumerate from len(ranks); the header encoded as one string with its specials allowed"""

SPECIAL_NAMES = (
    ["<|begin_of_text|>", "<|end_of_text|>"]
    + [f"<|reserved_special_token_{i}|>" for i in range(4)]
    + ["<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
    + [f"<|reserved_special_token_{i}|>" for i in range(5, 256 - 5)]
)


class Tokenizer:
    def __init__(self, model_path):
        ranks = load_tiktoken_bpe(str(model_path))
        self.special_tokens = {name: id_ for id_, name in enumerate(SPECIAL_NAMES, start=len(ranks))}
        self.model = tiktoken.Encoding(
            name="llama-3", pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks, special_tokens=self.special_tokens
        )

    def encode(self, text, bos=False, eos=False, allowed_special=frozenset()):
        ids = []
        if bos:
            ids.append(self.special_tokens["<|begin_of_text|>"])
        ids.extend(self.model.encode(text, allowed_special=allowed_special, disallowed_special=()))
        if eos:
            ids.append(self.special_tokens["<|end_of_text|>"])
        return ids

    def decode(self, ids):
        return self.model.decode([int(i) for i in ids])


class ChatFormat:
    HEADER_TOKENS = {"<|start_header_id|>", "<|end_header_id|>"}

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def encode_header(self, message):
        text = f"<|start_header_id|>{message['role']}<|end_header_id|>\n\n"
        return self.tokenizer.encode(text, allowed_special=self.HEADER_TOKENS)

    def encode_message(self, message):
        body = self.tokenizer.encode(message["content"].strip())
        return self.encode_header(message) + body + [self.tokenizer.special_tokens["<|eot_id|>"]]

    def encode_dialog_prompt(self, dialog):
        tokens = self.tokenizer.encode("", bos=True)
        for message in dialog:
            tokens += self.encode_message(message)
        tokens += self.encode_header({"role": "assistant", "content": ""})
        return tokens
