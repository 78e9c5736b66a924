"""Chapter 6 self-test: realistic mistakes in the reference exercises (MUTANTS) and
correct implementations written another way (ALTERNATIVES)."""
from autograder.selftest import Alternative, Mutant

MUTANTS: list[Mutant] = [
    # ch06.spam_data
    Mutant(
        "ch06.spam_data",
        "ham sampled without the seed: a different balanced set every run",
        (('.sample(num_spam, random_state=123)', ".sample(num_spam)"),),
    ),
    Mutant(
        "ch06.spam_data",
        "the spam rows first, then the ham rows: the book's split moves every message",
        (('pd.concat([ham_subset, df[df["Label"] == "spam"]])', 'pd.concat([df[df["Label"] == "spam"], ham_subset])'),),
    ),
    Mutant(
        "ch06.spam_data",
        "every ham row kept: not balanced",
        (('ham_subset = df[df["Label"] == "ham"].sample(num_spam, random_state=123)',
          'ham_subset = df[df["Label"] == "ham"]'),),
    ),
    Mutant(
        "ch06.spam_data",
        "ham sampled with replacement",
        (('.sample(num_spam, random_state=123)', ".sample(num_spam, replace=True, random_state=123)"),),
    ),
    Mutant(
        "ch06.spam_data",
        "the first num_spam ham rows instead of a random sample",
        (('.sample(num_spam, random_state=123)', ".head(num_spam)"),),
    ),
    Mutant(
        "ch06.spam_data",
        "no shuffle before the split",
        (("df = df.sample(frac=1, random_state=123).reset_index(drop=True)", "df = df.reset_index(drop=True)"),),
    ),
    Mutant(
        "ch06.spam_data",
        "shuffled with another seed",
        (("df.sample(frac=1, random_state=123)", "df.sample(frac=1, random_state=42)"),),
    ),
    Mutant(
        "ch06.spam_data",
        "the index not reset after shuffling",
        (("df = df.sample(frac=1, random_state=123).reset_index(drop=True)", "df = df.sample(frac=1, random_state=123)"),),
    ),
    Mutant(
        "ch06.spam_data",
        "round() instead of int() for the cut points",
        (("train_end = int(len(df) * train_frac)", "train_end = round(len(df) * train_frac)"),),
    ),
    Mutant(
        "ch06.spam_data",
        "the validation part ends at int(len * (train_frac + validation_frac))",
        (("validation_end = train_end + int(len(df) * validation_frac)",
          "validation_end = int(len(df) * (train_frac + validation_frac))"),),
    ),
    Mutant(
        "ch06.spam_data",
        "off by one: the validation part starts one row late",
        (("validation_df = df[train_end:validation_end]", "validation_df = df[train_end + 1:validation_end]"),),
    ),
    Mutant(
        "ch06.spam_data",
        "padding with 0 instead of pad_token_id",
        (("[pad_token_id] * (self.max_length - len(encoded_text))", "[0] * (self.max_length - len(encoded_text))"),),
    ),
    Mutant(
        "ch06.spam_data",
        "padding with the default 50256 whatever pad_token_id is",
        (("[pad_token_id] * (self.max_length - len(encoded_text))", "[50256] * (self.max_length - len(encoded_text))"),),
    ),
    Mutant(
        "ch06.spam_data",
        "no truncation: texts longer than max_length keep every token",
        (("            self.encoded_texts = [encoded_text[:self.max_length] for encoded_text in self.encoded_texts]\n", ""),),
    ),
    Mutant(
        "ch06.spam_data",
        "truncation keeps the last max_length tokens",
        (("encoded_text[:self.max_length] for", "encoded_text[-self.max_length:] for"),),
    ),
    Mutant(
        "ch06.spam_data",
        "padding on the left",
        (("encoded_text + [pad_token_id] * (self.max_length - len(encoded_text))",
          "[pad_token_id] * (self.max_length - len(encoded_text)) + encoded_text"),),
    ),
    Mutant(
        "ch06.spam_data",
        "the longest length off by one",
        (("return max(len(encoded_text) for encoded_text in self.encoded_texts)",
          "return max(len(encoded_text) for encoded_text in self.encoded_texts) + 1"),),
    ),
    Mutant(
        "ch06.spam_data",
        "labels as float tensors",
        (("torch.tensor(label, dtype=torch.long)", "torch.tensor(label, dtype=torch.float32)"),),
    ),
    Mutant(
        "ch06.spam_data",
        "the label of the next row",
        (('label = self.data.iloc[index]["Label"]', 'label = self.data.iloc[(index + 1) % len(self.data)]["Label"]'),),
    ),
    # ch06.classifier_head
    Mutant(
        "ch06.classifier_head",
        "all layers left trainable",
        (("    for param in model.parameters():\n        param.requires_grad = False\n", ""),),
    ),
    Mutant(
        "ch06.classifier_head",
        "frozen after the new head is in place: the head cannot train",
        (
            ("    for param in model.parameters():\n        param.requires_grad = False\n    emb_dim", "    emb_dim"),
            ("    model.out_head = nn.Linear(in_features=emb_dim, out_features=num_classes)\n",
             "    model.out_head = nn.Linear(in_features=emb_dim, out_features=num_classes)\n"
             "    for param in model.parameters():\n        param.requires_grad = False\n"),
        ),
    ),
    Mutant(
        "ch06.classifier_head",
        "the first transformer block unfrozen instead of the last",
        (("model.trf_blocks[-1].parameters()", "model.trf_blocks[0].parameters()"),),
    ),
    Mutant(
        "ch06.classifier_head",
        "the final norm left frozen",
        (("    for param in model.final_norm.parameters():\n        param.requires_grad = True\n", ""),),
    ),
    Mutant(
        "ch06.classifier_head",
        "only the head trains",
        (("    for param in model.trf_blocks[-1].parameters():\n        param.requires_grad = True\n", ""),),
    ),
    Mutant(
        "ch06.classifier_head",
        "a head without bias",
        (("nn.Linear(in_features=emb_dim, out_features=num_classes)",
          "nn.Linear(in_features=emb_dim, out_features=num_classes, bias=False)"),),
    ),
    Mutant(
        "ch06.classifier_head",
        "always two classes",
        (("out_features=num_classes)", "out_features=2)"),),
    ),
    Mutant(
        "ch06.classifier_head",
        "the book's seed set inside the function",
        (("    model.out_head = nn.Linear(", "    torch.manual_seed(123)\n    model.out_head = nn.Linear("),),
    ),
    Mutant(
        "ch06.classifier_head",
        "emb_dim read from pos_emb, which a Llama3Model does not have",
        (("emb_dim = model.out_head.in_features", "emb_dim = model.pos_emb.weight.shape[1]"),),
    ),
    Mutant(
        "ch06.classifier_head",
        "returns nothing",
        (("    return model\n", "    return None\n"),),
    ),
    # ch06.accuracy_and_loss
    Mutant(
        "ch06.accuracy_and_loss",
        "the loss classifies on the first token",
        (("logits = model(input_batch)[:, -1, :]\n    return", "logits = model(input_batch)[:, 0, :]\n    return"),),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "the accuracy classifies on the first token",
        (("logits = model(input_batch)[:, -1, :]\n        predicted", "logits = model(input_batch)[:, 0, :]\n        predicted"),),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "softmax before cross-entropy",
        (("return torch.nn.functional.cross_entropy(logits, target_batch)",
          "return torch.nn.functional.cross_entropy(torch.softmax(logits, dim=-1), target_batch)"),),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "the loss over every position, the label repeated",
        (("    logits = model(input_batch)[:, -1, :]\n    return torch.nn.functional.cross_entropy(logits, target_batch)",
          "    logits = model(input_batch)\n    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), "
          "target_batch.repeat_interleave(logits.shape[1]))"),),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "the loss summed over the batch",
        (("cross_entropy(logits, target_batch)", 'cross_entropy(logits, target_batch, reduction="sum")'),),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "the batch loss returned as a float (.item()), cutting the graph",
        (
            ("return torch.nn.functional.cross_entropy(logits, target_batch)",
             "return torch.nn.functional.cross_entropy(logits, target_batch).item()"),
            ("calc_loss_batch(input_batch, target_batch, model, device).item()",
             "calc_loss_batch(input_batch, target_batch, model, device)"),
        ),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "accuracy as the mean of the batches' accuracies",
        (
            ("        num_examples += predicted_labels.shape[0]\n"
             "        correct_predictions += (predicted_labels == target_batch).sum().item()\n"
             "    return correct_predictions / num_examples",
             "        num_examples += 1\n"
             "        correct_predictions += (predicted_labels == target_batch).float().mean().item()\n"
             "    return correct_predictions / num_examples"),
        ),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "accuracy without model.eval()",
        (("    model.eval()\n    correct_predictions, num_examples = 0, 0", "    correct_predictions, num_examples = 0, 0"),),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "accuracy computed with gradients on",
        (("        with torch.no_grad():\n            logits = model(input_batch)[:, -1, :]\n",
          "        logits = model(input_batch)[:, -1, :]\n"),),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "accuracy divided by the whole dataset's size whatever num_batches is",
        (("    return correct_predictions / num_examples", "    return correct_predictions / len(data_loader.dataset)"),),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "accuracy over one batch more than asked",
        (("        if i >= num_batches:\n            break\n        input_batch, target_batch = input_batch.to(device), target_batch.to(device)\n        with",
          "        if i > num_batches:\n            break\n        input_batch, target_batch = input_batch.to(device), target_batch.to(device)\n        with"),),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "the loader's loss divided by len(data_loader) whatever num_batches is",
        (("return total_loss / num_batches", "return total_loss / len(data_loader)"),),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "no guard for an empty loader",
        (('    if len(data_loader) == 0:\n        return float("nan")\n', ""),),
    ),
    Mutant(
        "ch06.accuracy_and_loss",
        "argmax over the batch dimension",
        (("predicted_labels = torch.argmax(logits, dim=-1)", "predicted_labels = torch.argmax(logits, dim=0)[:logits.shape[0]]"),),
    ),
    # ch06.train_classifier
    Mutant(
        "ch06.train_classifier",
        "optimizer.zero_grad() missing: gradients pile up",
        (("            optimizer.zero_grad()\n", ""),),
    ),
    Mutant(
        "ch06.train_classifier",
        "model.train() only once before the loop: after the first epoch's accuracy the model trains in eval mode",
        (("    for epoch in range(num_epochs):\n        model.train()\n",
          "    model.train()\n    for epoch in range(num_epochs):\n"),),
    ),
    Mutant(
        "ch06.train_classifier",
        "examples seen counts tokens",
        (("examples_seen += input_batch.shape[0]", "examples_seen += input_batch.numel()"),),
    ),
    Mutant(
        "ch06.train_classifier",
        "examples seen counts batches",
        (("examples_seen += input_batch.shape[0]", "examples_seen += 1"),),
    ),
    Mutant(
        "ch06.train_classifier",
        "steps counted from 1",
        (("examples_seen, global_step = 0, -1", "examples_seen, global_step = 0, 0"),),
    ),
    Mutant(
        "ch06.train_classifier",
        "accuracies over every batch instead of eval_iter",
        (("train_accuracy = calc_accuracy_loader(train_loader, model, device, num_batches=eval_iter)",
          "train_accuracy = calc_accuracy_loader(train_loader, model, device)"),
         ("val_accuracy = calc_accuracy_loader(val_loader, model, device, num_batches=eval_iter)",
          "val_accuracy = calc_accuracy_loader(val_loader, model, device)")),
    ),
    Mutant(
        "ch06.train_classifier",
        "accuracies after every evaluation instead of every epoch",
        (
            ("                val_losses.append(val_loss)\n",
             "                val_losses.append(val_loss)\n"
             "                train_accs.append(calc_accuracy_loader(train_loader, model, device, num_batches=eval_iter))\n"
             "                val_accs.append(calc_accuracy_loader(val_loader, model, device, num_batches=eval_iter))\n"
             "                model.train()\n"),
            ("        train_accs.append(train_accuracy)\n        val_accs.append(val_accuracy)\n", ""),
        ),
    ),
    Mutant(
        "ch06.train_classifier",
        "the validation accuracy measured on the training loader",
        (("val_accuracy = calc_accuracy_loader(val_loader,", "val_accuracy = calc_accuracy_loader(train_loader,"),),
    ),
    Mutant(
        "ch06.train_classifier",
        "evaluate_model without model.eval()",
        (("    ### BEGIN SOLUTION\n    model.eval()\n    with torch.no_grad():\n        train_loss",
          "    ### BEGIN SOLUTION\n    with torch.no_grad():\n        train_loss"),),
    ),
    Mutant(
        "ch06.train_classifier",
        "evaluate_model leaves the model in eval mode",
        (("    model.train()\n    return train_loss, val_loss", "    return train_loss, val_loss"),),
    ),
    Mutant(
        "ch06.train_classifier",
        "evaluate_model measures the validation loss on the training loader",
        (("val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)",
          "val_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)"),),
    ),
    Mutant(
        "ch06.train_classifier",
        "optimizer.step() before loss.backward()",
        (("            loss.backward()\n            optimizer.step()\n", "            optimizer.step()\n            loss.backward()\n"),),
    ),
    Mutant(
        "ch06.train_classifier",
        "returns examples seen per epoch (reset every epoch)",
        (("        model.train()\n        for input_batch", "        model.train()\n        examples_seen = 0\n        for input_batch"),),
    ),
    # ch06.classify_review
    Mutant(
        "ch06.classify_review",
        "classifies on the first token",
        (("logits = model(input_tensor)[:, -1, :]", "logits = model(input_tensor)[:, 0, :]"),),
    ),
    Mutant(
        "ch06.classify_review",
        "pads with 0",
        (("input_ids += [pad_token_id] * (length - len(input_ids))", "input_ids += [0] * (length - len(input_ids))"),),
    ),
    Mutant(
        "ch06.classify_review",
        "pads with GPT-2's 50256 whatever pad_token_id is",
        (("input_ids += [pad_token_id] * (length - len(input_ids))", "input_ids += [50256] * (length - len(input_ids))"),),
    ),
    Mutant(
        "ch06.classify_review",
        "no padding",
        (("    if max_length is not None:\n        input_ids += [pad_token_id] * (length - len(input_ids))\n", ""),),
    ),
    Mutant(
        "ch06.classify_review",
        "no truncation to max_length",
        (("length = supported_context_length if max_length is None else min(max_length, supported_context_length)\n"
          "    input_ids = input_ids[:length]\n",
          "length = supported_context_length if max_length is None else min(max_length, supported_context_length)\n"),),
    ),
    Mutant(
        "ch06.classify_review",
        "labels swapped: class 0 called spam",
        (('return "spam" if predicted_label == 1 else "not spam"', 'return "spam" if predicted_label == 0 else "not spam"'),),
    ),
    Mutant(
        "ch06.classify_review",
        "runs in train mode",
        (("    model.eval()\n    input_ids = tokenizer.encode(text)", "    input_ids = tokenizer.encode(text)"),),
    ),
    Mutant(
        "ch06.classify_review",
        "runs with gradients on",
        (("    with torch.no_grad():\n        logits = model(input_tensor)[:, -1, :]\n",
          "    logits = model(input_tensor)[:, -1, :]\n"),),
    ),
    Mutant(
        "ch06.classify_review",
        "returns the class number",
        (('return "spam" if predicted_label == 1 else "not spam"', "return predicted_label"),),
    ),
]

