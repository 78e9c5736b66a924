"""Hidden checks of chapter 15: fresh tokens, documents, shard layouts, batch sizes, configurations and
run lengths drawn from the seed. Every case class (round trip and every kind of bad file, shards that
split documents, several ranks across shard and epoch boundaries, restores, accumulation with clipping,
no_sync and autocast, wrapped and compiled checkpoints, evaluation in one and two processes, DDP) is
drawn on every seed; the seed changes values and sizes only."""

from __future__ import annotations

import gc
import json
import random

import numpy as np
import torch
import torch.nn.functional as F

from autograder.checks.ranks import RANKS_DEADLINE_S, expect_ranks_finished, run_processes
from autograder.checks.test_ch15 import (
    EOT,
    MAGIC,
    WRAPPERS,
    TinyLM,
    accumulated_of,
    checkpoint,
    data_loader,
    ddp,
    evaluated_in_ranks_of,
    evaluated_of,
    evaluation,
    expect,
    expect_accumulated,
    expect_averaged_over_ranks,
    expect_batches,
    expect_evaluated,
    expect_flops,
    expect_groups,
    expect_initialised,
    expect_llmc_file,
    expect_picked,
    expect_rendered,
    expect_restored,
    expect_resumed,
    expect_shards_written,
    expect_trained_in_ranks,
    flop_counts_of,
    flops,
    grad_accum,
    groups_of,
    init_and_groups,
    initialised_of,
    llmc_bytes,
    loader_batches,
    parameters_of,
    picked_of,
    raised,
    rendered_of,
    restored_of,
    resumed_of,
    scratch_dir,
    shards,
    shards_written_of,
    token_batch,
    trained_in_ranks_of,
    write_llmc,
)
from autograder.compare import expect_close, expect_equal_tensor, expect_list, expect_number
from autograder.no_dynamo import compiler_free
from autograder.split import split

WORDS = (
    "the king and queen of denmark walk slowly through a cold castle while seven ravens watch from "
    "towers above; hark! what light breaks yonder? 1603 ducats, said Polonius, or 42 - no more."
).split()


def sentences(rng: random.Random, count: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 14))).capitalize() for _ in range(count)]


# ---------------------------------------------------------------- ch15.shards


def _shards_case(seed):
    rng = random.Random(seed)
    length = rng.randint(20, 300)
    tokens = [0, 65535] + [rng.randrange(65536) for _ in range(length)]
    rng.shuffle(tokens)
    body = [rng.randrange(50257) for _ in range(rng.randint(3, 40))]
    n = len(body)
    bad = {
        "a wrong magic number": llmc_bytes(body, magic=MAGIC + rng.randint(1, 10_000)),
        "version 2": llmc_bytes(body, version=rng.choice([0, 2, 3])),
        "a truncated body": llmc_bytes(body)[: -rng.randint(1, 2 * n - 1)],
        "a body longer than its count": llmc_bytes(body + body[: rng.randint(1, n)], count=n),
        "a header cut short": llmc_bytes(body)[: rng.randint(4, 1020)],
    }
    out_of_range = [[rng.randrange(100), 65536 + rng.randrange(1000)], [-rng.randint(1, 500)]]
    return {
        "tokens": tokens,
        "body": body,
        "bad": {name: list(blob) for name, blob in bad.items()},
        "out_of_range": out_of_range,
        "documents": sentences(rng, rng.randint(4, 12)),
        "shard_size": rng.randint(5, 40),
        "workers": rng.randint(1, 3),
        "prefix": rng.choice(["edu", "shakespeare", "fineweb"]),
    }


def _shards(sub, case):
    with scratch_dir("ch15-hidden-shards-") as folder:
        sub.write_datafile(folder / "w.bin", np.array(case["tokens"]))
        written = (folder / "w.bin").read_bytes()
        read = np.array(sub.read_datafile(write_llmc(folder / "r.bin", case["body"])))
        refusals = {}
        for name, blob in case["bad"].items():
            (folder / "bad.bin").write_bytes(bytes(blob))
            refusals[name] = raised(lambda: np.array(sub.read_datafile(folder / "bad.bin")))
        writes = [raised(lambda t=t: sub.write_datafile(folder / "x.bin", t)) for t in case["out_of_range"]]
    return {
        "written": written,
        "read": torch.from_numpy(read.astype(np.int64)),
        "read_dtype": str(read.dtype),
        "refusals": refusals,
        "writes": writes,
        "shards": shards_written_of(sub, case["documents"], case["shard_size"], case["workers"], case["prefix"]),
        "document": torch.from_numpy(np.array(sub.tokenize_document(case["documents"][0])).astype(np.int64)),
    }


