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
            "argmax over the batch dimension",
            (
                (
                    "predicted_labels = torch.argmax(logits, dim=-1)",
                    "predicted_labels = torch.argmax(logits, dim=0)[:logits.shape[0]]",
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
            "returns the class number",
            (('return "spam" if predicted_label == 1 else "not spam"', "return predicted_label"),),
        ),
    ],
}
