"""a list comprehension, the length from the encoded texts"""


class InstructionDataset(Dataset):
    """Tokenized once, in a comprehension."""

    def __init__(self, data, tokenizer):
        texts = (f"{format_input(entry)}\n\n### Response:\n{entry['output']}" for entry in data)
        self.encoded_texts = [tokenizer.encode(text) for text in texts]

    def __getitem__(self, index):
        return self.encoded_texts[index]

    def __len__(self):
        return len(self.encoded_texts)