@shards
@split(setup=_shards_case, produce=_shards)
def test_shards_agree_on_hidden_tokens_and_documents(outputs, case, gpt2):
    """hidden: random tokens written and read, bad files and tokens refused, random documents in random shard sizes"""
    expect_llmc_file(
        outputs["written"], case["tokens"], f"write_datafile's file of {len(case['tokens'])} hidden tokens"
    )
    expect(outputs["read_dtype"] == "uint16", f"read_datafile returned dtype {outputs['read_dtype']}; expected uint16")
    expect_equal_tensor(outputs["read"], torch.tensor(case["body"]), "read_datafile's tokens of a hidden llm.c file")
    for name, got in outputs["refusals"].items():
        expect(got == "ValueError", f"read_datafile on a file with {name}: {got}; raise ValueError")
    for tokens, got in zip(case["out_of_range"], outputs["writes"], strict=True):
        expect(got == "ValueError", f"write_datafile({tokens}): {got}; raise ValueError for a token outside [0, 65536)")
    expect_equal_tensor(
        outputs["document"],
        torch.tensor([EOT, *gpt2.encode_ordinary(case["documents"][0])]),
        "tokenize_document of a hidden document",
    )
    expect_shards_written(outputs["shards"], case["documents"], case["shard_size"], case["prefix"], gpt2)


# ---------------------------------------------------------------- ch15.data_loader


