"""encoding_for_model('gpt2') and positional DataLoader arguments"""

import tiktoken
from torch.utils.data import DataLoader


def create_dataloader_v1(txt, batch_size=4, max_length=256, stride=128, shuffle=True, drop_last=True, num_workers=0):
    """Batches of (inputs, targets), each (batch_size, max_length), over GPT-2 tokens of `txt`."""
    return DataLoader(
        GPTDatasetV1(txt, tiktoken.encoding_for_model("gpt2"), max_length=max_length, stride=stride),
        batch_size,
        shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
    )
