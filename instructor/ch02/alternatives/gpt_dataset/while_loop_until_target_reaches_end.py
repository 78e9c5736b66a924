"""while loop that adds windows as long as the target window's end stays within the tokens (<=)"""

import torch
from torch.utils.data import Dataset


class GPTDatasetV1(Dataset):
    """Windows added in a while loop: the target of the window at `start` ends at token start + max_length."""

    def __init__(self, txt, tokenizer, max_length, stride):
        ids = tokenizer.encode(txt, allowed_special={"<|endoftext|>"})
        self.input_ids, self.target_ids = [], []
        start = 0
        while start + max_length + 1 <= len(ids):
            window = ids[start : start + max_length + 1]
            self.input_ids.append(torch.tensor(window[:-1], dtype=torch.long))
            self.target_ids.append(torch.tensor(window[1:], dtype=torch.long))
            start += stride

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, idx):
        return self.input_ids[idx], self.target_ids[idx]