ALTERNATIVES: list[Alternative] = [
    Alternative(
        "ch06.spam_data",
        "query() and iloc slices; a dataset that pads in __getitem__ and keeps tensors",
        r'''
def create_balanced_dataset(df):
    """ham sampled like the book, then spam."""
    spam = df.query("Label == 'spam'")
    ham = df.query("Label == 'ham'").sample(n=len(spam), random_state=123)
    return pd.concat([ham, spam], axis=0)


def random_split(df, train_frac, validation_frac):
    """shuffle, reset, cut."""
    shuffled = df.sample(frac=1.0, random_state=123).reset_index(drop=True)
    n_train, n_val = int(len(shuffled) * train_frac), int(len(shuffled) * validation_frac)
    return (shuffled.iloc[:n_train], shuffled.iloc[n_train:n_train + n_val], shuffled.iloc[n_train + n_val:])


class SpamDataset(Dataset):
    """texts padded to one length."""

    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        frame = pd.read_csv(csv_file)
        self.labels = frame["Label"].astype(int).tolist()
        raw = [tokenizer.encode(t) for t in frame["Text"]]
        self.max_length = max(map(len, raw)) if max_length is None else max_length
        self.encoded_texts = [torch.full((self.max_length,), pad_token_id, dtype=torch.long) for _ in raw]
        for row, ids in zip(self.encoded_texts, raw):
            ids = ids[:self.max_length]
            row[:len(ids)] = torch.tensor(ids, dtype=torch.long)

    def __getitem__(self, index):
        return self.encoded_texts[index].clone(), torch.tensor(self.labels[index])

    def __len__(self):
        return len(self.labels)

    def _longest_encoded_length(self):
        return self.max_length
''',
    ),
    Alternative(
        "ch06.classifier_head",
        "requires_grad_ on modules, the head built with the model's dtype",
        r'''
def add_classification_head(model, num_classes=2):
    """freeze, new head, unfreeze the last block and the final norm."""
    model.requires_grad_(False)
    old = model.out_head
    model.out_head = nn.Linear(old.in_features, num_classes, dtype=old.weight.dtype)
    model.trf_blocks[len(model.trf_blocks) - 1].requires_grad_(True)
    model.final_norm.requires_grad_(True)
    return model
''',
    ),
    Alternative(
        "ch06.accuracy_and_loss",
        "select() and nll_loss of log_softmax; accuracy as a running tensor; islice over the loader",
        r'''
from itertools import islice


def _last_logits(model, input_batch):
    return model(input_batch).select(1, -1)


def calc_accuracy_loader(data_loader, model, device, num_batches=None):
    """examples right / examples seen."""
    was_training = model.training
    model.eval()
    limit = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    right, seen = torch.tensor(0), 0
    with torch.no_grad():
        for x, y in islice(data_loader, limit):
            right += (_last_logits(model, x.to(device)).argmax(-1) == y.to(device)).sum()
            seen += len(y)
    model.train(was_training)
    return right.item() / seen


def calc_loss_batch(input_batch, target_batch, model, device):
    """nll of log-softmax of the last token."""
    log_probs = torch.log_softmax(_last_logits(model, input_batch.to(device)), dim=-1)
    return torch.nn.functional.nll_loss(log_probs, target_batch.to(device))


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """mean of the first batches."""
    if len(data_loader) == 0:
        return float("nan")
    limit = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    losses = [calc_loss_batch(x, y, model, device).item() for x, y in islice(data_loader, limit)]
    return sum(losses) / len(losses)
''',
    ),
    Alternative(
        "ch06.train_classifier",
        "enumerate over a flat step counter, evaluation through a helper that restores the mode",
        r'''
def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """both losses in eval mode."""
    model.eval()
    with torch.no_grad():
        losses = tuple(calc_loss_loader(loader, model, device, num_batches=eval_iter)
                       for loader in (train_loader, val_loader))
    model.train()
    return losses


def train_classifier_simple(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter):
    """the book's loop, written with a step counter from enumerate."""
    history = {"train_loss": [], "val_loss": [], "train_acc": [], "val_acc": []}
    seen, step = 0, 0
    for _ in range(num_epochs):
        model.train()
        for inputs, labels in train_loader:
            loss = calc_loss_batch(inputs, labels, model, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(labels)
            if step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                history["train_loss"].append(train_loss)
                history["val_loss"].append(val_loss)
            step += 1
        for key, loader in (("train_acc", train_loader), ("val_acc", val_loader)):
            history[key].append(calc_accuracy_loader(loader, model, device, num_batches=eval_iter))
    return history["train_loss"], history["val_loss"], history["train_acc"], history["val_acc"], seen
''',
    ),
    Alternative(
        "ch06.classify_review",
        "the book's version (context from pos_emb), padding built with torch.full",
        r'''
def classify_review(text, model, tokenizer, device, max_length=None, pad_token_id=50256):
    """spam or not spam."""
    model.eval()
    input_ids = tokenizer.encode(text)
    supported_context_length = model.pos_emb.weight.shape[0]
    input_ids = input_ids[:min(max_length, supported_context_length)]
    batch = torch.full((1, max_length), pad_token_id, dtype=torch.long, device=device)
    batch[0, :len(input_ids)] = torch.tensor(input_ids, dtype=torch.long)
    with torch.no_grad():
        logits = model(batch)[:, -1, :]
    return ["not spam", "spam"][logits.argmax(dim=-1).item()]
''',
    ),
]
