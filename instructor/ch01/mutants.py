"""Chapter 1's mutants: realistic mistakes written into the reference's exercise cells, by exercise.

Each is a list of (old, new) replacements in the reference cell; the self-test checks that
every one loses points on its exercise with a message that names what is wrong.
"""

from autograder.selftest import Mutant

_BROADCAST_RULE = """        if a == b or b == 1:
            result.append(a)
        elif a == 1:
            result.append(b)
        else:
            raise ValueError"""
_NO_GRAD_FORWARD = """        with torch.no_grad():
            logits = model(features)
"""
_TRY = """        try:
            return bool(is_available())
        except Exception:  # a broken driver may raise anything: not available
            return False
"""
_CUDA_FIRST = """    if available(torch.cuda.is_available):
        return torch.device("cuda")
    if available(torch.backends.mps.is_available):
        return torch.device("mps")
"""
_VALIDATE = """    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1} (world_size {world_size})")
"""
_WRAP = 'ddp_model = DDP(model, device_ids=[rank]) if device.type == "cuda" else DDP(model)'
_SAVE = "torch.save(ddp_model.module.state_dict(), save_path)"
_LOADER = "return DataLoader(dataset, batch_size=batch_size, shuffle=False, sampler=sampler, drop_last=True)"

_IF_CHAIN = (
    "        if a == b or b == 1:\n"
    "            result.append(a)\n"
    "        elif a == 1:\n"
    "            result.append(b)\n"
    "        else:\n"
    "            raise ValueError("
)

_AVAILABLE_TRY = "        try:\n            return bool(is_available())\n        except Exception:  # a broken driver may raise anything: not available\n            return False\n"

_DEVICE_CHAIN = (
    "    if available(torch.cuda.is_available):\n"
    '        return torch.device("cuda")\n'
    "    if available(torch.backends.mps.is_available):\n"
    '        return torch.device("mps")\n'
)

_VALIDATE = (
    "    if world_size < 1 or not 0 <= rank < world_size:\n"
    '        raise ValueError(f"rank {rank} is not in 0..{world_size - 1} (world_size {world_size})")\n'
)

