"""Data for the trainer: DataLoaders (resumable, sharded under DDP) and the task a dataset implies.

:func:`task_from_dataset` is how a run remembers what it trained: the direction, pixel range,
image size and data of the training set go into the generator's :class:`TaskMetadata`, which every
checkpoint and ``save_pretrained`` folder then carries.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from ..models.task import TaskMetadata
from ..pixels import DEFAULT_PIXEL_RANGE
from ._config import TrainConfig
from ._distributed import DistributedContext, EpochSampler

__all__ = [
    "check_training_files", "eval_dataloader", "first_items", "hold_out", "split_for_validation", "task_from_dataset",
    "train_dataloader", "unwrap_dataset",
]


def train_dataloader(
    dataset: Dataset,
    context: DistributedContext,
    *,
    batch_size: int,
    num_workers: int,
    seed: int,
    pin_memory: bool,
    generator: torch.Generator,
) -> tuple[DataLoader, EpochSampler]:
    """A shuffled, per-rank loader whose :class:`EpochSampler` can start in the middle of an epoch."""
    sampler = EpochSampler(dataset, context, shuffle=True, seed=seed)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=generator,  # reseeded every epoch; workers are new every epoch, so they see it
    )
    return loader, sampler


def eval_dataloader(
    dataset: Dataset, context: DistributedContext, *, batch_size: int, num_workers: int, pin_memory: bool
) -> DataLoader:
    """Rank r takes items r, r + world_size, ...: each item exactly once over all ranks (a
    DistributedSampler would pad with repeats and count some twice in the all-reduced means)."""
    shard = Subset(dataset, range(context.rank, len(dataset), context.world_size))  # type: ignore[arg-type]
    return DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=pin_memory)


def hold_out(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """``(train, validation)``: ``int(len * fraction)`` items chosen by ``seed`` held out (None when that is 0).

    The held-out items come from the dataset's ``evaluation_view()`` when it has one (deterministic
    transforms, as for a test set). The split is a pure function of ``(len, fraction, seed)``, so a
    resumed run holds out the same items.
    """
    count = int(len(dataset) * fraction)  # type: ignore[arg-type]
    if count < 1:
        return dataset, None
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()  # type: ignore[arg-type]
    view = dataset.evaluation_view() if hasattr(dataset, "evaluation_view") else dataset
    return Subset(dataset, sorted(order[count:])), Subset(view, sorted(order[:count]))


def unwrap_dataset(dataset: Dataset) -> Dataset:
    """The dataset under any :class:`~torch.utils.data.Subset` wrappers (e.g. after :func:`hold_out`)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def first_items(dataset: Dataset, count: int) -> dict[str, Any]:
    """The first ``count`` items of ``dataset`` as one batch."""
    items = [dataset[index] for index in range(min(count, len(dataset)))]  # type: ignore[arg-type]
    if not items:
        raise ValueError("cannot draw samples from an empty dataset")
    return default_collate(items)


