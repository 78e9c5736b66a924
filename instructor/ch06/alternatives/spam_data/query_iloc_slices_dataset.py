"""query() and iloc slices; a dataset that pads in __getitem__ and keeps tensors"""


def create_balanced_dataset(df):
    """ham sampled like the book, then spam."""
    spam = df.query("Label == 'spam'")
    ham = df.query("Label == 'ham'").sample(n=len(spam), random_state=123)
    return pd.concat([ham, spam], axis=0)


def random_split(df, train_frac, validation_frac):
    """shuffle, reset, cut."""
    shuffled = df.sample(frac=1.0, random_state=123).reset_index(drop=True)
    n_train, n_val = int(len(shuffled) * train_frac), int(len(shuffled) * validation_frac)
    return (shuffled.iloc[:n_train], shuffled.iloc[n_train : n_train + n_val], shuffled.iloc[n_train + n_val :])


class SpamDataset(Dataset):
    """texts padded to one length."""

    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        frame = pd.read_csv(csv_file)
        self.labels = frame["Label"].astype(int).tolist()
        raw = [tokenizer.encode(t) for t in frame["Text"]]
        self.max_length = max(map(len, raw)) if max_length is None else max_length
        self.encoded_texts = [torch.full((self.max_length,), pad_token_id, dtype=torch.long) for _ in raw]
        for row, ids in zip(self.encoded_texts, raw):
            ids = ids[: self.max_length]
            row[: len(ids)] = torch.tensor(ids, dtype=torch.long)

    def __getitem__(self, index):
        return self.encoded_texts[index].clone(), torch.tensor(self.labels[index])

    def __len__(self):
        return len(self.labels)

    def _longest_encoded_length(self):
        return self.max_length
