"""The recipe: *what* a GAN training run does, run by the :class:`~._engine.Engine` (which decides *when*).

:class:`GANRecipe` is to this library what a ``LightningModule`` is to PyTorch Lightning: it owns the
networks (generators and discriminators, by name), ``configure_optimizers``, ``training_step``,
``validation_step`` and the sample grid, and it gives a step the helpers that make a multi-network
update short:

* :meth:`toggled_optimizer` -- only this optimizer's parameters take gradients inside the block (the
  other networks are frozen, and called without their DDP wrappers), as Lightning's;
* :meth:`manual_backward` and :meth:`backward_and_step` -- backward (and the optimizer step) through
  the engine's precision and fp16 loss scaler;
* :meth:`training_model` -- a network as a step should call it (DDP, weight copies, compiled);
* pieces any recipe can use: the generators' weight averages (``config.ema_decay``, :attr:`averages`,
  updated by :meth:`update_averages`) and the lazy R1 penalty (:attr:`r1`, ``config.r1_gamma``).

The hooks keep PyTorch Lightning's names *and* signatures (``training_step(batch, batch_idx)``,
``on_train_batch_end(outputs, batch, batch_idx)``, ``transfer_batch_to_device(batch, device,
dataloader_idx)``, ``on_save_checkpoint(checkpoint)``, ...); the library's own hooks have names of
their own (:meth:`on_validation_result`, :meth:`network_task`). Losses returned by a step are detached
by the engine.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..devices import DeviceLike, precision_forward
from ..models.task import TaskMetadata
from ..norm_modes import inference_norm, resolve_norm_mode
from ..pretrained.checkpoint_layout import CHECKPOINTS_DIR
from ._engine import Engine
from ._checkpoint import read_checkpoint
from ._config import TrainConfig
from ._data_loading import first_items
from ._ema import GeneratorEMA, raw_folder
from ._losses import GANLoss, feature_matching_loss
from ._optim import adam, scaled_lr
from ._regularizers import LazyR1
from ._samples import sample_grid, write_grid
from ._validation import translation_metrics

__all__ = ["GANRecipe"]

Batch = dict[str, Any]
RecipeT = TypeVar("RecipeT", bound="GANRecipe")


class GANRecipe:
    """The base of the library's trainers: named generators and discriminators trained by an :class:`Engine`.

    Args:
        networks: ``name -> module`` for every name in :attr:`generator_names` and
            :attr:`discriminator_names` (each is placed on the engine's device and set as an attribute).
        config: the options (:class:`TrainConfig`); device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        task: what the first generator learns (default: its own ``task``, completed by ``fit()``).

    The defaults are those of paired translation: one Adam for all generators and one for all
    discriminators with the reference schedule (:meth:`lr_lambda`), validation of the first generator
    against ``batch["B"]`` (:meth:`validation_step`) and sample rows ``A | G(A) | B``.
    """

    #: The networks, by attribute (and checkpoint folder) name; the first generator is "the" generator.
    generator_names: ClassVar[tuple[str, ...]] = ("generator",)
    discriminator_names: ClassVar[tuple[str, ...]] = ("discriminator",)
    #: The keys of :meth:`configure_optimizers`' optimizers in checkpoints (and attribute names).
    optimizer_names: ClassVar[tuple[str, ...]] = ("optimizer_g", "optimizer_d")

    def __init__(
        self,
        networks: Mapping[str, nn.Module],
        config: TrainConfig | None = None,
        device: DeviceLike = "auto",
        task: TaskMetadata | None = None,
    ) -> None:
        expected = self.network_names()
        if set(networks) != set(expected):
            raise ValueError(f"{type(self).__name__} trains {', '.join(expected)}; got networks {', '.join(networks)}")
        not_modules = [f"{name} ({type(module).__name__})" for name, module in networks.items() if not isinstance(module, nn.Module)]
        if not_modules:
            raise TypeError(f"networks must be torch.nn.Module instances, got {', '.join(not_modules)}")
        self.engine = Engine(config, device)
        self.config = self.engine.config
        for name in expected:
            setattr(self, name, self.engine.place(networks[name]))
        decay = self.config.ema_decay
        #: The weight average of each generator (``config.ema_decay``; empty when off).
        self.averages: dict[str, GeneratorEMA] = (
            {} if decay is None else {name: GeneratorEMA(getattr(self, name), decay) for name in self.generator_names}
        )
        #: The lazy R1 penalty piece (``config.r1_gamma``, ``config.r1_every``).
        self.r1 = LazyR1(self.config.r1_gamma, self.config.r1_every)
        self.gan_loss = GANLoss(self.config.gan_mode)
        first = networks[self.generator_names[0]]
        self.task = task or getattr(first, "task", None) or TaskMetadata(image_size=None)
        self.engine.attach(self)

    # --- what the networks are ----------------------------------------------------------------------------
    @classmethod
    def network_names(cls) -> tuple[str, ...]:
        """Every network this recipe trains: :attr:`generator_names` then :attr:`discriminator_names`."""
        return (*cls.generator_names, *cls.discriminator_names)

    @property
    def task(self) -> TaskMetadata:
        """What the first generator learns (:class:`~pix2pix_lib.TaskMetadata`), also set as its ``task``."""
        return self._task

    @task.setter
    def task(self, task: TaskMetadata) -> None:
        if not isinstance(task, TaskMetadata):
            raise TypeError(f"task must be a TaskMetadata, got {type(task).__name__}")
        self._task = task
        for name in self.generator_names:  # what save_pretrained, translate and evaluate read
            network_task = self.network_task(name)
            if network_task is not None:
                for module in (getattr(self, name), *((self.averages[name].module,) if name in self.averages else ())):
                    module.task = network_task

    def network_task(self, name: str) -> TaskMetadata | None:
        """The task recorded with network ``name`` (:attr:`task` for the first generator, else None)."""
        return self.task if name == self.generator_names[0] else None

    def inference_network(self, name: str) -> nn.Module:
        """Network ``name`` as users get it: its weight average when ``config.ema_decay`` is set."""
        return self.averages[name].module if name in self.averages else getattr(self, name)

    @property
    def inference_generator(self) -> nn.Module:
        """The first generator as users get it (the EMA copy with ``config.ema_decay``): validated, sampled,
        saved as ``generator/``; :attr:`generator` is the network being optimised."""
        return self.inference_network(self.generator_names[0])

    @property
    def ema(self) -> GeneratorEMA | None:
        """The first generator's weight average (None when ``config.ema_decay`` is off)."""
        return self.averages.get(self.generator_names[0])

    def inference_networks(self) -> list[nn.Module]:
        """The generators validation switches to an inference norm mode (the first decides the mode)."""
        return [self.inference_network(name) for name in self.generator_names]

    def checkpoint_models(self) -> dict[str, tuple[nn.Module, TaskMetadata | None]]:
        """Folder name -> (module, task to record or None) of everything a checkpoint saves: each generator
        as users get it (with ``{name}_raw`` for its trained weights when averaged), then the discriminators."""
        models: dict[str, tuple[nn.Module, TaskMetadata | None]] = {}
        for name in self.generator_names:
            models[name] = (self.inference_network(name), self.network_task(name))
            if name in self.averages:
                models[raw_folder(name)] = (getattr(self, name), self.network_task(name))
        models.update({name: (getattr(self, name), None) for name in self.discriminator_names})
        return models

    # --- the engine's state, read here as a LightningModule reads its trainer's -------------------------------
    @property
    def device(self) -> torch.device:
        return self.engine.device

    @property
    def precision(self) -> str:
        return self.engine.precision

    @property
    def global_step(self) -> int:
        return self.engine.global_step

    @property
    def epoch(self) -> int:
        return self.engine.epoch

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The optimizers of :meth:`configure_optimizers`, in :attr:`optimizer_names` order."""
        self.engine.setup()
        return list(self.engine.optimizers.values())

    def lr_schedulers(self) -> list[Any]:
        """The learning-rate schedulers of :meth:`configure_optimizers`, stepped once per epoch."""
        self.engine.setup()
        return self.engine.schedulers

    @property
    def optimizer_g(self) -> torch.optim.Optimizer:
        return self.optimizers()[0]

    @property
    def optimizer_d(self) -> torch.optim.Optimizer:
        return self.optimizers()[1]

    # --- hooks to override (Lightning's names and signatures) ----------------------------------------------
    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[Any]]:
        """``([optimizer_g, optimizer_d], schedulers)``: one Adam over every generator, one over every
        discriminator, with :meth:`learning_rate` and ``(beta1, beta2)``; a LambdaLR with :meth:`lr_lambda` each."""
        betas, lr = (self.config.beta1, self.config.beta2), self.learning_rate()
        groups = (self.generator_names, self.discriminator_names)
        optimizers = [
            adam(itertools.chain.from_iterable(getattr(self, name).parameters() for name in names), lr, betas, self.device)
            for names in groups
        ]
        return optimizers, [torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_lambda) for optimizer in optimizers]

    def training_step(self, batch: Batch, batch_idx: int) -> Mapping[str, Tensor]:
        """One optimisation step on a batch on the device; returns the loss terms to log."""
        raise NotImplementedError(f"{type(self).__name__} must define training_step(batch, batch_idx)")

    def validation_step(self, batch: Batch, batch_idx: int) -> Mapping[str, Tensor]:
        """Per-image ``l1``, ``psnr`` and ``ssim`` of the inference generator's output against ``batch["B"]``
        (runs inside the engine's validation: no grad, in the norm mode being scored)."""
        fake_b = precision_forward(self.inference_generator, batch["A"], self.device, self.precision)
        return translation_metrics(fake_b, batch["B"], self.task.output_range)

    def make_sample_grid(self, batch: Batch) -> Tensor:
        """The sample image of ``batch`` (rows input | generated | target) in [0, 1]; every rank runs it."""
        return sample_grid(batch["A"], self.generate(batch["A"]), batch["B"], task=self.task)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Batch:
        """Move ``batch["A"]`` and ``batch["B"]`` to ``device`` in the engine's memory format."""
        if not isinstance(batch, Mapping):
            raise TypeError(f"a batch must be a dict with 'A' and 'B' tensors, got {type(batch).__name__}")
        moved = dict(batch)
        for key in ("A", "B"):
            if key not in batch:
                raise KeyError(f"batch has no {key!r} entry (keys: {', '.join(map(str, batch))}); expected 'A' (input) and 'B' (target)")
            value = batch[key]
            if not isinstance(value, Tensor) or value.ndim != 4:
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"batch[{key!r}] must be a (N, C, H, W) tensor, got {shape}")
            moved[key] = value.to(device, non_blocking=True, memory_format=self.engine.memory_format)
        return moved

    def on_train_start(self) -> None:
        """Called once when ``fit`` starts (after resuming, before the first step)."""

    def on_train_epoch_start(self) -> None:
        """Called before each epoch's first step (:attr:`epoch` is the 0-based epoch about to run)."""

    def on_train_batch_end(self, outputs: Mapping[str, Tensor], batch: Any, batch_idx: int) -> None:
        """Called after every step with its detached losses, the batch as the loader gave it and its index
        in the epoch (:attr:`global_step` already counts the step). ``.item()`` here syncs with the GPU."""

    def on_train_epoch_end(self) -> None:
        """Called after each complete epoch, after its scheduler step, samples, validation and checkpoint."""

    def on_train_end(self) -> None:
        """Called once when ``fit`` ends normally or through a budget (not on errors or signals)."""

    def on_validation_result(self, metrics: dict[str, float]) -> None:
        """Called with the dataset means of every validation (the chosen norm mode's, and per mode)."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add your own state to ``checkpoint`` (tensors and JSON-able values) before it is written; keep the
        engine's entries (``optimizer_g``, ``optimizer_d``, ``schedulers``, ``grad_scaler``, ``rng``, ``counters``, ...)."""

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore what :meth:`on_save_checkpoint` added; called after the engine restored its own state."""

    # --- helpers for a step ------------------------------------------------------------------------------------
    def training_model(self, name: str) -> Any:
        """Network ``name`` as a step calls it (DDP wrapper, weight copies or compiled; see :meth:`Engine.training_model`)."""
        return self.engine.training_model(name)

    @contextlib.contextmanager
    def toggled_optimizer(self, optimizer: torch.optim.Optimizer) -> Iterator[None]:
        """Inside the block only ``optimizer``'s parameters require gradients: every other optimizer's are
        frozen (and restored afterwards), as Lightning's ``toggled_optimizer``."""
        own = {id(parameter) for group in optimizer.param_groups for parameter in group["params"]}
        frozen = [
            (parameter, parameter.requires_grad)
            for other in self.optimizers() if other is not optimizer
            for group in other.param_groups for parameter in group["params"] if id(parameter) not in own
        ]  # fmt: skip
        for parameter, _ in frozen:
            parameter.requires_grad_(False)
        try:
            yield
        finally:
            for parameter, requires_grad in frozen:
                parameter.requires_grad_(requires_grad)

    def manual_backward(self, loss: Tensor) -> None:
        """``loss.backward()`` through the engine's fp16 loss scaler when it is on (Lightning's name)."""
        self.engine.manual_backward(loss)

    def backward_and_step(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Zero ``optimizer``'s gradients, backpropagate ``loss`` and step ``optimizer``, with the engine's
        precision and loss scaler: the end of one network's update."""
        optimizer.zero_grad(set_to_none=True)
        self.engine.manual_backward(loss)
        self.engine.step_optimizer(optimizer)

    def judge_fake(self, judge: Callable[..., Any], fake: Tensor, real: Tensor) -> tuple[Any, Tensor | None]:
        """``(judge(fake), feature matching)``: D's logits for the generated input and, with
        ``config.lambda_feat``, ``lambda_feat`` times pix2pixHD's feature matching between D's features of
        ``fake`` and of ``real`` (computed without gradients); None when it is off. ``judge`` is D as the
        step calls it, taking ``features=True``."""
        if self.config.lambda_feat <= 0:
            return judge(fake), None
        logits, fake_features = judge(fake, features=True)
        with torch.no_grad():
            _, real_features = judge(real, features=True)
        return logits, feature_matching_loss(fake_features, real_features) * self.config.lambda_feat

    def update_averages(self) -> None:
        """Fold every generator's current weights into its average (no-op without ``config.ema_decay``)."""
        for name, average in self.averages.items():
            average.update(getattr(self, name))

    # --- the schedule --------------------------------------------------------------------------------------
    def learning_rate(self) -> float:
        """``config.lr`` scaled by ``config.lr_scaling`` for the global batch ``batch_size * world_size``."""
        global_batch = self.config.batch_size * self.engine.distributed.world_size
        return scaled_lr(self.config.lr, global_batch, self.config.lr_scaling)

    def lr_lambda(self, epoch: int) -> float:
        """Learning-rate factor for 0-based epoch ``epoch``: the reference ``lambda_rule`` -- 1 for the first
        ``config.epochs`` epochs, then ``1 - k / (epochs_decay + 1)`` in decay epoch k."""
        return 1.0 - max(0, epoch + 1 - self.config.epochs) / float(self.config.epochs_decay + 1)

    # --- running it ------------------------------------------------------------------------------------------
    def fit(
        self, train_dataset: Dataset, val_dataset: Dataset | None = None, resume: str | os.PathLike[str] | None = None
    ) -> None:
        """Train with the engine (see :meth:`Engine.fit`): until the schedule ends, ``max_steps`` or
        ``max_seconds``; ``resume``: a checkpoint or run folder, or ``"auto"``."""
        self.engine.fit(train_dataset, val_dataset, resume)

    def train_on_batch(self, batch: Batch) -> dict[str, float]:
        """One optimisation step on a batch as a DataLoader yields it; the losses as floats."""
        return self.engine.train_on_batch(batch)

    def validate(self, dataset: Dataset) -> dict[str, float]:
        """Score :attr:`inference_generator` on ``dataset`` in each norm mode and record the better one
        in :attr:`task` (see :meth:`Engine.validate`)."""
        return self.engine.validate(dataset)

    def save_checkpoint(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Save everything needed to resume, atomically (see :meth:`Engine.save_checkpoint`)."""
        return self.engine.save_checkpoint(path)

    def load_checkpoint(self, path: str | os.PathLike[str], verify: bool | None = None) -> None:
        """Restore a checkpoint into this recipe and its engine (see :meth:`Engine.load_checkpoint`)."""
        self.engine.load_checkpoint(path, verify=verify)

    @torch.no_grad()
    def generate(self, inputs: Tensor, generator: nn.Module | None = None) -> Tensor:
        """``generator``'s (default: :attr:`inference_generator`'s) outputs for a batch, in its inference norm mode."""
        generator = self.inference_generator if generator is None else generator
        with inference_norm(generator, resolve_norm_mode(None, generator)):
            return precision_forward(generator, inputs.to(self.device), self.device, self.precision)

    def save_samples(self, path: str | os.PathLike[str], source: Dataset | Batch | None = None) -> Path:
        """Write a sample grid of ``source`` (the first ``config.num_samples`` items of a dataset, or a
        batch; default: the samples of the last ``fit``) to ``path``."""
        if source is None:
            source = self.engine.sample_batch
            if source is None:
                raise ValueError("save_samples() needs a dataset or batch before fit() has run")
        batch = source if isinstance(source, Mapping) else first_items(source, self.config.num_samples)
        return write_grid(path, self.make_sample_grid(batch))

    @classmethod
    def from_checkpoint(
        cls: type[RecipeT],
        path: str | os.PathLike[str],
        device: DeviceLike = "auto",
        overrides: Mapping[str, Any] | None = None,
        verify: bool | None = None,
        **kwargs: Any,
    ) -> RecipeT:
        """A trainer restored from a checkpoint, ready to ``fit`` on, writing into the run it came from.

        The run folder is the one named (a run folder, or the run whose ``checkpoints/`` hold the named
        checkpoint; a stand-alone checkpoint folder is its own run folder): the ``out_dir`` recorded in the
        checkpoint is never a write target by itself. ``overrides`` changes options (``{"max_steps": 1000}``,
        or ``{"out_dir": ...}`` to continue elsewhere). The library's networks are rebuilt by architecture
        name from the checkpoint's config files (never by importing anything a file names); pass other
        architectures, and the constructor's other arguments, as keyword arguments by name. ``verify=False``
        skips the files' SHA-256 check.
        """
        checkpoint = read_checkpoint(path, verify=verify)
        run_dir = _run_folder(checkpoint.directory)
        config = checkpoint.config.replace(**{"out_dir": str(run_dir), **dict(overrides or {})})
        for name in cls.network_names():
            if kwargs.get(name) is None:
                kwargs[name] = checkpoint.build_model(name)
        if "networks" in inspect.signature(cls).parameters:  # GANRecipe's own constructor: one mapping
            kwargs["networks"] = {name: kwargs.pop(name) for name in cls.network_names()}
        trainer = cls(config=config, device=device, **kwargs)
        trainer.load_checkpoint(checkpoint.directory, verify=verify)
        return trainer


def _run_folder(checkpoint: Path) -> Path:
    """The run folder a checkpoint belongs to: the folder above its ``checkpoints/``, else the checkpoint itself."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS_DIR else checkpoint

