"""Distributed data-parallel plumbing on top of ``torch.distributed``, for runs launched with ``torchrun``.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (plus the rendezvous address); we read
them, join the process group (NCCL on CUDA, gloo on CPU), give each process its own GPU, shard the
data with a :class:`~torch.utils.data.DistributedSampler` and let only rank 0 write files.
There is no launcher of our own: ``torchrun --nproc_per_node=N -m pix2pix_lib train ...``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

__all__ = [
    "DistributedContext",
    "EpochSampler",
    "all_reduce_sum",
    "barrier",
    "convert_sync_batchnorm",
    "init_distributed",
    "shutdown_distributed",
    "wrap_data_parallel",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main_process(self) -> bool:
        """Only the main process (rank 0) logs, shows progress and writes files."""
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> DistributedContext:
        """Read ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` as set by ``torchrun`` (defaults: one process)."""

        def read(name: str, default: int) -> int:
            value = os.environ.get(name, "")
            try:
                return int(value) if value.strip() else default
            except ValueError:
                raise ValueError(f"environment variable {name}={value!r} is not an integer") from None

        world_size = read("WORLD_SIZE", 1)
        rank = read("RANK", 0)
        context = cls(rank=rank, local_rank=read("LOCAL_RANK", rank), world_size=world_size)
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"invalid torchrun environment: RANK={rank}, WORLD_SIZE={world_size}")
        return context


def init_distributed(device: torch.device) -> tuple[DistributedContext, torch.device]:
    """Join the ``torchrun`` process group if there is one; returns the context and this rank's device.

    The backend is NCCL for CUDA and gloo otherwise. On CUDA every process uses ``cuda:LOCAL_RANK``.
    Safe to call when the group already exists (it is then reused) or when not under ``torchrun``.
    """
    context = DistributedContext.from_environment()
    if not context.is_distributed:
        return context, device
    if device.type == "cuda":
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, **kwargs)
    if dist.get_world_size() != context.world_size:
        raise RuntimeError(
            f"the process group has {dist.get_world_size()} processes but WORLD_SIZE={context.world_size}"
        )
    return context, device


def shutdown_distributed() -> None:
    """Leave the process group (call once at the end of a ``torchrun`` script).

    :meth:`Pix2PixTrainer.fit` ends with a :func:`barrier`, so no rank tears down its connections
    while rank 0 still writes its last checkpoint (with gloo that can make rank 0 abort).
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (no-op outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes in place (no-op outside a process group)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def wrap_data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` when running under a process group.

    The module's own parameters are shared with the wrapper, so ``module`` stays the one to save.
    Returns ``module`` itself outside a process group.
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


class EpochSampler(DistributedSampler):
    """Per-epoch shuffled (or ordered) indices for this process, resumable in the middle of an epoch.

    The order of epoch ``e`` is a pure function of ``(seed, e)`` (as in
    :class:`~torch.utils.data.DistributedSampler`, which this is), so a resumed run sees the same
    batches; :attr:`start_index` skips the first indices of the epoch without loading them.
    Works without a process group too (then ``num_replicas=1, rank=0``).
    """

    def __init__(
        self,
        dataset: Dataset,
        context: DistributedContext,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            dataset, num_replicas=context.world_size, rank=context.rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.start_index = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start_index :])

    def __len__(self) -> int:
        return max(self.num_samples - self.start_index, 0)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace BatchNorm layers by SyncBatchNorm when running under a process group."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return module
