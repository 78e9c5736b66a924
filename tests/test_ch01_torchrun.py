"""The reference DDP script of chapter 1, run for real: `torchrun --nproc_per_node=2` on the CPU
(gloo), offline. It trains, and only rank 0 logs and saves."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import torch

from autograder import loader, manifest, paths
from autograder.checks.ranks import free_port


def reference_script() -> str:
    """The `%%writefile ddp_train.py` cell of the reference notebook, as the file it writes."""
    notebook = loader.read_notebook(paths.solution_notebook("ch01"))
    cells = notebook["cells"]
    source = loader.cell_source(cells[loader.cell_index(cells, manifest.load().chapter("ch01"), "ch01.ddp")])
    first, _, body = source.partition("\n")
    assert first.split() == ["%%writefile", "ddp_train.py"]
    return body


@pytest.mark.slow
def test_torchrun_trains_on_two_processes_and_only_rank0_logs_and_saves(tmp_path):
    if not paths.solution_notebook("ch01").exists():
        pytest.skip("needs solutions/ch01")
    (tmp_path / "ddp_train.py").write_text(reference_script(), encoding="utf-8")
    torchrun = shutil.which("torchrun") or pytest.skip("torchrun is not on PATH")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [torchrun, "--nproc_per_node=2", f"--master_port={free_port()}", "--tee=3", "ddp_train.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    # --tee=3 prefixes every line a worker writes with its rank: "[default0]:..." for rank 0.
    epochs = [line for line in lines if "epoch" in line]
    assert len(epochs) == 5 and all(line.startswith("[default0]:") for line in epochs), lines
    assert not [line for line in lines if line.startswith("[default1]:")], lines
    losses = [float(line.rsplit(" ", 1)[1]) for line in epochs]
    assert losses[-1] < losses[0] / 2, losses
    summary = next(line for line in lines if "accuracy" in line)
    assert "world size 2, backend gloo" in summary and float(summary.rsplit(" ", 1)[1]) > 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp_train.py", "model.pth"]
    state = torch.load(tmp_path / "model.pth", weights_only=True)
    assert list(state) == [f"layers.{i}.{kind}" for i in (0, 2, 4) for kind in ("weight", "bias")]


def test_the_loader_runs_the_writefile_cell_as_the_script_without_its_main(tmp_path, monkeypatch):
    if not paths.solution_notebook("ch01").exists():
        pytest.skip("needs solutions/ch01")
    notebook = loader.read_notebook(paths.solution_notebook("ch01"))
    cells = notebook["cells"]
    source = loader.cell_source(cells[loader.cell_index(cells, manifest.load().chapter("ch01"), "ch01.ddp")])
    assert loader.strip_magics(source) == "\n" + reference_script()
    monkeypatch.chdir(tmp_path)
    loaded = loader.load_notebook(paths.solution_notebook("ch01"), manifest.load().chapter("ch01"))
    assert not loaded.problems and callable(loaded.main) and callable(loaded.train_ddp)
    assert list(tmp_path.iterdir()) == [], "main() ran while loading"