def _loader_case(seed):
    rng = random.Random(seed)
    layouts = []
    for world in (1, 2, 3):
        B, T = rng.randint(1, 3), rng.randint(2, 6)
        step = B * T * world
        lengths = [rng.randint(1, 2 * step) for _ in range(rng.randint(3, 6))]
        lengths[rng.randrange(len(lengths))] = rng.randint(step + 1, 3 * step)  # at least one step in the stream
        if world == 1:  # the epoch's last window ends exactly at the stream's end
            lengths[-1] += (1 - sum(lengths)) % step
        steps = sum(lengths) // step + rng.randint(2, 5)  # past the end of an epoch
        layouts.append({"lengths": lengths, "B": B, "T": T, "world": world, "steps": steps})
    world = rng.randint(1, 3)
    lengths = [rng.randint(15, 40) for _ in range(4)]
    past_first_shard = lengths[0] // (6 * world) + 1  # restored in a later shard, where its own position matters
    restores = [
        (world, rng.randrange(world), rng.randint(1, past_first_shard - 1 or 1)),
        (world, rng.randrange(world), rng.randint(past_first_shard, past_first_shard + 3)),
        (1, 0, sum(lengths) // 6 + lengths[0] // 6 + rng.randint(2, 4)),  # the second epoch, past its first shard
    ]
    return {"layouts": layouts, "restore": {"lengths": lengths, "restores": restores}}


def _loaders(sub, case):
    batches = [loader_batches(sub, c["lengths"], c["B"], c["T"], c["world"], c["steps"]) for c in case["layouts"]]
    r = case["restore"]
    return {"batches": batches, "restored": restored_of(sub, r["lengths"], 2, 3, [tuple(x) for x in r["restores"]])}


@data_loader
@split(setup=_loader_case, produce=_loaders)
def test_loader_agrees_on_hidden_layouts(outputs, case):
    """hidden: 1, 2 and 3 ranks over random shard lengths past an epoch's end; restores at random points"""
    expect_list(outputs["batches"], len(case["layouts"]), "the loaders' batches")
    for c, out in zip(case["layouts"], outputs["batches"], strict=True):
        what = f"hidden shards of {c['lengths']} tokens, {c['world']} rank(s), B={c['B']}, T={c['T']}"
        expect_batches(out, c["B"], c["T"], c["world"], c["steps"], c["lengths"], what)
    expect_restored(outputs["restored"], 2, 3, [tuple(x) for x in case["restore"]["restores"]])


# ---------------------------------------------------------------- ch15.grad_accum


def _accum_case(seed):
    rng = random.Random(seed)
    cases = []
    for clip, autocast, wrapped in (
        (None, False, False),
        (rng.choice([0.02, 0.05, 0.1]), False, False),
        (None, False, True),
        (None, True, False),
    ):
        k, rows, T = rng.randint(2, 5), rng.randint(1, 3), rng.randint(2, 5)
        batches = [list(token_batch(seed * 100 + len(cases) * 10 + i, (rows, T))) for i in range(k)]
        cases.append({"batches": batches, "clip": clip, "autocast": autocast, "wrapped": wrapped})
    return {"cases": cases, "ddp_steps": rng.randint(1, 3), "ddp_accum": rng.randint(2, 3)}


def _ddp_train_step(sub, steps: int, accum: int) -> list:
    """train_step on DistributedDataParallel(TinyLM(8)) in two gloo ranks, the all-reduces counted."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel

    def work(rank: int, progress: dict) -> dict:
        torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
        model = TinyLM(8)
        wrapped = DistributedDataParallel(model)
        reductions = []
        wrapped.register_comm_hook(None, lambda state, bucket: reductions.append(1) or allreduce_hook(None, bucket))
        optimizer = compiler_free(torch.optim.SGD)(wrapped.parameters(), lr=0.5)
        progress["stage"] = f"train_step on rank {rank}"
        for step in range(steps):
            batches = [token_batch(900 + 100 * step + 10 * rank + i, (2, 3)) for i in range(accum)]
            sub.train_step(wrapped, optimizer, batches)
        del wrapped, optimizer
        gc.collect()
        torch.distributed.destroy_process_group()
        return {"reductions": len(reductions), "final": parameters_of(model)}

    return run_processes(work, 2, RANKS_DEADLINE_S)


def _accumulations(sub, case):
    return {
        "cases": [
            accumulated_of(sub, [tuple(b) for b in c["batches"]], c["clip"], c["autocast"], c["wrapped"])
            for c in case["cases"]
        ],
        "ranks": _ddp_train_step(sub, case["ddp_steps"], case["ddp_accum"]),
    }


@grad_accum
@split(setup=_accum_case, produce=_accumulations)
def test_accumulation_agrees_on_hidden_batches(outputs, case):
    """hidden: random k and sizes, with clipping, with no_sync, under autocast; under DDP one all-reduce per step"""
    expect_list(outputs["cases"], len(case["cases"]), "the train_step results")
    for c, out in zip(case["cases"], outputs["cases"], strict=True):
        what = f"train_step with {len(c['batches'])} hidden micro-batches" + (
            f", grad_clip={c['clip']}" if c["clip"] else ", a model with no_sync" if c["wrapped"] else ""
        )
        expect_accumulated(out, [tuple(b) for b in c["batches"]], c["clip"], c["autocast"], c["wrapped"], what)
    steps, accum = case["ddp_steps"], case["ddp_accum"]
    data = expect_ranks_finished(outputs["ranks"], 2, "train_step under DDP in two processes")
    model = TinyLM(8)
    for step in range(steps):
        batches = [token_batch(900 + 100 * step + 10 * rank + i, (2, 3)) for rank in range(2) for i in range(accum)]
        loss = sum(F.cross_entropy(model(x).flatten(0, 1), y.flatten()) for x, y in batches) / len(batches)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads, strict=True):
                p -= 0.5 * g
    for rank, report in enumerate(data):
        count = expect_number(report.get("reductions"), "the number of all-reduces")
        expect(
            count == steps,
            f"train_step under DDP with {accum} micro-batches ran {count:g} gradient all-reduces in {steps} step(s); "
            "run all but the last backward inside model.no_sync(), for one all-reduce per step",
        )
        for name, want in parameters_of(model).items():
            expect_close(report["final"].get(name), want, f"rank {rank}'s {name} after train_step under DDP", atol=1e-5)


# ---------------------------------------------------------------- ch15.init_and_groups


def _init_case(seed):
    rng = random.Random(seed)
    cfg = {
        "vocab_size": rng.randint(200, 400),
        "context_length": rng.randint(64, 80),
        "emb_dim": rng.choice([64, 96]),
        "n_heads": 4,
        "n_layers": rng.randint(2, 4),
        "drop_rate": 0.0,
        "qkv_bias": rng.random() < 0.5,
    }
    group_cfg = {**cfg, "vocab_size": rng.randint(20, 50), "emb_dim": 8, "n_heads": 2, "context_length": 8}
    calls = [
        {"weight_decay": rng.choice([0.01, 0.1, 0.2]), "learning_rate": rng.choice([1e-4, 6e-4, 3e-3])},
        {
            "weight_decay": rng.choice([0.05, 0.3]),
            "learning_rate": rng.choice([2e-4, 1e-3]),
            "betas": [rng.choice([0.8, 0.9]), rng.choice([0.95, 0.99])],
            "eps": rng.choice([1e-6, 1e-7]),
            "device_type": rng.choice(["cpu", "cuda"]),
        },
    ]
    return {"cfg": cfg, "group_cfg": group_cfg, "calls": calls}


def _inits(sub, case):
    calls = [{k: tuple(v) if k == "betas" else v for k, v in c.items()} for c in case["calls"]]
    return {"init": initialised_of(sub, case["cfg"]), "groups": groups_of(sub, case["group_cfg"], calls)}


@init_and_groups
@split(setup=_init_case, produce=_inits)
def test_init_and_groups_agree_on_hidden_configs(outputs, case):
    """hidden: the initialisation statistics of a random depth and width; groups for random hyperparameters"""
    expect_initialised(outputs["init"], case["cfg"])
    calls = [{k: tuple(v) if k == "betas" else v for k, v in c.items()} for c in case["calls"]]
    expect_groups(outputs["groups"], calls)


# ---------------------------------------------------------------- ch15.flops


def _flops_case(seed):
    rng = random.Random(seed)
    cfgs = {}
    for i, bias in enumerate((True, False, rng.random() < 0.5)):
        heads = rng.choice([1, 2, 4, 12, 16, 25])
        cfgs[f"hidden config {i}"] = {
            "vocab_size": rng.randint(50, 60_000),
            "context_length": rng.choice([16, 128, 1024, 2048, 4096]),
            "emb_dim": heads * rng.randint(4, 128),
            "n_heads": heads,
            "n_layers": rng.randint(1, 48),
            "drop_rate": 0.0,
            "qkv_bias": bias,
        }
    mfu = [[rng.uniform(1e6, 1e10), rng.uniform(1e2, 1e6), rng.uniform(1e12, 1e15)] for _ in range(2)]
    return {"cfgs": cfgs, "mfu": mfu}


@flops
@split(setup=_flops_case, produce=lambda sub, case: flop_counts_of(sub, case["cfgs"], case["mfu"]))
def test_flops_agree_on_hidden_configs(outputs, case):
    """hidden: parameter and FLOP counts of random configurations (with and without qkv bias); MFU"""
    expect_flops(outputs, case["cfgs"], case["mfu"])


# ---------------------------------------------------------------- ch15.checkpoint


def _checkpoint_case(seed):
    rng = random.Random(seed)
    save_at = rng.randint(2, 4)
    return {"save_at": save_at, "total": save_at + rng.randint(2, 4), "dropout": rng.choice([0.2, 0.3, 0.5])}


def _checkpoints(sub, case):
    return [resumed_of(sub, name, case["save_at"], case["total"], case["dropout"]) for name in WRAPPERS]


@checkpoint
@split(setup=_checkpoint_case, produce=_checkpoints)
def test_resume_agrees_on_hidden_runs(outputs, case):
    """hidden: runs of random length stopped at a random step, plain, DDP-wrapped and compiled"""
    expect_list(outputs, len(WRAPPERS), "the resumed runs")
    for name, out in zip(WRAPPERS, outputs, strict=True):
        expect_resumed(out, name, case["save_at"], case["total"])


# ---------------------------------------------------------------- ch15.evaluation


def _evaluation_case(seed):
    rng = random.Random(seed)
    examples = []
    for _ in range(rng.randint(2, 4)):
        ctx = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        endings = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 9))) + "." for _ in range(4)]
        examples.append({"ctx": ctx, "endings": endings, "label": rng.randrange(4), "split": "val"})
    return {
        "eval": [[rng.randint(0, 99), True, rng.randint(1, 6)], [rng.randint(100, 199), False, rng.randint(1, 6)]],
        "ranks": {
            "seed": rng.randint(0, 99),
            "loaders": [rng.randint(0, 99), rng.randint(100, 199)],
            "steps": rng.randint(1, 4),
        },
        "jsonl": "\n".join(json.dumps(example) for example in examples),
        "scoring": [seed * 100 + i for i in range(10)],
    }


def _evaluations(sub, case, gpt2):
    r = case["ranks"]
    return {
        "eval": evaluated_of(sub, [tuple(c) for c in case["eval"]]),
        "ranks": evaluated_in_ranks_of(sub, r["seed"], r["loaders"], r["steps"]),
        "rendered": rendered_of(sub, case["jsonl"], gpt2),
        "picked": picked_of(sub, case["scoring"]),
    }


@evaluation
@split(setup=_evaluation_case, produce=_evaluations)
def test_evaluation_agrees_on_hidden_cases(outputs, case, gpt2):
    """hidden: losses over random steps in both modes and in two ranks; random HellaSwag-format examples; scoring"""
    expect_evaluated(outputs["eval"], [tuple(c) for c in case["eval"]])
    r = case["ranks"]
    expect_averaged_over_ranks(outputs["ranks"], r["seed"], r["loaders"], r["steps"])
    expect_rendered(outputs["rendered"], case["jsonl"], gpt2)
    expect_picked(outputs["picked"], case["scoring"])


# ---------------------------------------------------------------- ch15.ddp


def _ddp_case(seed):
    rng = random.Random(seed)
    return {"steps": rng.randint(1, 3), "accum": rng.randint(1, 3), "lr": rng.choice([0.1, 0.3, 0.5])}


@ddp
@split(setup=_ddp_case, produce=lambda sub, case: trained_in_ranks_of(sub, case["steps"], case["accum"], case["lr"]))
def test_ddp_agrees_on_hidden_runs(outputs, case):
    """hidden: two gloo ranks for a random number of steps and micro-batches against one process"""
    expect_trained_in_ranks(outputs, case["steps"], case["accum"], case["lr"])
