"""The machinery of :meth:`Pix2PixTrainer.fit`: epochs, limits, logging, samples, validation, checkpoints, signals.

:class:`TrainingLoop` is the base of :class:`~pix2pix_lib.training.Pix2PixTrainer`. It owns *when*
things happen (the hooks, named as in PyTorch Lightning, are called here); the trainer owns *what*
a step, a validation and a checkpoint are. Subclass the trainer, not this.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .data_loading import first_items, hold_out, task_from_dataset, train_dataloader, unwrap_dataset
from .distributed import EpochSampler, all_reduce_sum, barrier
from .loggers import JsonlLogger, MetricLogger, TensorBoardLogger, tensorboard_available
from .rng import mix_seed
from .run_lock import RunLock, RunLockedError
from .samples import write_grid
from .signals import TrainingInterrupted, deferred_signals, stop_signals

if TYPE_CHECKING:
    from .trainer import Pix2PixTrainer

__all__ = ["NonFiniteLossError", "TrainingLoop"]

Batch = dict[str, Any]


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; :attr:`step` is the first optimisation step where it happened."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class TrainingLoop:
    """Epoch loop, limits, hooks and bookkeeping shared by the trainers (see the module docs)."""

    # --- hooks (no-ops by default) ------------------------------------------------------------------
    def on_train_start(self) -> None:
        """Called once when :meth:`fit` starts (after resuming, before the first step)."""

    def on_train_epoch_start(self) -> None:
        """Called before each epoch's first step (``self.epoch`` is the 0-based epoch about to run)."""

    def on_train_batch_end(self, batch: Batch, logs: dict[str, Tensor]) -> None:
        """Called after every step with the batch and the detached loss tensors (``self.global_step``
        already counts the step). Calling ``.item()`` here synchronises with the GPU every step."""

    def on_train_epoch_end(self) -> None:
        """Called after each full epoch, after the scheduler step, sampling, validation and
        checkpointing of that epoch (``self.epoch`` already counts the finished epoch)."""

    def on_validation_end(self, metrics: dict[str, float]) -> None:
        """Called with the dataset means from :meth:`validate`."""

    def on_train_end(self) -> None:
        """Called once when :meth:`fit` ends normally or through a limit (not on errors or signals)."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add your own state to ``checkpoint`` before it is written (tensors and JSON-able values).

        ``checkpoint`` already holds the trainer's own entries (``optimizer_g``, ``optimizer_d``,
        ``schedulers``, ``grad_scaler``, ``rng``, ``counters``); add new keys, do not change those.
        """

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore what :meth:`on_save_checkpoint` added; called after the trainer restored its own state."""

    # --- fit -----------------------------------------------------------------------------------------
    def fit(
        self: Pix2PixTrainer,
        train_dataset: Dataset,
        val_dataset: Dataset | None = None,
        resume: str | os.PathLike[str] | None = None,
    ) -> None:
        """Train on ``train_dataset`` until the schedule ends (``epochs + epochs_decay``), ``max_steps``
        or ``max_seconds``; validate on ``val_dataset`` every ``val_every`` epochs.

        ``resume``: a checkpoint (or run folder) to continue from; the trainer's own config applies.
        The task (direction, pixel range, image size) is filled in from ``train_dataset`` where the
        trainer's :attr:`task` does not say. Ctrl-C, SIGTERM and SIGUSR1 save a checkpoint and return
        (with :attr:`interrupted` set). A NaN/inf loss raises :class:`NonFiniteLossError` naming the
        step, without saving over the last good checkpoint. A second trainer on the same ``out_dir``
        stops at once with :class:`~pix2pix_lib.training.RunLockedError`.
        """
        if len(train_dataset) == 0:  # type: ignore[arg-type]
            raise ValueError("the training dataset is empty")
        lock = RunLock(self.run_dir) if self.distributed.is_main_process else None
        locked_out: RunLockedError | None = None
        if lock is not None:
            try:
                lock.acquire()  # before anything in run_dir is touched
            except RunLockedError as error:
                locked_out = error
        if self._any_rank(locked_out is not None):  # every rank stops, not only rank 0
            raise locked_out or RunLockedError(f"run folder {self.run_dir} is in use: rank 0 could not lock it")
        try:
            if resume is not None:
                self.load_checkpoint(resume)
            self.set_task_from_dataset(train_dataset)
            if val_dataset is None and self.config.val_every > 0:
                train_dataset, val_dataset = hold_out(train_dataset, self.config.val_fraction, self.config.seed)
                if val_dataset is not None and self.distributed.is_main_process:
                    tqdm.write(
                        f"no validation set given: holding out {len(val_dataset)} of {len(val_dataset) + len(train_dataset)} "  # type: ignore[arg-type]
                        f"training pairs to validate on and choose the norm mode (val_fraction={self.config.val_fraction:g})"
                    )
            loader, sampler = self.train_dataloader(train_dataset)
            sample_source = val_dataset if val_dataset is not None and len(val_dataset) > 0 else train_dataset  # type: ignore[arg-type]
            with torch.random.fork_rng(devices=[]):  # random augmentation here must not shift a resumed run's draws
                self._sample_batch = self.first_items(sample_source, self.config.num_samples)
            self._open_outputs()
            with stop_signals() as self._stop_request:
                self._fit_epochs(loader, sampler, val_dataset)
        finally:
            self._close_bar()
            self._close_outputs()
            if lock is not None:
                lock.release()

    def _fit_epochs(self: Pix2PixTrainer, loader: DataLoader, sampler: Any, val_dataset: Dataset | None) -> None:
        config = self.config
        self.interrupted = False
        self.stop_reason = None
        started = time.monotonic()
        self._window_start = time.perf_counter()
        try:
            self.on_train_start()
            while self.stop_reason is None:
                if self.epoch >= config.total_epochs:
                    self.stop_reason = "schedule finished"
                    break
                if self._step_limit_reached():
                    self.stop_reason = f"max_steps={config.max_steps} reached"
                    break
                self.train_mode()
                sampler.set_epoch(self.epoch)
                set_data_epoch = getattr(unwrap_dataset(loader.dataset), "set_epoch", None)
                if callable(set_data_epoch):  # e.g. UnpairedImageDataset: which B goes with which A
                    set_data_epoch(self.epoch)
                sampler.start_index = min(self.step_in_epoch * config.batch_size, sampler.num_samples)
                self._loader_generator.manual_seed(mix_seed(config.seed, self.epoch, self.distributed.rank))
                self.on_train_epoch_start()
                if self._run_epoch(loader, started):
                    self._end_epoch(val_dataset)
                self._check_stop(collective=True)
            self._flush_logs()
            if self.distributed.is_main_process and self._last_saved_step != self.global_step:
                self.save_checkpoint()
            self.on_train_end()
            barrier()  # ranks leave together, after rank 0 has written its last checkpoint
        except KeyboardInterrupt as interrupt:
            self.interrupted = True
            name = interrupt.signal_name if isinstance(interrupt, TrainingInterrupted) else "SIGINT"
            self.stop_reason = f"interrupted ({name})"
            self._close_bar()
            if isinstance(interrupt, TrainingInterrupted) and interrupt.immediate:
                latest = self.checkpoint_manager().latest  # a step may be half done: save nothing
                print(f"\n{name}: stopped at once; the last checkpoint is {latest}", flush=True)
                return
            with deferred_signals(redeliver=False):  # a second signal must not cut this save short
                self._flush_logs()  # raises NonFiniteLossError instead of saving bad weights
                if self.distributed.is_main_process and self._last_saved_step != self.global_step:
                    path = self.save_checkpoint()
                    print(f"\n{name}: stopped at step {self.global_step}; checkpoint saved to {path}", flush=True)

    def _run_epoch(self: Pix2PixTrainer, loader: DataLoader, started: float) -> bool:
        """Steps over the rest of the current epoch; True when the epoch ran to its end."""
        config = self.config
        self._bar = tqdm(
            total=self.step_in_epoch + len(loader),
            initial=self.step_in_epoch,
            desc=f"epoch {self.epoch + 1}/{config.total_epochs}",
            disable=not (config.progress_bar and self.distributed.is_main_process),
            dynamic_ncols=True,
            leave=False,
        )
        finished = True
        for batch in loader:
            logs = self.training_step(self.transfer_batch_to_device(batch))
            self.global_step += 1
            self.step_in_epoch += 1
            self._pending.append((self.global_step, self.epoch, logs))
            self._bar.update(1)
            self.on_train_batch_end(batch, logs)
            if self.global_step % config.log_every == 0:
                self._flush_logs()
            if self._step_limit_reached():
                self.stop_reason = f"max_steps={config.max_steps} reached"
            elif config.max_seconds is not None and time.monotonic() - started >= config.max_seconds:
                self.stop_reason = f"max_seconds={config.max_seconds:g} reached"
            if self.stop_reason is not None:
                finished = False
                break
            # a stop signal: the step is complete and queued for the log (under DDP all ranks agree, at log steps)
            self._check_stop(collective=self.global_step % config.log_every == 0)
        self._close_bar()
        return finished

    def _end_epoch(self: Pix2PixTrainer, val_dataset: Dataset | None) -> None:
        config = self.config
        self._flush_logs()
        for scheduler in self.schedulers:
            scheduler.step()
        self.epoch += 1
        self.step_in_epoch = 0
        if _every(config.sample_every, self.epoch):
            grid = self.make_sample_grid(self._sample_batch)  # every rank: keeps SyncBatchNorm collectives aligned
            if self.distributed.is_main_process:
                write_grid(self.run_dir / "samples" / f"epoch-{self.epoch:04d}.png", grid)
        if val_dataset is not None and len(val_dataset) > 0 and _every(config.val_every, self.epoch):  # type: ignore[arg-type]
            metrics = self.validate(val_dataset)
            mode = self.task.recommended_norm_mode
            self._log_rows("val", [{"step": self.global_step, "epoch": self.epoch, **metrics, "norm_mode": mode}])
            if self.distributed.is_main_process:
                summary = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items() if "_" not in name)
                per_mode = ", ".join(f"{name[3:]} {value:.4f}" for name, value in metrics.items() if name.startswith("l1_"))
                tqdm.write(f"epoch {self.epoch}: validation {summary}; norm mode {mode}" + (f" (l1 {per_mode})" if per_mode else ""))
        if _every(config.checkpoint_every, self.epoch) and self.distributed.is_main_process:
            self.save_checkpoint()
        self.train_mode()
        self.on_train_epoch_end()

    # --- data ---------------------------------------------------------------------------------------
    def set_task_from_dataset(self: Pix2PixTrainer, dataset: Dataset) -> None:
        """Fill in :attr:`task` from the training dataset (see :func:`.data_loading.task_from_dataset`)."""
        self.task = task_from_dataset(self.task, dataset)

    def train_dataloader(self: Pix2PixTrainer, dataset: Dataset) -> tuple[DataLoader, EpochSampler]:
        """A shuffled loader for this rank whose sampler can start in the middle of an epoch."""
        return train_dataloader(
            dataset, self.distributed, batch_size=self.config.batch_size, num_workers=self.config.num_workers,
            seed=self.config.seed, pin_memory=self.device.type == "cuda", generator=self._loader_generator,
        )  # fmt: skip

    @staticmethod
    def first_items(dataset: Dataset, count: int) -> Batch:
        """The first ``count`` items of ``dataset`` as one batch."""
        return first_items(dataset, count)

    # --- stopping together ---------------------------------------------------------------------------
    def _any_rank(self: Pix2PixTrainer, flag: bool) -> bool:
        """``flag`` of this process, or of any process under DDP (a collective: every rank must call it)."""
        if not self.distributed.is_distributed:
            return flag
        return bool(all_reduce_sum(torch.tensor([float(flag)], device=self.device)).item() > 0)

    def _check_stop(self: Pix2PixTrainer, collective: bool) -> None:
        """Raise :class:`TrainingInterrupted` when a stop signal arrived (on any rank, under DDP: checked
        only where ``collective`` is True, at the same steps on every rank, so that all ranks stop together)."""
        requested = self._stop_request.signal_name is not None
        if self.distributed.is_distributed:
            if not collective:
                return
            requested = self._any_rank(requested)
        if requested:
            raise TrainingInterrupted(self._stop_request.signal_name or "a stop signal on another process")

    # --- logs ----------------------------------------------------------------------------------------
    def _flush_logs(self: Pix2PixTrainer) -> None:
        """Read the pending per-step losses (one host sync), log them, and stop on a non-finite loss."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        now = time.perf_counter()
        step_time = (now - self._window_start) / len(pending)
        self._window_start = now
        names = list(pending[0][2])
        for _, _, logs in pending[1:]:
            names += [name for name in logs if name not in names]
        nan = torch.tensor(float("nan"), device=self.device)
        table = torch.stack(
            [torch.stack([logs.get(name, nan).float().reshape(()) for name in names]) for _, _, logs in pending]
        ).cpu()
        missing = torch.tensor([[name not in logs for name in names] for _, _, logs in pending])
        finite = (torch.isfinite(table) | missing).all(dim=1).tolist()
        lr = self.optimizer_g.param_groups[0]["lr"]
        rows = []
        for (step, epoch, logs), values, ok in zip(pending, table.tolist(), finite):
            if not ok:
                self._log_rows("train", rows)
                bad = {name: value for name, value in zip(names, values) if not math.isfinite(value)}
                latest = self.checkpoint_manager().latest
                kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written"
                raise NonFiniteLossError(
                    f"non-finite loss at step {step} (epoch {epoch + 1}): "
                    + ", ".join(f"{name}={value}" for name, value in bad.items())
                    + f"; training stopped, {kept}. Try a lower lr, precision='fp32' or check the data.",
                    step,
                )
            losses = {name: value for name, value in zip(names, values) if name in logs}  # e.g. d_r1 only where it ran
            rows.append({"step": step, "epoch": epoch + 1, **losses, "lr": lr, "step_time": step_time})
        self._log_rows("train", rows)
        if self._bar is not None:
            means = {name: sum(row[name] for row in rows if name in row) / sum(name in row for row in rows) for name in names}
            self._bar.set_postfix({name: f"{value:.3f}" for name, value in means.items()}, refresh=False)

    def _log_rows(self, stream: str, rows: list[dict[str, float]]) -> None:
        for logger in self._loggers:
            logger.log(stream, rows)

    def _open_outputs(self: Pix2PixTrainer) -> None:
        self._close_outputs()
        if not self.distributed.is_main_process:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config.to_json(self.run_dir / "train_config.json")
        loggers: list[MetricLogger] = [JsonlLogger(self.run_dir, resume_step=self.global_step)]
        if self.config.tensorboard and tensorboard_available():
            loggers.append(TensorBoardLogger(self.run_dir / "tensorboard", resume_step=self.global_step))
        self._loggers = loggers

    def _close_outputs(self) -> None:
        for logger in self._loggers:
            logger.close()
        self._loggers = []

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _step_limit_reached(self: Pix2PixTrainer) -> bool:
        return self.config.max_steps is not None and self.global_step >= self.config.max_steps


def _every(interval: int, epoch: int) -> bool:
    return interval > 0 and epoch % interval == 0