MUTANTS: dict[str, list[Mutant]] = {
    "ch01.broadcasting": [
        Mutant(
            "shapes aligned at the first dimension instead of the last",
            (
                ("a = shape_a[-i] if", "a = shape_a[i - 1] if"),
                ("b = shape_b[-i] if", "b = shape_b[i - 1] if"),
                ("return tuple(reversed(result))", "return tuple(result)"),
            ),
        ),
        Mutant(
            "the larger of the two sizes, without checking that one of them is 1",
            ((_BROADCAST_RULE, "        result.append(max(a, b))\n        if False:\n            raise ValueError"),),
        ),
        Mutant(
            "only the trailing dimensions both shapes have are kept",
            (("range(1, max(len(shape_a), len(shape_b)) + 1)", "range(1, min(len(shape_a), len(shape_b)) + 1)"),),
        ),
        Mutant(
            "the shape returned as a list",
            (("return tuple(reversed(result))", "return list(reversed(result))"),),
        ),
        Mutant(
            "a size of 1 in the first shape kept instead of stretching to the other size (1 against 3 gives 1)",
            (("if a == b or b == 1:", "if a == b or a == 1 or b == 1:"),),
        ),
        Mutant(
            "the broadcast size taken as max(a, b), so a 1 against a 0 gives 1 instead of 0",
            (
                (
                    _IF_CHAIN,
                    "        if a == b or a == 1 or b == 1:\n"
                    "            result.append(max(a, b))\n"
                    "        else:\n"
                    "            raise ValueError(",
                ),
            ),
        ),
        Mutant(
            "a size of 0 treated like a 1 that stretches (3 against 0 gives 3 instead of raising)",
            (("if a == b or b == 1:", "if a == b or b <= 1:"),),
        ),
        Mutant(
            "the sizes collected from the last dimension backwards but never reversed",
            (("return tuple(reversed(result))", "return tuple(result)"),),
        ),
        Mutant(
            "off by one in the range: the leading dimension of the longer shape is lost",
            (
                (
                    "range(1, max(len(shape_a), len(shape_b)) + 1)",
                    "range(1, max(len(shape_a), len(shape_b)))",
                ),
            ),
        ),
        Mutant(
            "incompatible sizes raise RuntimeError (as torch does) instead of ValueError",
            (("            raise ValueError(", "            raise RuntimeError("),),
        ),
        Mutant(
            "incompatible sizes never rejected: the second shape's size is taken instead of raising",
            (
                (
                    _IF_CHAIN,
                    "        if a == b or b == 1:\n"
                    "            result.append(a)\n"
                    "        else:\n"
                    "            result.append(b)\n"
                    "        if False:\n"
                    "            raise ValueError(",
                ),
            ),
        ),
    ],
    "ch01.logistic_grads": [
        Mutant(
            "gradient sign flipped: (y - p) instead of (p - y)",
            (("error = (p - y) / x.shape[0]", "error = (y - p) / x.shape[0]"),),
        ),
        Mutant(
            "gradients summed over the examples, not averaged",
            (("error = (p - y) / x.shape[0]", "error = p - y"),),
        ),
        Mutant(
            "divided by the number of features d instead of the number of examples n",
            (("error = (p - y) / x.shape[0]", "error = (p - y) / x.shape[1]"),),
        ),
        Mutant(
            "the score z used in place of the probability p = sigmoid(z)",
            (("error = (p - y) / x.shape[0]", "error = (z - y) / x.shape[0]"),),
        ),
        Mutant(
            "an extra factor p(1 - p), as in the chain rule of a squared error",
            (("error = (p - y) / x.shape[0]", "error = (p - y) * p * (1 - p) / x.shape[0]"),),
        ),
        Mutant(
            "the loss summed over the examples, not averaged",
            (
                (
                    "loss = F.binary_cross_entropy_with_logits(z, y)",
                    'loss = F.binary_cross_entropy_with_logits(z, y, reduction="sum")',
                ),
            ),
        ),
        Mutant(
            "the bias b left out of the logits z = x @ w",
            (("z = x @ w + b  # (n,)", "z = x @ w  # (n,)"),),
        ),
        Mutant(
            "grad_b divided by n twice (the mean of an error that is already divided by n)",
            (("grad_b = error.sum()", "grad_b = error.mean()"),),
        ),
        Mutant(
            "grad_b returned with shape (1,) (keepdim=True) instead of a 0-dim tensor",
            (("grad_b = error.sum()", "grad_b = error.sum(dim=0, keepdim=True)"),),
        ),
        Mutant(
            "grad_w summed over the wrong dimension: one value per example (n,) instead of per feature (d,)",
            (("grad_w = x.T @ error  # (d,)", "grad_w = (x * error.unsqueeze(1)).sum(dim=1)  # (d,)"),),
        ),
        Mutant(
            "computed without torch.no_grad() or detach, so the results track gradients when w requires grad",
            (("    with torch.no_grad():\n", "    if True:\n"),),
        ),
        Mutant(
            "the gradients also written to w.grad and b.grad, as backward() would",
            (
                (
                    "        grad_b = error.sum()\n",
                    "        grad_b = error.sum()\n        w.grad = grad_w.clone()\n        b.grad = grad_b.clone()\n",
                ),
            ),
        ),
    ],
    "ch01.compute_accuracy": [
        Mutant("no model.eval(): dropout stays on while evaluating", (("    model = model.eval()\n", ""),)),
        Mutant(
            "no torch.no_grad(): every forward pass builds a graph",
            ((_NO_GRAD_FORWARD, "        logits = model(features)\n"),),
        ),
        Mutant(
            "the accuracy returned as a tensor", (("return correct / total", "return torch.tensor(correct / total)"),)
        ),
        Mutant(
            "divided by batch_size for every batch, also the short last one",
            (("total += labels.numel()", "total += dataloader.batch_size"),),
        ),
        Mutant(
            "the number of correct predictions returned, not the fraction",
            (("return correct / total", "return float(correct)"),),
        ),
        Mutant(
            "the predicted class is the argmax over the batch (dim=0)",
            (("torch.argmax(logits, dim=1)", "torch.argmax(logits, dim=0)"),),
        ),
        Mutant(
            "the accuracies of the batches averaged, so a smaller last batch weighs as much as a full one",
            (
                (
                    "correct += (predictions == labels).sum().item()",
                    "correct += (predictions == labels).float().mean().item()",
                ),
                ("total += labels.numel()", "total += 1"),
            ),
        ),
        Mutant(
            "returns a tensor instead of a Python float (.item() forgotten)",
            (("correct += (predictions == labels).sum().item()", "correct += (predictions == labels).sum()"),),
        ),
        Mutant(
            "the total counts feature values (features.numel()) instead of examples",
            (("total += labels.numel()", "total += features.numel()"),),
        ),
        Mutant(
            "the class predicted as probability of class 1 above 0.5, which only works for two classes",
            (
                (
                    "predictions = torch.argmax(logits, dim=1)",
                    "predictions = (torch.softmax(logits, dim=1)[:, 1] > 0.5).long()",
                ),
            ),
        ),
        Mutant(
            "the model put in train() mode instead of eval()",
            (("model = model.eval()", "model = model.train()"),),
        ),
    ],
    "ch01.get_device": [
        Mutant(
            "mps checked before cuda",
            (
                (
                    _CUDA_FIRST,
                    '    if available(torch.backends.mps.is_available):\n        return torch.device("mps")\n'
                    '    if available(torch.cuda.is_available):\n        return torch.device("cuda")\n',
                ),
            ),
        ),
        Mutant(
            "no try/except: an is_available() that raises escapes", ((_TRY, "        return bool(is_available())\n"),)
        ),
        Mutant(
            "an is_available() that raises counts as available",
            (
                (
                    _TRY,
                    "        try:\n            return bool(is_available())\n        except Exception:\n            return True\n",
                ),
            ),
        ),
        Mutant(
            "device names returned as strings",
            (
                ('return torch.device("cuda")', 'return "cuda"'),
                ('return torch.device("mps")', 'return "mps"'),
                ('return torch.device("cpu")', 'return "cpu"'),
            ),
        ),
        Mutant(
            "mps never considered",
            (('    if available(torch.backends.mps.is_available):\n        return torch.device("mps")\n', ""),),
        ),
        Mutant(
            "torch.backends.mps.is_built() asked instead of is_available()",
            (("available(torch.backends.mps.is_available)", "available(torch.backends.mps.is_built)"),),
        ),
        Mutant(
            "one try around both checks: a raising cuda check falls straight back to cpu without trying mps",
            (
                (
                    _DEVICE_CHAIN,
                    "    try:\n"
                    "        if torch.cuda.is_available():\n"
                    '            return torch.device("cuda")\n'
                    "        if torch.backends.mps.is_available():\n"
                    '            return torch.device("mps")\n'
                    "    except Exception:\n"
                    "        pass\n",
                ),
            ),
        ),
        Mutant(
            "only AttributeError caught (mps missing on an old torch), so a driver error still propagates",
            (
                (
                    "        except Exception:  # a broken driver may raise anything: not available\n",
                    "        except AttributeError:\n",
                ),
            ),
        ),
        Mutant(
            "cuda tested with device_count() > 0 instead of is_available()",
            (("available(torch.cuda.is_available)", "available(lambda: torch.cuda.device_count() > 0)"),),
        ),
        Mutant(
            "get_device memoised with functools.lru_cache, so it keeps the first answer when availability changes",
            (
                (
                    "def get_device() -> torch.device:",
                    "import functools\n\n\n@functools.lru_cache(maxsize=None)\ndef get_device() -> torch.device:",
                ),
            ),
        ),
    ],
    "ch01.ddp": [
        Mutant("ddp_setup never checks rank and world_size: a rank too many waits for ever", ((_VALIDATE, ""),)),
        Mutant(
            "ddp_setup rejects only ranks >= world_size, so rank -1 joins as torchrun's RANK",
            ((_VALIDATE, '    if rank >= world_size:\n        raise ValueError("bad rank")\n'),),
        ),
        Mutant(
            "ddp_setup always picks NCCL, also without CUDA",
            (('backend = "nccl" if torch.cuda.is_available() else "gloo"', 'backend = "nccl"'),),
        ),
        Mutant(
            "DistributedSampler(dataset) without num_replicas and rank",
            (
                (
                    "sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True)",
                    "sampler = DistributedSampler(dataset)",
                ),
            ),
        ),
        Mutant(
            "a shuffling DataLoader instead of a DistributedSampler: every rank sees all the data",
            ((_LOADER, "return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)"),),
        ),
        Mutant(
            "no sampler.set_epoch: every epoch repeats the first epoch's order",
            (
                (
                    "        train_loader.sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank\n",
                    "",
                ),
            ),
        ),
        Mutant(
            "the model is never wrapped in DDP: each rank trains alone",
            ((_WRAP, "ddp_model = model"), (_SAVE, "torch.save(ddp_model.state_dict(), save_path)")),
        ),
        Mutant(
            "the checkpoint saved on every rank",
            (("if rank == 0 and save_path is not None:", "if save_path is not None:"),),
        ),
        Mutant(
            "every rank prints its loss",
            (('        if rank == 0:\n            print(f"epoch', '        if True:\n            print(f"epoch'),),
        ),
        Mutant(
            "the DDP wrapper's state_dict saved: every name starts with 'module.'",
            ((_SAVE, "torch.save(ddp_model.state_dict(), save_path)"),),
        ),
        Mutant(
            "DDP(model, device_ids=[rank]) also on the CPU", ((_WRAP, "ddp_model = DDP(model, device_ids=[rank])"),)
        ),
        Mutant("cleanup leaves the process group in place", (("    dist.destroy_process_group()\n", "    pass\n"),)),
        Mutant(
            "the last batch's loss returned for each epoch instead of the epoch's mean",
            (("losses.append(total / max(batches, 1))", "losses.append(loss.item())"),),
        ),
        Mutant(
            "no optimizer.zero_grad(): gradients pile up across steps", (("            optimizer.zero_grad()\n", ""),)
        ),
        Mutant(
            "the DistributedSampler made with shuffle=False, so the order never changes between epochs",
            (
                (
                    "sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True)",
                    "sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False)",
                ),
            ),
        ),
        Mutant(
            "the DataLoader given shuffle=True as well as the sampler (mutually exclusive: it raises)",
            (
                (
                    "DataLoader(dataset, batch_size=batch_size, shuffle=False, sampler=sampler, drop_last=True)",
                    "DataLoader(dataset, batch_size=batch_size, shuffle=True, sampler=sampler, drop_last=True)",
                ),
            ),
        ),
        Mutant(
            "no DistributedSampler: a shuffling DataLoader, so every rank trains on the whole dataset",
            (
                (
                    "DataLoader(dataset, batch_size=batch_size, shuffle=False, sampler=sampler, drop_last=True)",
                    "DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)",
                ),
                (
                    "        train_loader.sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank\n",
                    "",
                ),
            ),
        ),
        Mutant(
            "the sampler given (rank, world_size) positionally, which DistributedSampler reads as num_replicas=rank, rank=world_size",
            (
                (
                    "sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True)",
                    "sampler = DistributedSampler(dataset, rank, world_size, shuffle=True)",
                ),
            ),
        ),
        Mutant(
            "the forward pass runs through the unwrapped model, so DDP never averages the gradients and the ranks drift apart",
            (
                (
                    "loss = F.cross_entropy(ddp_model(features), labels)",
                    "loss = F.cross_entropy(model(features), labels)",
                ),
            ),
        ),
        Mutant(
            "the gradients all-reduced by hand on top of DDP, summing the already averaged gradients",
            (
                (
                    "            loss.backward()  # DDP averages the gradients of all ranks here\n",
                    "            loss.backward()  # DDP averages the gradients of all ranks here\n"
                    "            for param in ddp_model.parameters():\n"
                    "                dist.all_reduce(param.grad)\n",
                ),
            ),
        ),
        Mutant(
            "the model only wrapped in DDP inside the epoch loop, so with no epochs the ranks keep their own weights",
            (
                (
                    '    ddp_model = DDP(model, device_ids=[rank]) if device.type == "cuda" else DDP(model)\n',
                    "    ddp_model = model\n",
                ),
                (
                    "        train_loader.sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank\n",
                    "        train_loader.sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank\n"
                    "        if not isinstance(ddp_model, DDP):\n"
                    '            ddp_model = DDP(model, device_ids=[rank]) if device.type == "cuda" else DDP(model)\n',
                ),
            ),
        ),
        Mutant(
            "the state_dict saved after the first epoch instead of after the last",
            (
                (
                    "    if rank == 0 and save_path is not None:\n        torch.save(",
                    "    if False:\n        torch.save(",
                ),
                (
                    "        losses.append(total / max(batches, 1))\n",
                    "        losses.append(total / max(batches, 1))\n"
                    "        if rank == 0 and save_path is not None and epoch == 0:\n"
                    "            torch.save(ddp_model.module.state_dict(), save_path)\n",
                ),
            ),
        ),
        Mutant(
            "the epoch loss divided by the number of examples instead of the number of batches",
            (("losses.append(total / max(batches, 1))", "losses.append(total / len(train_loader.dataset))"),),
        ),
        Mutant(
            "cleanup waits at a barrier but never calls destroy_process_group, so the group stays initialised",
            (("    dist.destroy_process_group()\n", "    dist.barrier()\n"),),
        ),
        Mutant(
            "off by one in the rank check: rank == world_size accepted",
            (("not 0 <= rank < world_size", "not 0 <= rank <= world_size"),),
        ),
        Mutant(
            "the two argument checks joined with and instead of or, so a rank outside 0..world_size-1 is never rejected",
            (
                (
                    "if world_size < 1 or not 0 <= rank < world_size:",
                    "if world_size < 1 and not 0 <= rank < world_size:",
                ),
            ),
        ),
        Mutant(
            "the timeout not passed to init_process_group, so a wrong world size hangs for the default 30 minutes",
            (
                (
                    "dist.init_process_group(backend=backend, rank=rank, world_size=world_size, timeout=timeout)",
                    "dist.init_process_group(backend=backend, rank=rank, world_size=world_size)",
                ),
            ),
        ),
        Mutant(
            "MASTER_ADDR and MASTER_PORT overwritten with localhost:12345 instead of only defaulted",
            (
                ('os.environ.setdefault("MASTER_ADDR", "localhost")', 'os.environ["MASTER_ADDR"] = "localhost"'),
                ('os.environ.setdefault("MASTER_PORT", "12345")', 'os.environ["MASTER_PORT"] = "12345"'),
            ),
        ),
        Mutant(
            "the DataLoader keeps a last incomplete batch (drop_last=False)",
            (("sampler=sampler, drop_last=True)", "sampler=sampler, drop_last=False)"),),
        ),
    ],
}