def _image_size(dataset: Dataset) -> int | None:
    transform = getattr(dataset, "transform_config", None)
    if transform is not None:
        return None if transform.preprocess == "none" else transform.crop_size
    size = getattr(dataset, "size", None)
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def task_from_dataset(task: TaskMetadata | None, dataset: Dataset) -> TaskMetadata:
    """``task`` with what the training ``dataset`` says filled in where ``task`` says nothing.

    Fills ``direction`` (from ``dataset.direction``), ``image_size`` (its crop size), ``trained_on``
    (its folder's name: never an absolute path of the machine it trained on) and the pixel ranges (its ``value_range``). Raises :class:`ValueError` when
    ``task`` and the dataset disagree on the direction or the pixel range: the generator would
    otherwise be saved as doing something it was not trained to do.
    """
    direction = getattr(dataset, "direction", None)
    value_range = getattr(dataset, "value_range", None)
    if task is None:
        task = TaskMetadata(image_size=None)
    if task.direction is not None and direction is not None and task.direction != direction:
        raise ValueError(
            f"the trainer's task says direction={task.direction!r} but the training dataset gives {direction!r} pairs; "
            "make them agree (PairedImageDataset(..., direction=...) decides which half is the input)"
        )
    if value_range is not None and tuple(value_range) != tuple(task.input_range) and task.input_range != DEFAULT_PIXEL_RANGE:
        raise ValueError(
            f"the trainer's task says input_range={task.input_range} but the dataset's value_range is {tuple(value_range)}"
        )
    changes: dict[str, Any] = {}
    if task.direction is None and direction is not None:
        changes["direction"] = direction
    if value_range is not None:
        changes["input_range"] = changes["output_range"] = tuple(value_range)
    bands = getattr(dataset, "band_config", None)  # value scales and RGB view (data/_bands.py); absent: 8-bit
    if bands is not None:
        input_scale, output_scale = bands.recorded_scales
        if task.input_scale is None and input_scale is not None:
            changes["input_scale"] = input_scale
        if task.output_scale is None and output_scale is not None:
            changes["output_scale"] = output_scale
        if task.display_bands is None and bands.display_bands is not None:
            changes["display_bands"] = bands.display_bands
    if task.image_size is None and _image_size(dataset) is not None:
        changes["image_size"] = _image_size(dataset)
    root = getattr(dataset, "root", None)
    if task.trained_on is None and root is not None:
        kind = "pairs" if getattr(dataset, "aligned", True) else "unpaired items"
        changes["trained_on"] = f"{len(dataset)} {kind} from {Path(root).name}"  # type: ignore[arg-type]  # no server paths
    return task.replace(**changes) if changes else task


def check_training_files(dataset: Dataset, progress: bool = True) -> None:
    """Read every training file's header before the first step (datasets with ``check_headers``): unreadable
    files stop the run now, with their list, instead of at a random step -- or, with the dataset's
    ``on_error="skip"``, are left out with a warning."""
    base = unwrap_dataset(dataset)
    check = getattr(base, "check_headers", None)
    if not callable(check):
        return
    errors = check(progress=progress)
    if not errors:
        return
    listed = "\n  ".join(str(error) for error in errors[:20]) + (f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else "")
    if getattr(base, "on_error", "raise") == "skip":
        warnings.warn(f"leaving out {len(errors)} unreadable training pair(s):\n  {listed}", stacklevel=3)
        return
    raise ValueError(
        f"{len(errors)} training file(s) cannot be read; nothing was trained. Fix or remove them, "
        f"or skip them (PairedImageDataset(..., on_error='skip'); CLI: --on-error skip):\n  {listed}"
    )


def split_for_validation(
    train: Dataset, val: Dataset | None, recorded: dict[str, Any] | None, config: TrainConfig,
    say: Callable[[str], Any] | None = None,
) -> tuple[Dataset, Dataset | None, dict[str, Any]]:
    """``(training pairs, validation set, the split to record)``. A new run without ``val`` holds out
    ``config.val_fraction`` of the pairs (:func:`hold_out`); a resumed run follows the ``recorded`` split, so it
    trains on the same pairs whether or not it is given the validation set again. ``say`` prints notices."""
    say = say or (lambda _: None)
    held_out = recorded["validation"] == "held_out" if recorded else val is None and config.val_every > 0
    split = {"validation": "held_out" if held_out else "given" if val is not None else "none"}
    if recorded and recorded["validation"] == "given" and val is None:
        say("this run was validated on a separate set, which is not given now: training continues on every "
            "training pair without validation (pass val_dataset / --val-data to keep validating)")  # fmt: skip
        split = recorded
    if not held_out:
        return train, val, split
    train, held = hold_out(train, config.val_fraction, config.seed)
    if held is not None and val is None:
        say(f"no validation set given: holding out {len(held)} of {len(held) + len(train)} training pairs "  # type: ignore[arg-type]
            f"to validate on and choose the norm mode (val_fraction={config.val_fraction:g})")  # fmt: skip
    return train, held if val is None else val, split
