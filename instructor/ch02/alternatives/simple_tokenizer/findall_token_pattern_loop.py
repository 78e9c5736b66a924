"""findall with one token pattern; a loop of str.replace for the punctuation clean-up"""

import re

_PUNCTUATION = ",.:;?!\"()'"


def build_vocab(text):
    """Map every distinct word and punctuation token of `text` to an id, then add the two special tokens."""
    words = re.findall(r'[,.:;?_!"()\']|--|(?:(?!--)[^\s,.:;?_!"()\'])+', text)
    unique = sorted(dict.fromkeys(words))
    vocab = {}
    for index, word in enumerate(unique + ["<|endoftext|>", "<|unk|>"]):
        vocab[word] = index
    return vocab


class SimpleTokenizerV2:
    def __init__(self, vocab):
        self.str_to_int = dict(vocab)
        self.int_to_str = {i: s for s, i in vocab.items()}

    def encode(self, text):
        ids = []
        for word in re.findall(r'[,.:;?_!"()\']|--|(?:(?!--)[^\s,.:;?_!"()\'])+', text):
            ids.append(self.str_to_int.get(word, self.str_to_int["<|unk|>"]))
        return ids

    def decode(self, ids):
        text = " ".join(self.int_to_str[i] for i in ids)
        for mark in _PUNCTUATION:
            text = text.replace(" " + mark, mark)
        return text
