"""Distributed data-parallel training on CPU: torchrun, 2 processes, gloo on loopback, then a DDP resume.

``pix2pix train`` runs under ``python -m torch.distributed.run`` (what the ``torchrun`` command
runs). A small launcher script patches ``Pix2PixTrainer.on_train_end`` so every rank writes a
checksum of its weights; the test checks the ranks agree, that only rank 0 wrote logs and
checkpoints, and that rank 0's checkpoint holds those weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from safetensors.torch import load_file

from pix2pix_lib.training import CheckpointManager, read_checkpoint

from .helpers import COMMON, write_aligned_folder

LAUNCHER = textwrap.dedent(
    """
    import hashlib, json, os, sys
    from pix2pix_lib import cli
    from pix2pix_lib.training import Pix2PixTrainer

    def on_train_end(self):
        digest = hashlib.sha256()
        for module in (self.generator, self.discriminator):
            for name, tensor in sorted(module.state_dict().items()):
                if "running" not in name and "num_batches" not in name:
                    digest.update(name.encode()); digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        folder = os.environ["CHECKSUM_DIR"]
        with open(os.path.join(folder, f"rank{self.engine.distributed.rank}.json"), "w") as file:
            json.dump({"sha": digest.hexdigest(), "step": self.global_step, "world": self.engine.distributed.world_size}, file)

    Pix2PixTrainer.on_train_end = on_train_end
    sys.exit(cli.main(sys.argv[1:]))
    """
)


def weights_sha(checkpoint_dir: Path) -> str:
    digest = hashlib.sha256()
    for filename in ("generator/model.safetensors", "discriminator/model.safetensors"):
        for name, tensor in sorted(load_file(checkpoint_dir / filename).items()):
            if "running" not in name and "num_batches" not in name:
                digest.update(name.encode())
                digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def torchrun(tmp_path: Path, checksums: Path, *args: str) -> subprocess.CompletedProcess:
    checksums.mkdir(parents=True, exist_ok=True)
    launcher = tmp_path / "launch_train.py"
    launcher.write_text(LAUNCHER)
    env = {**os.environ, "CHECKSUM_DIR": str(checksums), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(launcher), "train",
        *args,
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert result.returncode == 0, f"torchrun failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def read_ranks(checksums: Path) -> list[dict]:
    return [json.loads((checksums / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def train_two_steps(tmp_path: Path) -> tuple[Path, Path, list[dict]]:
    data = tmp_path / "pairs"
    write_aligned_folder(data)
    run = tmp_path / "run"
    result = torchrun(tmp_path, tmp_path / "sums1", "--data", str(data), *COMMON, "--out", str(run), "--max-steps", "2")
    assert result.stdout.count("training on 4 pairs") == 1, "only rank 0 prints"
    return data, run, read_ranks(tmp_path / "sums1")


def test_ddp_two_cpu_processes(tmp_path) -> None:
    _, run, ranks = train_two_steps(tmp_path)
    assert [rank["world"] for rank in ranks] == [2, 2] and [rank["step"] for rank in ranks] == [2, 2]
    assert ranks[0]["sha"] == ranks[1]["sha"], "the two ranks' weights differ after DDP training"

    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2], "only rank 0 may write the log"
    checkpoints = CheckpointManager(run / "checkpoints").checkpoints()
    assert [path.name for path in checkpoints] == ["step-00000002"]
    assert read_checkpoint(run).meta["world_size"] == 2
    assert weights_sha(checkpoints[-1]) == ranks[0]["sha"]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")], "temp folders left behind"


@pytest.mark.slow
def test_ddp_resume(tmp_path) -> None:
    data, run, _ = train_two_steps(tmp_path)
    torchrun(tmp_path, tmp_path / "sums2", "--data", str(data), *COMMON, "--resume", str(run), "--max-steps", "4")
    ranks = read_ranks(tmp_path / "sums2")
    assert [rank["step"] for rank in ranks] == [4, 4] and ranks[0]["sha"] == ranks[1]["sha"]
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]
    assert weights_sha(CheckpointManager(run / "checkpoints").latest) == ranks[0]["sha"]
