"""Chapter 6's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

MUTANTS: dict[str, list[Mutant]] = {
    "ch06.spam_data": [
        Mutant(
            "ham sampled without the seed: a different balanced set every run",
            ((".sample(num_spam, random_state=123)", ".sample(num_spam)"),),
        ),
        Mutant(
            "the spam rows first, then the ham rows: the book's split moves every message",
            (
                (
                    'pd.concat([ham_subset, df[df["Label"] == "spam"]])',
                    'pd.concat([df[df["Label"] == "spam"], ham_subset])',
                ),
            ),
        ),
        Mutant(
            "every ham row kept: not balanced",
            (
                (
                    'ham_subset = df[df["Label"] == "ham"].sample(num_spam, random_state=123)',
                    'ham_subset = df[df["Label"] == "ham"]',
                ),
            ),
        ),
        Mutant(
            "ham sampled with replacement",
            ((".sample(num_spam, random_state=123)", ".sample(num_spam, replace=True, random_state=123)"),),
        ),
        Mutant(
            "the first num_spam ham rows instead of a random sample",
            ((".sample(num_spam, random_state=123)", ".head(num_spam)"),),
        ),
        Mutant(
            "no shuffle before the split",
            (("df = df.sample(frac=1, random_state=123).reset_index(drop=True)", "df = df.reset_index(drop=True)"),),
        ),
        Mutant(
            "shuffled with another seed",
            (("df.sample(frac=1, random_state=123)", "df.sample(frac=1, random_state=42)"),),
        ),
        Mutant(
            "the index not reset after shuffling",
            (
                (
                    "df = df.sample(frac=1, random_state=123).reset_index(drop=True)",
                    "df = df.sample(frac=1, random_state=123)",
                ),
            ),
        ),
        Mutant(
            "round() instead of int() for the cut points",
            (("train_end = int(len(df) * train_frac)", "train_end = round(len(df) * train_frac)"),),
        ),
        Mutant(
            "the validation part ends at int(len * (train_frac + validation_frac))",
            (
                (
                    "validation_end = train_end + int(len(df) * validation_frac)",
                    "validation_end = int(len(df) * (train_frac + validation_frac))",
                ),
            ),
        ),
        Mutant(
            "off by one: the validation part starts one row late",
            (("validation_df = df[train_end:validation_end]", "validation_df = df[train_end + 1:validation_end]"),),
        ),
        Mutant(
            "padding with 0 instead of pad_token_id",
            (
                (
                    "[pad_token_id] * (self.max_length - len(encoded_text))",
                    "[0] * (self.max_length - len(encoded_text))",
                ),
            ),
        ),
        Mutant(
            "padding with the default 50256 whatever pad_token_id is",
            (
                (
                    "[pad_token_id] * (self.max_length - len(encoded_text))",
                    "[50256] * (self.max_length - len(encoded_text))",
                ),
            ),
        ),
        Mutant(
            "no truncation: texts longer than max_length keep every token",
            (
                (
                    "            self.encoded_texts = [encoded_text[:self.max_length] for encoded_text in self.encoded_texts]\n",
                    "",
                ),
            ),
        ),
        Mutant(
            "truncation keeps the last max_length tokens",
            (("encoded_text[:self.max_length] for", "encoded_text[-self.max_length:] for"),),
        ),
        Mutant(
            "padding on the left",
            (
                (
                    "encoded_text + [pad_token_id] * (self.max_length - len(encoded_text))",
                    "[pad_token_id] * (self.max_length - len(encoded_text)) + encoded_text",
                ),
            ),
        ),
        Mutant(
            "the longest length off by one",
            (
                (
                    "return max(len(encoded_text) for encoded_text in self.encoded_texts)",
                    "return max(len(encoded_text) for encoded_text in self.encoded_texts) + 1",
                ),
            ),
        ),
        Mutant(
            "labels as float tensors",
            (("torch.tensor(label, dtype=torch.long)", "torch.tensor(label, dtype=torch.float32)"),),
        ),
        Mutant(
            "the label of the next row",
            (
                (
                    'label = self.data.iloc[index]["Label"]',
                    'label = self.data.iloc[(index + 1) % len(self.data)]["Label"]',
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "the longest length counted in characters of the text, not in tokens",
            (
                (
                    "return max(len(encoded_text) for encoded_text in self.encoded_texts)",
                    'return max(len(text) for text in self.data["Text"])',
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            'reset_index() without drop=True: the old index becomes an extra "index" column',
            (
                (
                    "df.sample(frac=1, random_state=123).reset_index(drop=True)",
                    "df.sample(frac=1, random_state=123).reset_index()",
                ),
            ),
        ),
    ],
    "ch06.classifier_head": [
        Mutant(
            "all layers left trainable",
            (("    for param in model.parameters():\n        param.requires_grad = False\n", ""),),
        ),
        Mutant(
            "frozen after the new head is in place: the head cannot train",
            (
                (
                    "    for param in model.parameters():\n        param.requires_grad = False\n    emb_dim",
                    "    emb_dim",
                ),
                (
                    "    model.out_head = nn.Linear(in_features=emb_dim, out_features=num_classes)\n",
                    "    model.out_head = nn.Linear(in_features=emb_dim, out_features=num_classes)\n"
                    "    for param in model.parameters():\n        param.requires_grad = False\n",
                ),
            ),
        ),
        Mutant(
            "the first transformer block unfrozen instead of the last",
            (("model.trf_blocks[-1].parameters()", "model.trf_blocks[0].parameters()"),),
        ),
        Mutant(
            "the final norm left frozen",
            (("    for param in model.final_norm.parameters():\n        param.requires_grad = True\n", ""),),
        ),
        Mutant(
            "only the head trains",
            (("    for param in model.trf_blocks[-1].parameters():\n        param.requires_grad = True\n", ""),),
        ),
        Mutant(
            "a head without bias",
            (
                (
                    "nn.Linear(in_features=emb_dim, out_features=num_classes)",
                    "nn.Linear(in_features=emb_dim, out_features=num_classes, bias=False)",
                ),
            ),
        ),
        Mutant(
            "always two classes",
            (("out_features=num_classes)", "out_features=2)"),),
        ),
        Mutant(
            "the book's seed set inside the function",
            (("    model.out_head = nn.Linear(", "    torch.manual_seed(123)\n    model.out_head = nn.Linear("),),
        ),
        Mutant(
            "emb_dim read from pos_emb, which a Llama3Model does not have",
            (("emb_dim = model.out_head.in_features", "emb_dim = model.pos_emb.weight.shape[1]"),),
        ),
        Mutant(
            "returns nothing",
            (("    return model\n", "    return None\n"),),
        ),
    ],
    "ch06.accuracy_and_loss": [
        Mutant(
            "the loss classifies on the first token",
            (
                (
                    "logits = model(input_batch)[:, -1, :]\n    return",
                    "logits = model(input_batch)[:, 0, :]\n    return",
                ),
            ),
        ),
        Mutant(
            "the accuracy classifies on the first token",
            (
                (
                    "logits = model(input_batch)[:, -1, :]\n        predicted",
                    "logits = model(input_batch)[:, 0, :]\n        predicted",
                ),
            ),
        ),
        Mutant(
            "softmax before cross-entropy",
            (
                (
                    "return torch.nn.functional.cross_entropy(logits, target_batch)",
                    "return torch.nn.functional.cross_entropy(torch.softmax(logits, dim=-1), target_batch)",
                ),
            ),
        ),
        Mutant(
            "the loss over every position, the label repeated",
            (
                (
                    "    logits = model(input_batch)[:, -1, :]\n    return torch.nn.functional.cross_entropy(logits, target_batch)",
                    "    logits = model(input_batch)\n    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), "
                    "target_batch.repeat_interleave(logits.shape[1]))",
                ),
            ),
        ),
        Mutant(
            "the loss summed over the batch",
            (("cross_entropy(logits, target_batch)", 'cross_entropy(logits, target_batch, reduction="sum")'),),
        ),
        Mutant(
            "the batch loss returned as a float (.item()), cutting the graph",
            (
                (
                    "return torch.nn.functional.cross_entropy(logits, target_batch)",
                    "return torch.nn.functional.cross_entropy(logits, target_batch).item()",
                ),
                (
                    "calc_loss_batch(input_batch, target_batch, model, device).item()",
                    "calc_loss_batch(input_batch, target_batch, model, device)",
                ),
            ),
        ),
        Mutant(
            "accuracy as the mean of the batches' accuracies",
            (
                (
                    "        num_examples += predicted_labels.shape[0]\n"
                    "        correct_predictions += (predicted_labels == target_batch).sum().item()\n"
                    "    return correct_predictions / num_examples",
                    "        num_examples += 1\n"
                    "        correct_predictions += (predicted_labels == target_batch).float().mean().item()\n"
                    "    return correct_predictions / num_examples",
                ),
            ),
        ),
        Mutant(
            "accuracy without model.eval()",
            (
                (
                    "    model.eval()\n    correct_predictions, num_examples = 0, 0",
                    "    correct_predictions, num_examples = 0, 0",
                ),
            ),
        ),
        Mutant(
            "accuracy computed with gradients on",
            (
                (
                    "        with torch.no_grad():\n            logits = model(input_batch)[:, -1, :]\n",
                    "        logits = model(input_batch)[:, -1, :]\n",
                ),
            ),
        ),
        Mutant(
            "accuracy divided by the whole dataset's size whatever num_batches is",
            (
                (
                    "    return correct_predictions / num_examples",
                    "    return correct_predictions / len(data_loader.dataset)",
                ),
            ),
        ),
        Mutant(
            "accuracy over one batch more than asked",
            (
                (
                    "        if i >= num_batches:\n            break\n        input_batch, target_batch = input_batch.to(device), target_batch.to(device)\n        with",
                    "        if i > num_batches:\n            break\n        input_batch, target_batch = input_batch.to(device), target_batch.to(device)\n        with",
                ),
            ),
        ),
        Mutant(
            "the loader's loss divided by len(data_loader) whatever num_batches is",
            (("return total_loss / num_batches", "return total_loss / len(data_loader)"),),
        ),
        Mutant(
            "no guard for an empty loader",
            (('    if len(data_loader) == 0:\n        return float("nan")\n', ""),),
        ),
        Mutant(
            "accuracy counts every batch as batch_size examples: the smaller last batch counted as full",
            (("num_examples += predicted_labels.shape[0]", "num_examples += data_loader.batch_size"),),
        ),
        Mutant(
            "argmax over the batch dimension",
            (
                (
                    "predicted_labels = torch.argmax(logits, dim=-1)",
                    "predicted_labels = torch.argmax(logits, dim=0)[:logits.shape[0]]",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "accuracy divided by num_batches * batch_size: a smaller last batch is counted as if it were full",
            (
                (
                    "    return correct_predictions / num_examples",
                    "    return correct_predictions / (num_batches * data_loader.batch_size)",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "accuracy over len(dataset) // batch_size batches when num_batches is None: the smaller last batch is skipped",
            (
                (
                    "    correct_predictions, num_examples = 0, 0\n    if num_batches is None:\n"
                    "        num_batches = len(data_loader)\n",
                    "    correct_predictions, num_examples = 0, 0\n    if num_batches is None:\n"
                    "        num_batches = len(data_loader.dataset) // data_loader.batch_size\n",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "the loader's loss weighted by batch size (a per-example mean) instead of the average of the batch losses",
            (
                (
                    "    total_loss = 0.0\n",
                    "    total_loss, num_examples = 0.0, 0\n",
                ),
                (
                    "        total_loss += calc_loss_batch(input_batch, target_batch, model, device).item()\n"
                    "    return total_loss / num_batches",
                    "        total_loss += calc_loss_batch(input_batch, target_batch, model, device).item() * input_batch.shape[0]\n"
                    "        num_examples += input_batch.shape[0]\n"
                    "    return total_loss / num_examples",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "the loader's loss over len(dataset) // batch_size batches when num_batches is None: the smaller last batch is skipped",
            (
                (
                    '        return float("nan")\n    if num_batches is None:\n        num_batches = len(data_loader)\n',
                    '        return float("nan")\n    if num_batches is None:\n'
                    "        num_batches = len(data_loader.dataset) // data_loader.batch_size\n",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            ".item() forgotten in calc_loss_loader: it returns a tensor that keeps the graph, not a float",
            (
                (
                    "calc_loss_batch(input_batch, target_batch, model, device).item()",
                    "calc_loss_batch(input_batch, target_batch, model, device)",
                ),
            ),
        ),
    ],
    "ch06.train_classifier": [
        Mutant(
            "optimizer.zero_grad() missing: gradients pile up",
            (("            optimizer.zero_grad()\n", ""),),
        ),
        Mutant(
            "model.train() only once before the loop: after the first epoch's accuracy the model trains in eval mode",
            (
                (
                    "    for epoch in range(num_epochs):\n        model.train()\n",
                    "    model.train()\n    for epoch in range(num_epochs):\n",
                ),
            ),
        ),
        Mutant(
            "examples seen counts tokens",
            (("examples_seen += input_batch.shape[0]", "examples_seen += input_batch.numel()"),),
        ),
        Mutant(
            "examples seen counts batches",
            (("examples_seen += input_batch.shape[0]", "examples_seen += 1"),),
        ),
        Mutant(
            "steps counted from 1",
            (("examples_seen, global_step = 0, -1", "examples_seen, global_step = 0, 0"),),
        ),
        Mutant(
            "accuracies over every batch instead of eval_iter",
            (
                (
                    "train_accuracy = calc_accuracy_loader(train_loader, model, device, num_batches=eval_iter)",
                    "train_accuracy = calc_accuracy_loader(train_loader, model, device)",
                ),
                (
                    "val_accuracy = calc_accuracy_loader(val_loader, model, device, num_batches=eval_iter)",
                    "val_accuracy = calc_accuracy_loader(val_loader, model, device)",
                ),
            ),
        ),
        Mutant(
            "accuracies after every evaluation instead of every epoch",
            (
                (
                    "                val_losses.append(val_loss)\n",
                    "                val_losses.append(val_loss)\n"
                    "                train_accs.append(calc_accuracy_loader(train_loader, model, device, num_batches=eval_iter))\n"
                    "                val_accs.append(calc_accuracy_loader(val_loader, model, device, num_batches=eval_iter))\n"
                    "                model.train()\n",
                ),
                ("        train_accs.append(train_accuracy)\n        val_accs.append(val_accuracy)\n", ""),
            ),
        ),
        Mutant(
            "the validation accuracy measured on the training loader",
            (("val_accuracy = calc_accuracy_loader(val_loader,", "val_accuracy = calc_accuracy_loader(train_loader,"),),
        ),
        Mutant(
            "evaluate_model without model.eval()",
            (
                (
                    "    ### BEGIN SOLUTION\n    model.eval()\n    with torch.no_grad():\n        train_loss",
                    "    ### BEGIN SOLUTION\n    with torch.no_grad():\n        train_loss",
                ),
            ),
        ),
        Mutant(
            "evaluate_model leaves the model in eval mode",
            (("    model.train()\n    return train_loss, val_loss", "    return train_loss, val_loss"),),
        ),
        Mutant(
            "evaluate_model without torch.no_grad(): the losses are measured with gradients on",
            (
                (
                    "    with torch.no_grad():\n"
                    "        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)\n"
                    "        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)\n",
                    "    train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)\n"
                    "    val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)\n",
                ),
            ),
        ),
        Mutant(
            "evaluate_model measures the validation loss on the training loader",
            (
                (
                    "val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)",
                    "val_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)",
                ),
            ),
        ),
        Mutant(
            "optimizer.step() before loss.backward()",
            (
                (
                    "            loss.backward()\n            optimizer.step()\n",
                    "            optimizer.step()\n            loss.backward()\n",
                ),
            ),
        ),
        Mutant(
            "returns examples seen per epoch (reset every epoch)",
            (
                (
                    "        model.train()\n        for input_batch",
                    "        model.train()\n        examples_seen = 0\n        for input_batch",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "the step counter restarts at every epoch instead of running on across epochs",
            (
                (
                    "        model.train()\n        for input_batch",
                    "        model.train()\n        global_step = -1\n        for input_batch",
                ),
            ),
        ),
    ],
    "ch06.classify_review": [
        Mutant(
            "classifies on the first token",
            (("logits = model(input_tensor)[:, -1, :]", "logits = model(input_tensor)[:, 0, :]"),),
        ),
        Mutant(
            "pads with 0",
            (
                (
                    "input_ids += [pad_token_id] * (length - len(input_ids))",
                    "input_ids += [0] * (length - len(input_ids))",
                ),
            ),
        ),
        Mutant(
            "pads with GPT-2's 50256 whatever pad_token_id is",
            (
                (
                    "input_ids += [pad_token_id] * (length - len(input_ids))",
                    "input_ids += [50256] * (length - len(input_ids))",
                ),
            ),
        ),
        Mutant(
            "no padding",
            (
                (
                    "    if max_length is not None:\n        input_ids += [pad_token_id] * (length - len(input_ids))\n",
                    "",
                ),
            ),
        ),
        Mutant(
            "no truncation to max_length",
            (
                (
                    "length = supported_context_length if max_length is None else min(max_length, supported_context_length)\n"
                    "    input_ids = input_ids[:length]\n",
                    "length = supported_context_length if max_length is None else min(max_length, supported_context_length)\n",
                ),
            ),
        ),
        Mutant(
            "labels swapped: class 0 called spam",
            (
                (
                    'return "spam" if predicted_label == 1 else "not spam"',
                    'return "spam" if predicted_label == 0 else "not spam"',
                ),
            ),
        ),
        Mutant(
            "runs in train mode",
            (("    model.eval()\n    input_ids = tokenizer.encode(text)", "    input_ids = tokenizer.encode(text)"),),
        ),
        Mutant(
            "runs with gradients on",
            (
                (
                    "    with torch.no_grad():\n        logits = model(input_tensor)[:, -1, :]\n",
                    "    logits = model(input_tensor)[:, -1, :]\n",
                ),
            ),
        ),
        Mutant(
            "cuts the ids to max_length, not to min(max_length, context): max_length=None keeps every token",
            (("    input_ids = input_ids[:length]\n", "    input_ids = input_ids[:max_length]\n"),),
        ),
        Mutant(
            "keeps the last tokens of a long text instead of the first",
            (("    input_ids = input_ids[:length]\n", "    input_ids = input_ids[-length:]\n"),),
        ),
        Mutant(
            "the context always read from model.cfg: a GPTModel has none",
            (
                (
                    '    if hasattr(model, "pos_emb"):\n        supported_context_length = model.pos_emb.weight.shape[0]\n'
                    '    else:\n        supported_context_length = model.cfg["context_length"]\n',
                    '    supported_context_length = model.cfg["context_length"]\n',
                ),
            ),
        ),
        Mutant(
            'a Llama3Model\'s context taken from its embedding width, cfg["emb_dim"]',
            (
                (
                    'supported_context_length = model.cfg["context_length"]',
                    'supported_context_length = model.cfg["emb_dim"]',
                ),
            ),
        ),
        Mutant(
            "returns the class number",
            (('return "spam" if predicted_label == 1 else "not spam"', "return predicted_label"),),
        ),
        # written blind to the checks
        Mutant(
            "always pads: with max_length=None the text is padded to the whole context",
            (
                (
                    "    if max_length is not None:\n        input_ids += [pad_token_id] * (length - len(input_ids))\n",
                    "    input_ids += [pad_token_id] * (length - len(input_ids))\n",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "the book's min(max_length, context) without a case for max_length=None: a TypeError when it is None",
            (
                (
                    "length = supported_context_length if max_length is None else min(max_length, supported_context_length)",
                    "length = min(max_length, supported_context_length)",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "truncates only when max_length is given: with max_length=None a text longer than the context is not cut",
            (
                (
                    "    input_ids = input_ids[:length]\n    if max_length is not None:\n"
                    "        input_ids += [pad_token_id] * (length - len(input_ids))\n",
                    "    if max_length is not None:\n        input_ids = input_ids[:length]\n"
                    "        input_ids += [pad_token_id] * (length - len(input_ids))\n",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "the context length read as pos_emb.weight.shape[1], the embedding width, instead of shape[0]",
            (
                (
                    "supported_context_length = model.pos_emb.weight.shape[0]",
                    "supported_context_length = model.pos_emb.weight.shape[1]",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "pads to max_length (the book's code) instead of min(max_length, context): longer than the model takes",
            (
                (
                    "input_ids += [pad_token_id] * (length - len(input_ids))",
                    "input_ids += [pad_token_id] * (max_length - len(input_ids))",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "max_length not capped at the context length when it is given",
            (
                (
                    "length = supported_context_length if max_length is None else min(max_length, supported_context_length)",
                    "length = supported_context_length if max_length is None else max_length",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            "the context always read from model.pos_emb, which a Llama3Model does not have",
            (
                (
                    '    if hasattr(model, "pos_emb"):\n        supported_context_length = model.pos_emb.weight.shape[0]\n'
                    '    else:\n        supported_context_length = model.cfg["context_length"]\n',
                    "    supported_context_length = model.pos_emb.weight.shape[0]\n",
                ),
            ),
        ),
        # written blind to the checks
        Mutant(
            'GPT-2\'s 1024 assumed as the context of a model without pos_emb instead of its cfg["context_length"]',
            (
                (
                    'supported_context_length = model.cfg["context_length"]',
                    "supported_context_length = 1024",
                ),
            ),
        ),
    ],
}
