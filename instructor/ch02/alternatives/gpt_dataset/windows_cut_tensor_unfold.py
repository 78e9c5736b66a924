"""windows cut with Tensor.unfold"""

import torch
from torch.utils.data import Dataset


class GPTDatasetV1(Dataset):
    """Input-target windows cut with `Tensor.unfold`: row k is tokens [k*stride, k*stride + max_length)."""

    def __init__(self, txt, tokenizer, max_length, stride):
        token_ids = torch.tensor(tokenizer.encode(txt, allowed_special={"<|endoftext|>"}), dtype=torch.long)
        if len(token_ids) > max_length:
            self.input_ids = list(token_ids[:-1].unfold(0, max_length, stride))
            self.target_ids = list(token_ids[1:].unfold(0, max_length, stride))
        else:
            self.input_ids, self.target_ids = [], []

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, idx):
        return self.input_ids[idx], self.target_ids[idx]
