"""Processes for checks that run code in several ranks: forked from the loaded submission, meeting
on a free port of 127.0.0.1 (gloo), each under a hard wall-clock limit so that a rendezvous that never
completes fails the check instead of hanging it. The ranks send plain data back through pipes."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.connection
import os
import socket
import sys
import time
import types
from collections.abc import Callable

import torch

from autograder.compare import expect, expect_list, fail
from autograder.no_dynamo import skip_dynamo_import
from autograder.split import as_data, dumps, loads

# Seconds a group of ranks may run before the check kills it: far above what a correct solution
# takes (well under a second), far below the grader's limit for the exercise.
RANKS_DEADLINE_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ddp_without_dynamo() -> None:
    """Spare a check's process the import of PyTorch's compiler (seconds on a small CPU), which
    DistributedDataParallel only consults: its constructor reads one setting of `torch._dynamo`
    (`get_optimize_ddp_mode`, "ddp_optimizer" by default, stood in for while the constructor runs),
    and its forward is marked not to be compiled. Nothing in the checks compiles; code that imports
    `torch._dynamo` for real gets the real module."""
    if "torch._dynamo" in sys.modules:
        return
    from torch.nn.parallel import DistributedDataParallel

    skip_dynamo_import()
    stand_in = types.SimpleNamespace(utils=types.SimpleNamespace(get_optimize_ddp_mode=lambda: "ddp_optimizer"))
    construct = DistributedDataParallel.__init__

    @functools.wraps(construct)
    def construct_without_dynamo(self, *args, **kwargs):
        if "torch._dynamo" in sys.modules:
            return construct(self, *args, **kwargs)
        torch._dynamo = stand_in
        try:
            return construct(self, *args, **kwargs)
        finally:
            if vars(torch).get("_dynamo") is stand_in:
                del torch._dynamo

    DistributedDataParallel.__init__ = construct_without_dynamo
    wrapper_code = torch._compile._disable_dynamo(lambda: None).__code__
    for value in vars(DistributedDataParallel).values():
        while callable(value) and getattr(value, "__code__", None) is not wrapper_code:
            value = getattr(value, "__wrapped__", None)  # under @contextmanager, say
        original = getattr(value, "__wrapped__", None)
        if original is not None and getattr(original, "__dynamo_disable", None) is None:
            original.__dynamo_disable = original


def _child(work: Callable, index: int, port: int, env: dict, connection) -> None:
    """One forked process: run work(index), send back its data or how it failed, exit at once."""
    try:
        torch.set_num_threads(1)
        # The processes' own warnings (c10d's socket timeouts) would only clutter the report.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        ddp_without_dynamo()
        os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), **env})
        progress = {"stage": "starting"}
        try:
            result = {"status": "ok", "data": work(index, progress)}
        except NotImplementedError:
            result = {"status": "not_implemented", "stage": progress["stage"]}
        except BaseException as error:  # noqa: BLE001 - whatever the student's code raises is reported
            result = {"status": "error", "stage": progress["stage"], "error": f"{type(error).__name__}: {error}"[:300]}
        connection.send_bytes(dumps(as_data(result)))
    except BaseException as error:  # noqa: BLE001 - e.g. outputs that are not data
        with contextlib.suppress(BaseException):
            connection.send_bytes(dumps({"status": "error", "stage": "sending results", "error": str(error)[:300]}))
    finally:
        os._exit(0)


def run_processes(work: Callable, count: int, deadline_s: float, env: dict | None = None) -> list[dict]:
    """Fork `count` processes that call work(index, progress) (index 0..count-1) and meet on a free
    port of 127.0.0.1; gather what each sends back. A process still running `deadline_s` after the
    start is killed and reported as {"status": "hung", "stage": ...}; so is one that died silently.

    Forking keeps the loaded submission: its functions exist in the children without an import.
    """
    context = multiprocessing.get_context("fork")
    port = free_port()
    pipes = [context.Pipe(duplex=False) for _ in range(count)]
    processes = [
        context.Process(target=_child, args=(work, index, port, env or {}, pipes[index][1]), daemon=True)
        for index in range(count)
    ]
    start = time.monotonic()
    for process in processes:
        process.start()
    for _, sender in pipes:
        sender.close()
    results: list[dict | None] = [None] * count
    waiting = {pipes[index][0]: index for index in range(count)}
    while waiting and (remaining := deadline_s - (time.monotonic() - start)) > 0:
        for ready in multiprocessing.connection.wait(list(waiting), timeout=remaining):
            index = waiting.pop(ready)
            try:
                results[index] = loads(ready.recv_bytes())
            except (EOFError, OSError, ValueError):
                results[index] = {"status": "hung", "elapsed": time.monotonic() - start}
    for process in processes:
        if process.is_alive():
            process.kill()
        process.join()
    elapsed = time.monotonic() - start
    for receiver, _ in pipes:
        receiver.close()
    results = [result or {"status": "hung", "elapsed": elapsed} for result in results]
    for result in results:
        if isinstance(result, dict) and result.get("status") == "not_implemented":
            raise NotImplementedError(f"{result.get('stage')} is not implemented yet")
    return results


def expect_ranks_finished(results: list, count: int, what: str) -> list:
    """Every rank sent its data back; fails naming the rank, the step and the error otherwise."""
    expect_list(results, count, f"the results of {what}")
    for rank, result in enumerate(results):
        expect(isinstance(result, dict) and "status" in result, f"{what}: rank {rank} sent back nothing")
        if result["status"] == "hung":
            fail(
                f"{what}: rank {rank} was still running after {RANKS_DEADLINE_S:g} s and was stopped; a rank waits "
                "forever when the ranks disagree on the collectives they run (the same number of batches on "
                "every rank? every rank calling the same functions?)"
            )
        if result["status"] == "error":
            fail(f"{what}: on rank {rank}, {result['stage']} raised {result['error']}")
    return [result["data"] for result in results]
