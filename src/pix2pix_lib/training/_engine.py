"""The engine: *when* things happen in a training run, for any recipe (see :mod:`._recipe`).

:class:`Engine` owns epochs and steps, the budgets (``max_steps``, ``max_seconds``, the schedule),
stop signals, the run lock and the run folder's rules, checkpoints and exact resume, DDP, precision
and gradient scaling, logging, the progress bar and the validation schedule. A recipe owns *what*
happens: its networks, ``configure_optimizers``, ``training_step``, ``validation_step`` and the
sample grid. The engine reaches the recipe only through the members of :class:`TrainingRecipe`
(the recipe module imports this one, never the other way round).

A run ends in one of three ways:

* a budget or the schedule: the epoch end (scheduler step when the epoch is complete, validation
  with the norm-mode choice, samples) runs on the final weights, then the final checkpoint is saved
  (a scheduled epoch-end checkpoint is written in the background while training goes on, see
  :mod:`._background_writer`; every way out of :meth:`Engine.fit` waits for it);
* a stop signal (Ctrl-C, SIGTERM, SIGUSR1): a checkpoint is saved at once, without validating;
* an exception while fetching data (an unreadable file, a dataset bug): the last complete step is
  saved first, then the exception propagates; a NaN/inf loss saves nothing over the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .._version import __version__
from ..devices import DeviceLike, autocast, resolve_precision, select_device
from ..models.state_dict import CheckpointError
from ..models.task import TaskMetadata
from ..norm_modes import NormMode, inference_norm, resolve_norm_mode
from ._background_writer import BackgroundWriter, Snapshots
from ._checkpoint import CheckpointManager, check_trainer_state, fill_checkpoint, read_checkpoint, write_checkpoint
from ._config import CUDA_GRAPH_MODES, TrainConfig
from ._data_loading import (
    check_training_files, eval_dataloader, first_items, split_for_validation, task_from_dataset, train_dataloader,
    unwrap_dataset,
)
from ._distributed import all_reduce_sum, barrier, convert_sync_batchnorm, init_distributed, wrap_data_parallel
from ._ema import weights_source
from ._loggers import RunLoggers
from ._loss_log import LossLog, NonFiniteLossError
from ._rng import capture_rng_state, mix_seed, restore_rng_state, seed_everything
from ._run_lock import RunLock, RunLockedError
from ._samples import write_grid
from ._signals import StopRequest, TrainingInterrupted, deferred_signals, stop_signals
from ._validation import candidate_norm_modes, choose_norm_mode, dataset_means, per_mode_metrics
from ._working_weights import WorkingWeights, recast_after_steps, resolve_channels_last, resolve_weight_copies

__all__ = ["Engine", "RunExistsError", "TrainingRecipe"]

Batch = dict[str, Any]
#: Entries of a checkpoint's trainer state that the engine writes (a recipe adds keys of its own).
ENGINE_STATE = ("optimizer_g", "optimizer_d", "schedulers", "grad_scaler", "rng", "counters", "ema", "data_split")


class RunExistsError(RuntimeError):
    """``fit()`` without ``resume`` on a folder that already holds a run: it would be overwritten."""


class TrainingRecipe(Protocol):
    """What the engine needs of a recipe (:class:`~pix2pix_lib.training.GANRecipe` has all of it)."""

    optimizer_names: ClassVar[tuple[str, ...]]
    task: TaskMetadata
    averages: dict[str, Any]

    def network_names(self) -> tuple[str, ...]: ...
    def inference_networks(self) -> list[nn.Module]: ...
    def checkpoint_models(self) -> dict[str, tuple[nn.Module, TaskMetadata | None]]: ...
    def configure_optimizers(self) -> Any: ...
    def training_step(self, batch: Batch, batch_idx: int) -> Mapping[str, Tensor]: ...
    def validation_step(self, batch: Batch, batch_idx: int) -> Mapping[str, Tensor]: ...
    def make_sample_grid(self, batch: Batch) -> Tensor: ...
    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Batch: ...
    def on_train_start(self) -> None: ...
    def on_train_epoch_start(self) -> None: ...
    def on_train_batch_end(self, outputs: Mapping[str, Tensor], batch: Any, batch_idx: int) -> None: ...
    def on_train_epoch_end(self) -> None: ...
    def on_train_end(self) -> None: ...
    def on_validation_result(self, metrics: dict[str, float]) -> None: ...
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None: ...
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None: ...


class Engine:
    """Runs a recipe: ``Engine(config, device)``, then :meth:`attach` a recipe and :meth:`fit`.

    Attributes:
        config: the :class:`TrainConfig`. device: where training runs. distributed: the DDP context.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``. grad_scaler: the fp16 loss scaler (disabled otherwise).
        cuda_graphs: whether the compiled networks replay CUDA graphs (``compile="reduce-overhead"`` on a GPU).
        epoch: completed epochs. global_step: completed optimisation steps. step_in_epoch: steps of
        the unfinished epoch. run_dir: the run folder. interrupted / stop_reason: how the last
        :meth:`fit` ended. last_validation: the numbers of the last :meth:`validate`.
    """

    def __init__(self, config: TrainConfig | None = None, device: DeviceLike = "auto") -> None:
        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        config.validate()
        self.config = config
        self.distributed, self.device = init_distributed(select_device(device))
        self.precision = resolve_precision(config.precision, self.device)
        self.channels_last = resolve_channels_last(config.channels_last, self.precision, self.device)
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.cuda_graphs = config.compile_mode in CUDA_GRAPH_MODES and self.device.type == "cuda"
        self.grad_scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.weight_copies = resolve_weight_copies(
            config.weight_copies, self.precision, self.device, self.distributed.is_distributed, config.compile
        )
        if config.sync_batchnorm and self.distributed.is_distributed and self.device.type == "cpu":
            raise ValueError("TrainConfig.sync_batchnorm=True needs GPUs: SyncBatchNorm does not run on CPU")
        seed_everything(config.seed + self.distributed.rank)
        self.run_dir = Path(config.out_dir)
        self.epoch = self.global_step = self.step_in_epoch = 0
        self.interrupted = False
        self.stop_reason: str | None = None
        self.last_validation: dict[str, float] | None = None
        self.sample_batch: Batch | None = None
        self.validation_dataset: Dataset | None = None
        self.recipe: TrainingRecipe | None = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: list[Any] = []
        self._training_models: dict[tuple[str, bool], Any] = {}
        self._working_weights: dict[str, WorkingWeights] = {}
        self._data_split: dict[str, Any] | None = None
        self._losses = LossLog()
        self._loggers = RunLoggers()
        self._bar: Any = None
        self._last_saved_step: int | None = None
        self._writer = BackgroundWriter()  # the epoch-end checkpoints (see ._background_writer)
        self._snapshots = Snapshots()
        self._loader_generator = torch.Generator()
        self._stop_request = StopRequest()

    # --- the recipe's networks ------------------------------------------------------------------------
    def place(self, module: nn.Module) -> nn.Module:
        """``module`` on :attr:`device` in the engine's memory format (SyncBatchNorm under DDP when configured)."""
        if not isinstance(module, nn.Module):
            raise TypeError(f"networks must be torch.nn.Module instances, got {type(module).__name__}")
        if self.config.sync_batchnorm and self.distributed.is_distributed:
            module = convert_sync_batchnorm(module)
        return module.to(self.device, memory_format=self.memory_format)

    def attach(self, recipe: TrainingRecipe) -> None:
        """Make ``recipe`` the one this engine runs; its optimizers are built on first use."""
        self.recipe = recipe

    def _recipe(self) -> TrainingRecipe:
        if self.recipe is None:
            raise RuntimeError("no recipe is attached to this engine: call engine.attach(recipe) first")
        return self.recipe

    def setup(self) -> None:
        """Build the optimizers and schedulers (``recipe.configure_optimizers()``, once) and the DDP
        wrappers of every network, in the same order on every rank."""
        if self.optimizers:
            return
        recipe = self._recipe()
        configured = recipe.configure_optimizers()
        optimizers, schedulers = configured if isinstance(configured, tuple) and len(configured) == 2 and isinstance(configured[0], (list, tuple)) else (configured, [])
        optimizers = list(optimizers) if isinstance(optimizers, (list, tuple)) else [optimizers]
        names = recipe.optimizer_names
        if len(optimizers) != len(names):
            raise ValueError(
                f"{type(recipe).__name__}.configure_optimizers() returned {len(optimizers)} optimizer(s); "
                f"its optimizer_names expect {len(names)}: {', '.join(names)}"
            )
        self.optimizers = dict(zip(names, optimizers))
        self.schedulers = list(schedulers)
        if self.weight_copies:
            recast_after_steps(optimizers, self._working_weights)
        for name in recipe.network_names():
            self.training_model(name)

    def training_model(self, name: str) -> Any:
        """What a step calls for the recipe's network ``name``: its DDP wrapper when distributed, its
        :class:`~._working_weights.WorkingWeights` with ``weight_copies``, compiled with ``config.compile``.

        A network whose parameters are all frozen (``requires_grad=False``, e.g. inside
        :meth:`GANRecipe.toggled_optimizer` of another network) is called without its DDP wrapper, so
        that gradients flowing through it to another network do not pass its gradient reducer.
        """
        module = getattr(self._recipe(), name)
        frozen = not any(parameter.requires_grad for parameter in module.parameters())
        key = (name, frozen)
        if key not in self._training_models:
            if self.weight_copies:  # one set of copies per network, frozen or not
                if name not in self._working_weights:
                    self._working_weights[name] = WorkingWeights(module)
                model: Any = self._working_weights[name]
            else:
                model = module if frozen else wrap_data_parallel(module, self.device)
            mode = self.config.compile_mode
            self._training_models[key] = model if mode is None else torch.compile(model, mode=mode)
        return self._training_models[key]

    # --- precision --------------------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of :attr:`precision` (a no-op for fp32)."""
        return autocast(self.device, self.precision)

    def manual_backward(self, loss: Tensor) -> None:
        """``loss.backward()``, through the fp16 loss scaler when it is on."""
        (self.grad_scaler.scale(loss) if self.grad_scaler.is_enabled() else loss).backward()

    def step_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``, through the fp16 loss scaler when it is on (skipped on inf/NaN gradients,
        then the scale is updated, as Lightning's mixed-precision plugin does after each step)."""
        if self.grad_scaler.is_enabled():
            self.grad_scaler.step(optimizer)
            self.grad_scaler.update()
        else:
            optimizer.step()

    # --- steps --------------------------------------------------------------------------------------------
    def _step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        recipe = self._recipe()
        self.setup()
        if self.cuda_graphs:  # each step is a new generation of the compiled graphs' output buffers
            torch.compiler.cudagraph_mark_step_begin()
        outputs = recipe.training_step(recipe.transfer_batch_to_device(batch, self.device, 0), batch_idx)
        self.global_step += 1
        return {name: value.detach() for name, value in outputs.items()}

    def train_on_batch(self, batch: Any) -> dict[str, float]:
        """One optimisation step on a batch as a DataLoader yields it; the losses as floats.

        Counts the step in :attr:`global_step`; raises :class:`NonFiniteLossError` on a NaN/inf loss.
        (:meth:`fit` reads losses only every ``log_every`` steps; this reads them every call.)
        """
        self.train_mode()
        outputs = self._step(batch, self.step_in_epoch)
        self._losses.append(self.global_step, self.epoch, outputs)
        rows, error = self._losses.flush(lr=0.0)
        if error is not None:
            raise error
        return {name: value for name, value in rows[0].items() if name in outputs}

    def train_mode(self) -> None:
        """Put every network the recipe checkpoints in training mode."""
        for module, _ in self._recipe().checkpoint_models().values():
            module.train()

    # --- validation -------------------------------------------------------------------------------------------
    def validate(self, dataset: Dataset) -> dict[str, float]:
        """Dataset means of the recipe's ``validation_step`` (all processes contribute under DDP), scored in
        each deterministic norm mode of the recipe's inference generator.

        The mode with the lowest ``l1`` becomes the task's ``recommended_norm_mode`` (every mode's numbers
        go into ``task.metrics``); its numbers are returned under the plain names, next to
        ``l1_running``, ``l1_per_image``, ... (see :mod:`._validation`).
        """
        recipe = self._recipe()
        networks = recipe.inference_networks()
        loader = eval_dataloader(
            dataset, self.distributed, batch_size=self.config.val_batch_size,
            num_workers=self.config.num_workers, pin_memory=self.device.type == "cuda",
        )  # fmt: skip
        previous, self.validation_dataset = self.validation_dataset, dataset
        try:
            results = {
                mode: self._validate_in_mode(networks, mode, loader) for mode in candidate_norm_modes(networks[0])
            }
        finally:
            self.validation_dataset = previous
        winner = choose_norm_mode(results, resolve_norm_mode(None, networks[0]))
        recipe.task = recipe.task.replace(
            recommended_norm_mode=winner, metrics={**recipe.task.metrics, **per_mode_metrics(results, "val_")}
        )
        result = {**results[winner], **per_mode_metrics(results)}
        self.last_validation = result
        recipe.on_validation_result(result)
        return result

    def _validate_in_mode(self, networks: list[nn.Module], mode: NormMode, loader: DataLoader) -> dict[str, float]:
        recipe = self._recipe()
        batches = (recipe.transfer_batch_to_device(batch, self.device, 0) for batch in loader)
        with contextlib.ExitStack() as stack:
            for network in networks[1:]:  # the first one is switched by dataset_means
                stack.enter_context(inference_norm(network, mode))
            return dataset_means(networks[0], mode, batches, recipe.validation_step, self.device)

    # --- fit ------------------------------------------------------------------------------------------------
    def fit(
        self, train_dataset: Dataset, val_dataset: Dataset | None = None, resume: str | os.PathLike[str] | None = None
    ) -> None:
        """Train the recipe on ``train_dataset`` until the schedule ends, ``max_steps`` or ``max_seconds``;
        validate on ``val_dataset`` every ``val_every`` epochs and on the final weights.

        ``resume``: a checkpoint or run folder to continue from, or ``"auto"``: the run in ``run_dir`` if
        there is one, else a new run. Without ``resume``, a ``run_dir`` that already holds a run is
        refused (:class:`RunExistsError`): a new run never overwrites an old one.
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
            resume = self._resume_source(resume)
            if resume is not None:
                self.load_checkpoint(resume)
            self.setup()
            recipe = self._recipe()
            recipe.task = task_from_dataset(recipe.task, train_dataset)
            check_training_files(train_dataset, progress=self.config.progress_bar and self.distributed.is_main_process)
            recorded, self._data_split = self._data_split, None
            train_dataset, val_dataset, self._data_split = split_for_validation(
                train_dataset, val_dataset, recorded, self.config, say=tqdm.write if self.distributed.is_main_process else None
            )
            loader, sampler = train_dataloader(
                train_dataset, self.distributed, batch_size=self.config.batch_size, num_workers=self.config.num_workers,
                seed=self.config.seed, pin_memory=self.device.type == "cuda", generator=self._loader_generator,
            )  # fmt: skip
            sample_source = val_dataset if val_dataset is not None and len(val_dataset) > 0 else train_dataset  # type: ignore[arg-type]
            with torch.random.fork_rng(devices=[]):  # random augmentation here must not shift a resumed run's draws
                self.sample_batch = first_items(sample_source, self.config.num_samples)
            self._open_outputs()
            self.validation_dataset = val_dataset if val_dataset is not None and len(val_dataset) > 0 else None  # type: ignore[arg-type]
            with stop_signals() as self._stop_request:
                self._fit_epochs(loader, sampler)
        except BaseException as error:
            self._writer.join()  # the write in flight completes; its own failure is reported with this one
            failure = self._writer.take_error()
            if failure is not None and failure is not error and hasattr(error, "add_note"):
                error.add_note(f"the background checkpoint write failed too: {failure!r}")
            raise
        else:
            self._writer.wait()  # fit() returns with every checkpoint complete (or raises the writer's error)
        finally:
            self.validation_dataset = None
            self._close_bar()
            self._loggers.close()
            if lock is not None:
                lock.release()

    def _resume_source(self, resume: str | os.PathLike[str] | None) -> str | os.PathLike[str] | None:
        """What to resume from; refuses a new run over an existing one (see :meth:`fit`)."""
        self._writer.wait()  # (none is in flight between two fit() calls)
        held = CheckpointManager(self.run_dir / "checkpoints").latest
        if resume == "auto":
            return self.run_dir if held is not None else None
        if held is None or self._last_saved_step is not None:  # nothing there, or this trainer's own run
            return resume
        if resume is not None and _inside(read_checkpoint(resume).directory, self.run_dir):
            return resume
        step = read_checkpoint(held).counters["global_step"]
        raise RunExistsError(
            f"{self.run_dir} already holds a run (its latest checkpoint is at step {step}); a new run would overwrite it. "
            f"Continue it with fit(..., resume={str(self.run_dir)!r}) (or resume='auto'; CLI: --resume {self.run_dir}), "
            "or choose another out_dir (CLI: --out)"
        )

    def _fit_epochs(self, loader: DataLoader, sampler: Any) -> None:
        config, recipe = self.config, self._recipe()
        self.interrupted = False
        self.stop_reason = None
        started = time.monotonic()
        self._losses.restart_clock()
        try:
            recipe.on_train_start()
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
                recipe.on_train_epoch_start()
                complete = self._run_epoch(loader, started)
                last_epoch = complete and self.epoch + 1 >= config.total_epochs
                self._end_epoch(complete, final=self.stop_reason is not None or last_epoch)
                self._check_stop(collective=True)
            self._flush_logs()
            if self.distributed.is_main_process and self._last_saved_step != self.global_step:
                self.save_checkpoint()
            recipe.on_train_end()
            barrier()  # ranks leave together, after rank 0 has written its last checkpoint
        except KeyboardInterrupt as interrupt:
            self._save_on_interrupt(interrupt)

    def _save_on_interrupt(self, interrupt: KeyboardInterrupt) -> None:
        self.interrupted = True
        name = interrupt.signal_name if isinstance(interrupt, TrainingInterrupted) else "SIGINT"
        self.stop_reason = f"interrupted ({name})"
        self._close_bar()
        with deferred_signals(redeliver=False):  # a checkpoint in flight completes first (its error is raised here)
            self._writer.wait()
        if isinstance(interrupt, TrainingInterrupted) and interrupt.immediate:
            latest = self.checkpoint_manager().latest  # a step may be half done: save nothing
            print(f"\n{name}: stopped at once; the last checkpoint is {latest}", flush=True)
            return
        with deferred_signals(redeliver=False):  # a second signal must not cut this save short
            self._flush_logs()  # raises NonFiniteLossError instead of saving bad weights
            if self.distributed.is_main_process and self._last_saved_step != self.global_step:
                path = self.save_checkpoint()
                print(f"\n{name}: stopped at step {self.global_step}; checkpoint saved to {path}", flush=True)

    def _batches(self, loader: DataLoader) -> Iterator[Any]:
        """The loader's batches; an exception while fetching one saves the last complete step first."""
        iterator = iter(loader)
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except Exception:
                self._save_before_error()
                raise
            yield batch

    def _save_before_error(self) -> None:
        self._writer.join()  # a write in flight completes; a failure of it is reported by fit() with this error
        if self._writer.failed or not self.distributed.is_main_process:
            return
        if self._last_saved_step == self.global_step or self.global_step == 0:
            return
        with contextlib.suppress(NonFiniteLossError):
            self._flush_logs()
            path = self.save_checkpoint()
            tqdm.write(f"training stopped by an error at step {self.global_step}; checkpoint saved to {path}")

    def _run_epoch(self, loader: DataLoader, started: float) -> bool:
        """Steps over the rest of the current epoch; True when the epoch ran to its end."""
        config, recipe = self.config, self._recipe()
        self._bar = tqdm(
            total=self.step_in_epoch + len(loader), initial=self.step_in_epoch,
            desc=f"epoch {self.epoch + 1}/{config.total_epochs}",
            disable=not (config.progress_bar and self.distributed.is_main_process), dynamic_ncols=True, leave=False,
        )  # fmt: skip
        steps_in_epoch = self.step_in_epoch + len(loader)
        for batch in self._batches(loader):
            outputs = self._step(batch, self.step_in_epoch)
            self.step_in_epoch += 1
            self._losses.append(self.global_step, self.epoch, outputs)
            self._bar.update(1)
            recipe.on_train_batch_end(outputs, batch, self.step_in_epoch - 1)
            if self.global_step % config.log_every == 0:
                self._flush_logs()
            if self._step_limit_reached():
                self.stop_reason = f"max_steps={config.max_steps} reached"
            elif config.max_seconds is not None and time.monotonic() - started >= config.max_seconds:
                self.stop_reason = f"max_seconds={config.max_seconds:g} reached"
            if self.stop_reason is not None:
                break
            # a stop signal: the step is complete and queued for the log (under DDP all ranks agree, at log steps)
            self._check_stop(collective=self.global_step % config.log_every == 0)
        self._close_bar()
        return self.step_in_epoch >= steps_in_epoch

    def _end_epoch(self, complete: bool, final: bool) -> None:
        """The end of an epoch (``complete``) or of training inside one (``final``): the scheduler step and
        the epoch count (complete epochs only), samples and validation (as scheduled, and always on the
        final weights), the checkpoint (as scheduled; the final one is saved by the caller)."""
        config, recipe = self.config, self._recipe()
        self._flush_logs()
        if complete:
            for scheduler in self.schedulers:
                scheduler.step()
            self.epoch += 1
            self.step_in_epoch = 0
        scheduled = complete and not final
        self._evaluate_and_sample(
            sample=final or (scheduled and _every(config.sample_every, self.epoch)),
            validate=final or (scheduled and _every(config.val_every, self.epoch)),
        )
        if scheduled and _every(config.checkpoint_every, self.epoch) and self.distributed.is_main_process:
            self._save_in_background()
        self.train_mode()
        if complete:
            recipe.on_train_epoch_end()

    def _evaluate_and_sample(self, sample: bool = True, validate: bool = True) -> None:
        recipe = self._recipe()
        if sample and self.config.sample_every > 0 and self.sample_batch is not None:
            grid = recipe.make_sample_grid(self.sample_batch)  # every rank: keeps SyncBatchNorm collectives aligned
            if self.distributed.is_main_process:
                name = f"epoch-{self.epoch:04d}.png" if self.step_in_epoch == 0 else f"step-{self.global_step:08d}.png"
                write_grid(self.run_dir / "samples" / name, grid)
        dataset = self.validation_dataset
        if not (validate and dataset is not None):
            return
        metrics = self.validate(dataset)
        mode = recipe.task.recommended_norm_mode
        self._loggers.log("val", [{"step": self.global_step, "epoch": self.epoch, **metrics, "norm_mode": mode}])
        if self.distributed.is_main_process:
            summary = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items() if "_" not in name)
            per_mode = ", ".join(f"{name[3:]} {value:.4f}" for name, value in metrics.items() if name.startswith("l1_"))
            tqdm.write(f"step {self.global_step}: validation {summary}; norm mode {mode}" + (f" (l1 {per_mode})" if per_mode else ""))

    # --- checkpoints ------------------------------------------------------------------------------------------
    def checkpoint_manager(self) -> CheckpointManager:
        """The manager of ``run_dir/checkpoints`` (numbered folders, ``latest``, ``keep_last``)."""
        return CheckpointManager(self.run_dir / "checkpoints", keep_last=self.config.keep_last)

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, scheduler, grad-scaler and RNG states, counters, the EMA's update count and the data
        split (weights are saved apart), before ``on_save_checkpoint`` adds the recipe's own."""
        self.setup()
        recipe = self._recipe()
        state: dict[str, Any] = {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()}
        state.update(
            schedulers=[scheduler.state_dict() for scheduler in self.schedulers],
            grad_scaler=self.grad_scaler.state_dict(), rng=capture_rng_state(), counters=self._counters(),
        )  # fmt: skip
        if recipe.averages:
            state["ema"] = next(iter(recipe.averages.values())).state_dict()  # all averages update together
        if self._data_split is not None:
            state["data_split"] = dict(self._data_split)
        return state

    def save_checkpoint(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Save weights, task and trainer state atomically to the folder ``path``, or (None) as the next
        numbered checkpoint in ``run_dir/checkpoints`` (updating ``latest``, keeping ``keep_last``).
        Returns once the checkpoint is complete on disk (a background epoch-end write in flight completes
        first). Signals that arrive while it is written are acted on after the save, not during it."""
        self._writer.wait()
        write = self._checkpoint_write(path, snapshot=False)
        with deferred_signals():  # a signal that arrives now is raised once the save is complete
            directory = write()
            self._last_saved_step = self.global_step
        return directory

    def _save_in_background(self) -> None:
        """The epoch-end checkpoint: the state is copied now, on this thread, and written (atomically, as by
        :meth:`save_checkpoint`) on the background writer while training goes on (see :mod:`._background_writer`)."""
        self._writer.wait()  # at most one write in flight; the previous one's error is raised here
        self._snapshots.begin()  # (so its CPU buffers are free again)
        write = self._checkpoint_write(None, snapshot=True)
        self._last_saved_step = self.global_step
        self._writer.submit(write, name=f"the checkpoint of step {self.global_step}")

    def _checkpoint_write(self, path: str | os.PathLike[str] | None, snapshot: bool) -> Callable[[], Path]:
        """What writes the checkpoint of this moment to ``path`` (None: the next numbered one); with ``snapshot``
        it writes CPU copies of the tensors, which later steps cannot change."""
        recipe = self._recipe()
        state = self.state_dict()
        recipe.on_save_checkpoint(state)
        check_trainer_state(state, set(state) - set(ENGINE_STATE), f"{type(recipe).__name__}.on_save_checkpoint")
        meta = {
            **self._counters(),
            "train_config": self.config.to_dict(),
            "trainer": f"{type(recipe).__module__}.{type(recipe).__qualname__}",  # for people; never imported
            "precision": self.precision,
            "world_size": self.distributed.world_size,
            "pix2pix_lib_version": __version__,
        }
        models = recipe.checkpoint_models()
        if snapshot:
            models, state = self._snapshots.models(models), self._snapshots.state(state)
        if path is not None:
            return partial(write_checkpoint, path, models, state, meta)
        fill = partial(fill_checkpoint, models=models, trainer_state=state, meta=meta)
        return partial(self.checkpoint_manager().save, self.global_step, fill)

    def load_checkpoint(self, path: str | os.PathLike[str], verify: bool | None = None) -> None:
        """Restore weights, task, optimizer/scheduler/scaler/RNG states, counters and the data split from a
        checkpoint (or a run folder's latest), then call the recipe's ``on_load_checkpoint``. The config is kept.
        ``verify=False`` skips the files' SHA-256 check (see docs/security.md)."""
        self._writer.wait()  # a checkpoint being written is complete before any is read
        self.setup()
        recipe = self._recipe()
        checkpoint = read_checkpoint(path, verify=verify)
        models = recipe.checkpoint_models()
        saved = list(checkpoint.meta.get("models", ["generator", "discriminator"]))
        for role, (module, _) in models.items():  # with EMA: generator/ is the average, generator_raw/ the trained weights
            checkpoint.load_weights(module, weights_source(role, saved, list(models)))
        state = checkpoint.trainer_state(map_location="cpu")
        try:
            for name, optimizer in self.optimizers.items():
                optimizer.load_state_dict(state[name])
            if len(state["schedulers"]) != len(self.schedulers):
                raise ValueError(f"it has {len(state['schedulers'])} scheduler states, the trainer {len(self.schedulers)}")
            for scheduler, scheduler_state in zip(self.schedulers, state["schedulers"]):
                scheduler.load_state_dict(scheduler_state)
            if state["grad_scaler"]:
                self.grad_scaler.load_state_dict(state["grad_scaler"])
            counters = state["counters"]
            self.epoch, self.global_step = int(counters["epoch"]), int(counters["global_step"])
            self.step_in_epoch = int(counters["step_in_epoch"])
            restore_rng_state(state["rng"])
            for average in recipe.averages.values():  # a checkpoint saved without EMA: the first update copies
                average.load_state_dict(state.get("ema", {"updates": 0}))
            self._data_split = state.get("data_split")
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"{checkpoint.directory}: the trainer state does not fit this trainer: {error!r}") from error
        if self.distributed.rank > 0:  # rank 0's streams were saved; the others get fresh distinct ones
            torch.manual_seed(mix_seed(self.config.seed, self.global_step, self.distributed.rank))
        if checkpoint.task is not None:
            recipe.task = checkpoint.task
        self._last_saved_step = self.global_step
        recipe.on_load_checkpoint(state)

    def _counters(self) -> dict[str, int]:
        return {"epoch": self.epoch, "global_step": self.global_step, "step_in_epoch": self.step_in_epoch}

    # --- stopping together ------------------------------------------------------------------------------
    def _any_rank(self, flag: bool) -> bool:
        """``flag`` of this process, or of any process under DDP (a collective: every rank must call it)."""
        if not self.distributed.is_distributed:
            return flag
        return bool(all_reduce_sum(torch.tensor([float(flag)], device=self.device)).item() > 0)

    def _check_stop(self, collective: bool) -> None:
        """Raise :class:`TrainingInterrupted` when a stop signal arrived (under DDP checked only where
        ``collective`` is True, at the same steps on every rank, so that all ranks stop together)."""
        requested = self._stop_request.signal_name is not None
        if self.distributed.is_distributed:
            if not collective:
                return
            requested = self._any_rank(requested)
        if requested:
            raise TrainingInterrupted(self._stop_request.signal_name or "a stop signal on another process")

    def _step_limit_reached(self) -> bool:
        return self.config.max_steps is not None and self.global_step >= self.config.max_steps

    # --- logs -------------------------------------------------------------------------------------------------
    def _flush_logs(self) -> None:
        """Read the queued per-step losses (one host sync), log them, and stop on a non-finite loss."""
        if not len(self._losses):
            return
        lr = next(iter(self.optimizers.values())).param_groups[0]["lr"] if self.optimizers else 0.0
        rows, error = self._losses.flush(lr)
        self._loggers.log("train", rows)
        if error is not None:
            self._writer.join()  # `latest` as it is once the write in flight is complete
            latest = self.checkpoint_manager().latest
            kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written"
            raise NonFiniteLossError(
                f"{error}; training stopped, {kept}. Try a lower lr, precision='fp32' or check the data.", error.step
            )
        if self._bar is not None and rows:
            names = [name for name in rows[-1] if name not in ("step", "epoch", "lr", "step_time")]
            means = {name: sum(row[name] for row in rows if name in row) / sum(name in row for row in rows) for name in names}
            self._bar.set_postfix({name: f"{value:.3f}" for name, value in means.items()}, refresh=False)

    def _open_outputs(self) -> None:
        self._loggers.close()
        if not self.distributed.is_main_process:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config.to_json(self.run_dir / "train_config.json")
        self._loggers.open(self.run_dir, self.global_step, self.config.tensorboard)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _every(interval: int, epoch: int) -> bool:
    return interval > 0 and epoch % interval == 0


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (both resolved)."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents
