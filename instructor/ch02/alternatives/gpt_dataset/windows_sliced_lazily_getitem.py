"""windows sliced lazily in __getitem__; input_ids and target_ids as properties"""

import torch
from torch.utils.data import Dataset


class GPTDatasetV1(Dataset):
    """Keeps the token ids once and slices a window out of them on each `__getitem__`."""

    def __init__(self, txt, tokenizer, max_length, stride):
        self.token_ids = tokenizer.encode(txt, allowed_special={"<|endoftext|>"})
        self.max_length = max_length
        self.starts = list(range(0, len(self.token_ids) - max_length, stride))

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, idx):
        start = self.starts[idx]
        chunk = torch.tensor(self.token_ids[start : start + self.max_length + 1], dtype=torch.long)
        return chunk[:-1], chunk[1:]

    @property
    def input_ids(self):
        return [self[k][0] for k in range(len(self))]

    @property
    def target_ids(self):
        return [self[k][1] for k in range(len(self))]
