"""``TrainConfig``: every training option in one dataclass, with the paper's defaults and a JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from ..atomic_io import write_text_atomically
from ..devices import PRECISIONS, Precision, training_precision_error

__all__ = ["COMPILE_MODES", "CUDA_GRAPH_MODES", "GAN_MODES", "LR_SCALINGS", "PRESETS", "TrainConfig"]

GAN_MODES: tuple[str, ...] = ("vanilla", "lsgan", "hinge")
LR_SCALINGS: tuple[str, ...] = ("none", "sqrt", "linear")
#: ``torch.compile`` modes :attr:`TrainConfig.compile` accepts by name (``True`` is ``"default"``).
COMPILE_MODES: tuple[str, ...] = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: The modes in which inductor replays CUDA graphs on a CUDA device.
CUDA_GRAPH_MODES: tuple[str, ...] = ("reduce-overhead", "max-autotune")

GanMode = Literal["vanilla", "lsgan", "hinge"]
LrScaling = Literal["none", "sqrt", "linear"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]


@dataclass
class TrainConfig:
    """Options of :class:`~pix2pix_lib.training.Pix2PixTrainer`; the defaults are the paper's recipe.

    Schedule (Isola et al. 2017 / the reference implementation): Adam (lr 2e-4, betas 0.5/0.999),
    batch size 1, ``epochs`` at constant learning rate then ``epochs_decay`` epochs of linear decay
    towards zero, generator loss ``GAN + lambda_l1 * L1``, discriminator loss halved.
    See ``docs/training.md`` for the full table.
    """

    # --- schedule --------------------------------------------------------------------------------
    epochs: int = 100
    """Epochs at the initial learning rate."""
    epochs_decay: int = 100
    """Epochs over which the learning rate then decays linearly towards zero."""
    max_steps: int | None = None
    """Stop after this many optimisation steps in total (counted across resumes); None: no limit."""
    max_seconds: float | None = None
    """Stop after this much training wall time in this run (seconds); None: no limit."""
    batch_size: int = 1
    """Images per step and per process (DDP: the global batch is ``batch_size * world_size``)."""
    # --- optimisation ------------------------------------------------------------------------------
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_l1: float = 100.0
    """Weight of the L1 term in the generator loss."""
    lambda_feat: float = 0.0
    """Weight of pix2pixHD's discriminator feature-matching term in the generator loss
    (:func:`~pix2pix_lib.training._losses.feature_matching_loss`); 0: off (the paper)."""
    gan_mode: GanMode = "vanilla"
    """``"vanilla"`` (BCE with logits, the paper), ``"lsgan"`` (least squares) or ``"hinge"``."""
    lr_scaling: LrScaling = "none"
    """Scale ``lr`` with the global batch ``b = batch_size * world_size``: ``"none"`` (the paper), ``"sqrt"``
    (``lr * sqrt(b)``) or ``"linear"`` (``lr * b``); applied by ``configure_optimizers``."""
    seed: int = 0
    """Seeds torch, numpy and random (plus the rank under DDP) and fixes the data order of each epoch."""
    # --- recipe options (all off by default: the paper's recipe) ----------------------------------
    ema_decay: float | None = None
    """Keep an exponential moving average of the generator's weights with this decay (e.g. 0.999) and use
    it for validation, samples and the saved ``generator/``; None: off (the paper)."""
    r1_gamma: float = 0.0
    """Weight of the R1 gradient penalty on D's real pairs (``gamma / 2 * E||grad_B D(A, B)||^2``); 0: off."""
    r1_every: int = 16
    """Lazy R1: compute the penalty every this many steps, scaled by this number (StyleGAN2)."""
    # --- speed -------------------------------------------------------------------------------------
    precision: Precision = "auto"
    """``"fp32"``, ``"bf16"`` or ``"fp16"`` autocast (fp16 with a GradScaler); ``"auto"``: bf16 where it is
    fast (see :func:`pix2pix_lib.devices.fast_precision`), else fp32. Use fp32 for exact reproduction."""
    channels_last: bool | Literal["auto"] = "auto"
    """Keep models and batches in channels-last memory format; ``"auto"``: on for bf16 on CUDA (on CPU,
    NCHW with fused Adam measured faster)."""
    weight_copies: bool | Literal["auto"] = "auto"
    """Train bf16 through working copies of the convolution weights (bf16, channels-last) that are re-cast
    once per optimizer step, with the fp32 weights as masters (see :mod:`._working_weights`); ``"auto"``:
    on for bf16 on a CPU with AMX in a single process without ``compile``, where it measured fastest (docs/performance.md)."""
    compile: bool | CompileMode = False
    """Wrap the generator and the discriminator in :func:`torch.compile`: ``True`` (inductor's ``"default"``
    mode) or a mode by name; ``"reduce-overhead"`` also replays each step's kernels as CUDA graphs on a GPU
    (what pays at small batches there, docs/performance.md). False: eager."""
    num_workers: int = 0
    """DataLoader worker processes (0 loads in the main process)."""
    sync_batchnorm: bool = False
    """Under DDP, convert BatchNorm layers to SyncBatchNorm (statistics over the global batch)."""
    # --- outputs -----------------------------------------------------------------------------------
    out_dir: str = "runs/pix2pix"
    """Run folder: logs, samples, validation results and checkpoints go here."""
    log_every: int = 50
    """Steps between progress-bar/log flushes (the host reads the losses only then)."""
    sample_every: int = 1
    """Epochs between sample grids (0: never)."""
    num_samples: int = 4
    """Rows in a sample grid."""
    val_every: int = 1
    """Epochs between validations when a validation set is given (0: never)."""
    val_fraction: float = 0.05
    """Without a validation set, ``fit()`` holds out this fraction of the training pairs (chosen by ``seed``)
    to validate on and to choose the test-time norm mode; none when it rounds to 0 pairs or ``val_every`` is 0."""
    val_batch_size: int = 8
    """Validation batch size. The deterministic norm modes score each image independently of its batch,
    so this changes speed only (batch 8 validated facades 2.2x faster than batch 1 on a 2-core CPU)."""
    checkpoint_every: int = 1
    """Epochs between checkpoints (0: only at the end, on Ctrl-C and when a limit stops training)."""
    keep_last: int = 3
    """Checkpoints kept in ``out_dir/checkpoints`` (older ones are deleted; 0 keeps all)."""
    progress_bar: bool = True
    tensorboard: bool = True
    """Write TensorBoard scalars when the ``tensorboard`` package is installed."""

    def __post_init__(self) -> None:
        self.validate()

    # --- validation --------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ValueError` naming the first option whose value is not allowed."""

        def fail(option: str, expected: str) -> None:
            raise ValueError(f"TrainConfig.{option}={getattr(self, option)!r} is invalid: expected {expected}")

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        for option in ("epochs", "epochs_decay", "num_workers", "sample_every", "val_every", "checkpoint_every", "keep_last"):
            if not is_int(getattr(self, option)) or getattr(self, option) < 0:
                fail(option, "an integer >= 0")
        for option in ("batch_size", "log_every", "num_samples", "val_batch_size"):
            if not is_int(getattr(self, option)) or getattr(self, option) < 1:
                fail(option, "an integer >= 1")
        if self.epochs + self.epochs_decay < 1:
            fail("epochs", "epochs + epochs_decay >= 1")
        if self.max_steps is not None and (not is_int(self.max_steps) or self.max_steps < 0):
            fail("max_steps", "None or an integer >= 0")
        if self.max_seconds is not None and (not is_number(self.max_seconds) or self.max_seconds < 0):
            fail("max_seconds", "None or a number >= 0")
        if not is_number(self.lr) or self.lr <= 0:
            fail("lr", "a number > 0")
        for option in ("beta1", "beta2"):
            if not is_number(getattr(self, option)) or not 0 <= getattr(self, option) < 1:
                fail(option, "a number in [0, 1)")
        if not is_number(self.val_fraction) or not 0 <= self.val_fraction < 1:
            fail("val_fraction", "a number in [0, 1)")
        if not is_number(self.lambda_l1) or self.lambda_l1 < 0:
            fail("lambda_l1", "a number >= 0")
        if not is_number(self.lambda_feat) or self.lambda_feat < 0:
            fail("lambda_feat", "a finite number >= 0 (0 turns feature matching off)")
        if self.gan_mode not in GAN_MODES:
            fail("gan_mode", f"one of {', '.join(map(repr, GAN_MODES))}")
        if self.lr_scaling not in LR_SCALINGS:
            fail("lr_scaling", f"one of {', '.join(map(repr, LR_SCALINGS))}")
        if self.ema_decay is not None and (not is_number(self.ema_decay) or not 0 < self.ema_decay < 1):
            fail("ema_decay", "None or a number in (0, 1), e.g. 0.999")
        if not is_number(self.r1_gamma) or self.r1_gamma < 0:
            fail("r1_gamma", "a number >= 0 (0 turns R1 off)")
        if not is_int(self.r1_every) or self.r1_every < 1:
            fail("r1_every", "an integer >= 1")
        if not is_int(self.seed) or self.seed < 0:
            fail("seed", "an integer >= 0")
        if self.precision not in PRECISIONS:
            fail("precision", training_precision_error(self.precision))
        for option in ("channels_last", "weight_copies"):
            if getattr(self, option) not in (True, False, "auto"):
                fail(option, "True, False or 'auto'")
        for option in ("sync_batchnorm", "progress_bar", "tensorboard"):
            if not isinstance(getattr(self, option), bool):
                fail(option, "True or False")
        if not isinstance(self.compile, bool) and self.compile not in COMPILE_MODES:
            fail("compile", f"True, False or a torch.compile mode: {', '.join(map(repr, COMPILE_MODES))}")
        if self.r1_gamma > 0 and self.compile:
            fail("r1_gamma", "0 with compile=True (torch.compile does not support the double backward R1 needs)")
        if not isinstance(self.out_dir, (str, os.PathLike)) or not str(self.out_dir):
            fail("out_dir", "a folder path")
        self.out_dir = os.fspath(self.out_dir)

    # --- derived values ----------------------------------------------------------------------------
    @property
    def compile_mode(self) -> str | None:
        """The :func:`torch.compile` mode of :attr:`compile` (``True`` is ``"default"``); None: eager."""
        if self.compile is False:
            return None
        return "default" if self.compile is True else self.compile

    @property
    def total_epochs(self) -> int:
        """``epochs + epochs_decay``: the length of the full schedule."""
        return self.epochs + self.epochs_decay

    @classmethod
    def preset(cls, name: str, **changes: Any) -> TrainConfig:
        """A named recipe, whatever the defaults are (:data:`PRESETS`), with ``changes`` applied.

        ``TrainConfig.preset("paper")`` is Isola et al.'s recipe exactly: 100 + 100 epochs at batch
        size 1, Adam(2e-4, 0.5, 0.999) without learning-rate scaling, vanilla GAN + 100 L1, no EMA, no
        R1, fp32, all training pairs used.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **changes})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (and validated); unknown names raise naming the option."""
        self._check_names(changes, "TrainConfig.replace()")
        return dataclasses.replace(self, **changes)

    # --- JSON round trip ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain ``{option: value}`` dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "dict") -> TrainConfig:
        """Build from :meth:`to_dict` output; an unknown key raises :class:`ValueError` naming it."""
        if not isinstance(values, dict):
            raise ValueError(f"TrainConfig from {source}: expected a JSON object, got {type(values).__name__}")
        cls._check_names(values, f"TrainConfig from {source}")
        return cls(**values)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The config as JSON text; with ``path``, also written there atomically."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            write_text_atomically(Path(path), text)
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> TrainConfig:
        """Load from a JSON file path (or from JSON text starting with ``{``)."""
        if isinstance(source, str) and source.lstrip().startswith("{"):
            return cls.from_dict(json.loads(source), "JSON text")
        path = Path(source)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        return cls.from_dict(values, str(path))

    @classmethod
    def _check_names(cls, values: dict[str, Any], where: str) -> None:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown option(s) {', '.join(unknown)}; known options: {', '.join(sorted(known))}")


#: Named recipes for :meth:`TrainConfig.preset`: every option that defines the recipe, spelled out.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "epochs": 100,
        "epochs_decay": 100,
        "batch_size": 1,
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "lambda_l1": 100.0,
        "lambda_feat": 0.0,
        "gan_mode": "vanilla",
        "lr_scaling": "none",
        "ema_decay": None,
        "r1_gamma": 0.0,
        "precision": "fp32",
        "val_fraction": 0.0,
    },
}
