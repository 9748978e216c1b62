"""The 4x4, stride-2, padding-1 transposed convolution as ordinary convolutions (the sub-pixel form).

Output pixel ``(2m + ry, 2n + rx)`` of ``conv_transpose2d(x, w, stride=2, padding=1)`` reads only
the input pixels ``m - 1 .. m + 1`` (rows) and ``n - 1 .. n + 1`` (columns), through the kernel taps
``k = 3 + r - 2d`` for window offset ``d`` in ``0, 1, 2`` (taps outside ``0..3`` are zero): each of
the four output phases ``(ry, rx)`` is a 2x2 convolution over the input padded by one pixel.
:func:`subpixel_conv_transpose2d` computes it in one of three forms:

* ``"conv2x2"``: ONE 2x2 convolution (padding 1) with ``4 * out`` channels; phase ``(ry, rx)`` is its
  output shifted by ``(ry, rx)``. ``(H + 1)(W + 1) / HW`` of the multiply-adds.
* ``"conv3x3"``: ONE 3x3 convolution (padding 1) with ``4 * out`` channels, each phase's 2x2
  sub-kernel inside the 3x3 window (zeros elsewhere), then :func:`torch.nn.functional.pixel_shuffle`.
  9/4 of the multiply-adds (the zeros).
* ``"phases"``: four 2x2 convolutions over shifted windows of the padded input, interleaved.

:func:`subpixel_forward_conv_transpose2d` runs a form's forward with ``conv_transpose2d``'s own
backward kernels; :class:`SubpixelConvTranspose2d` is an ``nn.ConvTranspose2d`` that picks a mode.
The weight is rearranged on every call from the ``ConvTranspose2d`` parameter ``(in, out, 4, 4)``
(flips, reshapes and permutes, no gathers), so parameters, state dicts and checkpoints keep the
transposed layout and the gradient flows back into that parameter. Measured on a Zen 4 CPU it did not
pay in the U-Net, which keeps ``nn.ConvTranspose2d``: docs/performance.md ("Transposed
convolutions: the sub-pixel form").
"""

from __future__ import annotations

import copy as copy_module
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "SUBPIXEL_FORMS",
    "SUBPIXEL_MODES",
    "SubpixelConvTranspose2d",
    "SubpixelForm",
    "SubpixelMode",
    "auto_form",
    "subpixel_conv_transpose2d",
    "subpixel_forward_conv_transpose2d",
    "subpixel_graph_copy",
    "subpixel_weight",
]

SubpixelForm = Literal["conv2x2", "conv3x3", "phases"]
SUBPIXEL_FORMS: tuple[str, ...] = ("conv2x2", "conv3x3", "phases")


def _check(x: Tensor, weight: Tensor) -> None:
    if weight.ndim != 4 or weight.shape[-2:] != (4, 4):
        raise ValueError(f"subpixel_conv_transpose2d needs a (in, out, 4, 4) weight, got shape {tuple(weight.shape)}")
    if x.ndim != 4 or x.shape[1] != weight.shape[0]:
        raise ValueError(
            f"subpixel_conv_transpose2d: input shape {tuple(x.shape)} does not match weight shape "
            f"{tuple(weight.shape)} (expected (N, {weight.shape[0]}, H, W))"
        )


def _phase_kernels(weight: Tensor) -> Tensor:
    """``(out, ry, rx, in, 2, 2)``: the 2x2 correlation kernel of each output phase ``(ry, rx)``.

    Flipping the 4x4 kernel puts tap ``3 - k`` at ``k``; phase ``r`` reads the flipped taps ``r`` and
    ``r + 2`` (window rows ``m - 1 + r`` and ``m + r``), so splitting each kernel axis of the flipped
    kernel into (window offset, phase) and permuting gives every sub-kernel at once, without gathers.
    """
    in_channels, out_channels = weight.shape[:2]
    flipped = weight.flip(2, 3).reshape(in_channels, out_channels, 2, 2, 2, 2)  # (in, out, dy, ry, dx, rx)
    return flipped.permute(1, 3, 5, 0, 2, 4)


def _autocast_weight(x: Tensor, weight: Tensor) -> Tensor:
    """Under autocast, cast the weight before rearranging it (the same values, a fraction of the bytes)."""
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type) and weight.dtype == torch.float32:
        return weight.to(torch.get_autocast_dtype(device_type))
    return weight


def subpixel_weight(weight: Tensor) -> Tensor:
    """The 3x3 convolution weight ``(4 * out, in, 3, 3)`` equivalent to a ``(in, out, 4, 4)``
    transposed-convolution weight at stride 2, padding 1: output channel ``4 * c + 2 * ry + rx`` is
    phase ``(ry, rx)`` of channel ``c`` (the order :func:`~torch.nn.functional.pixel_shuffle` reads),
    its 2x2 sub-kernel at rows ``ry..ry+1`` and columns ``rx..rx+1`` of the 3x3 window."""
    kernels = _phase_kernels(weight)
    out_channels, in_channels = weight.shape[1], weight.shape[0]
    placed = [F.pad(kernels[:, ry, rx], (rx, 1 - rx, ry, 1 - ry)) for ry in (0, 1) for rx in (0, 1)]
    return torch.stack(placed, dim=1).reshape(4 * out_channels, in_channels, 3, 3)


def subpixel_conv_transpose2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, form: SubpixelForm = "conv2x2"
) -> Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride=2, padding=1)`` for a 4x4 ``weight`` ``(in, out, 4, 4)``,
    computed with ordinary convolutions (see the module docstring for the ``form`` choices)."""
    _check(x, weight)
    weight = _autocast_weight(x, weight)
    if form == "conv2x2":
        return _conv2x2(x, weight, bias)
    if form == "conv3x3":
        conv_bias = None if bias is None else bias.repeat_interleave(4)
        return F.pixel_shuffle(F.conv2d(x, subpixel_weight(weight), conv_bias, padding=1), 2)
    if form == "phases":
        return _phases(x, weight, bias)
    raise ValueError(f"form={form!r} is not supported; choose one of {', '.join(SUBPIXEL_FORMS)}")


def _interleave(x: Tensor, phases: list[Tensor]) -> Tensor:
    """``(N, C, 2H, 2W)`` from the four ``(N, C, H, W)`` phases in order ``(0, 0), (0, 1), (1, 0), (1, 1)``,
    in ``x``'s memory format."""
    n, channels, height, width = phases[0].shape
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    first = phases[0]
    out = torch.empty(
        (n, channels, 2 * height, 2 * width), dtype=first.dtype, device=first.device, memory_format=memory_format
    )
    grid = out.view(n, channels, height, 2, width, 2)
    for index, phase in enumerate(phases):
        grid[:, :, :, index // 2, :, index % 2] = phase
    return out


def _conv2x2(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """One 2x2 convolution (padding 1) with ``4 * out`` channels; phase ``(ry, rx)`` is its output
    shifted by ``(ry, rx)``. Multiply-adds: ``(H + 1)(W + 1) / HW`` times the transposed convolution's."""
    height, width = x.shape[-2:]
    in_channels, out_channels = weight.shape[:2]
    kernel = _phase_kernels(weight).reshape(4 * out_channels, in_channels, 2, 2)
    conv_bias = None if bias is None else bias.repeat_interleave(4)
    y = F.conv2d(x, kernel, conv_bias, padding=1)  # (N, 4 * out, H + 1, W + 1)
    if not y.requires_grad:
        return _shifted_pixel_shuffle(x, y, height, width)
    grid = y.unflatten(1, (out_channels, 4))
    phases = [grid[:, :, 2 * ry + rx, ry : ry + height, rx : rx + width] for ry in (0, 1) for rx in (0, 1)]
    return _interleave(x, phases)


def _shifted_pixel_shuffle(x: Tensor, y: Tensor, height: int, width: int) -> Tensor:
    """``out[n, c, 2m + ry, 2k + rx] = y[n, 4c + 2ry + rx, m + ry, k + rx]`` in one strided copy
    (a view of ``y`` that autograd would differentiate slowly: only without gradients)."""
    n, channels4 = y.shape[:2]
    s_n, s_c, s_h, s_w = y.stride()
    source = y.as_strided(
        (n, channels4 // 4, height, 2, width, 2),
        (s_n, 4 * s_c, s_h, 2 * s_c + s_h, s_w, s_c + s_w),
        y.storage_offset(),
    )
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((n, channels4 // 4, 2 * height, 2 * width), dtype=y.dtype, device=y.device, memory_format=memory_format)
    out.view(n, channels4 // 4, height, 2, width, 2).copy_(source)
    return out


def _phases(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """Four 2x2 convolutions over the padded input, one per output phase, interleaved."""
    height, width = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    kernels = _phase_kernels(weight)
    phases = [
        F.conv2d(padded[:, :, ry : ry + height + 1, rx : rx + width + 1], kernels[:, ry, rx], bias)
        for ry in (0, 1)
        for rx in (0, 1)
    ]
    return _interleave(x, phases)


class _SubpixelForwardNativeBackward(torch.autograd.Function):
    """The sub-pixel forward with ``conv_transpose2d``'s own backward kernels (no weight rearranging,
    no interleave gradients): for layers where only the forward pass is faster in the sub-pixel form."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, weight: Tensor, bias: Tensor | None, form: str) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None  # type: ignore[attr-defined]
        return subpixel_conv_transpose2d(x, weight, bias, form)  # type: ignore[arg-type]

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors  # type: ignore[attr-defined]
        has_bias = ctx.has_bias  # type: ignore[attr-defined]
        needs = ctx.needs_input_grad  # type: ignore[attr-defined]
        mask = [needs[0], needs[1], has_bias and needs[2]]
        grad_x, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            grad, x, weight, [weight.shape[1]] if has_bias else None, [2, 2], [1, 1], [1, 1], True, [0, 0], 1, mask
        )
        return grad_x, grad_weight, grad_bias if has_bias else None, None


def subpixel_forward_conv_transpose2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, form: SubpixelForm = "conv2x2"
) -> Tensor:
    """Like :func:`subpixel_conv_transpose2d` in the forward pass; the backward pass runs
    ``conv_transpose2d``'s own gradient kernels. Under autocast the operands are cast as autocast
    casts a convolution's (the same values), then the pair runs with autocast off."""
    _check(x, weight)
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
        with torch.autocast(device_type, enabled=False):
            return _SubpixelForwardNativeBackward.apply(x, weight, bias, form)
    return _SubpixelForwardNativeBackward.apply(x, weight, bias, form)


SubpixelMode = Literal[
    "auto", "off", "conv2x2", "conv3x3", "phases", "conv2x2-forward", "conv3x3-forward", "phases-forward"
]
SUBPIXEL_MODES: tuple[str, ...] = ("auto", "off", *SUBPIXEL_FORMS, *(f"{form}-forward" for form in SUBPIXEL_FORMS))


def _tracing() -> bool:
    """Inside torch.export / ONNX export / TorchScript tracing / torch.compile: keep the plain op there."""
    compiler = getattr(torch, "compiler", None)
    exporting = compiler is not None and (compiler.is_compiling() or getattr(compiler, "is_exporting", lambda: False)())
    return exporting or torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()


def auto_form(x: Tensor) -> str | None:
    """The mode ``subpixel="auto"`` runs for input ``x``: a form where one was measured faster than
    ``conv_transpose2d``, else ``None`` (the plain transposed convolution). So far ``None`` everywhere:
    on the machine measured (2-core Zen 4, AVX-512 BF16, no AMX, torch 2.14) no form beat it in the
    U-Net (docs/performance.md); name a mode explicitly to measure another machine (AMX, CUDA)."""
    return None


class SubpixelConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1)`` whose forward may run the sub-pixel form.

    Parameters, their names and shapes are those of ``nn.ConvTranspose2d`` (state dicts, checkpoints
    and exports are unchanged). ``subpixel``: ``"auto"`` (the measured choice, :func:`auto_form`),
    ``"off"`` (always ``conv_transpose2d``), a form of :func:`subpixel_conv_transpose2d`, or
    ``"FORM-forward"`` (:func:`subpixel_forward_conv_transpose2d`: the form's forward,
    ``conv_transpose2d``'s backward). Export, tracing and ``torch.compile`` always see the plain
    ``conv_transpose2d``; so does a call with ``output_size``.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True, subpixel: SubpixelMode = "auto") -> None:
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=bias)
        if subpixel not in SUBPIXEL_MODES:
            raise ValueError(f"subpixel={subpixel!r} is not supported; choose one of {', '.join(SUBPIXEL_MODES)}")
        self.subpixel = subpixel

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        form = None
        if output_size is None and self.subpixel != "off" and not _tracing():
            form = auto_form(input) if self.subpixel == "auto" else self.subpixel
        if form is None:
            return super().forward(input, output_size)
        if form.endswith("-forward"):
            return subpixel_forward_conv_transpose2d(input, self.weight, self.bias, form.removesuffix("-forward"))  # type: ignore[arg-type]
        return subpixel_conv_transpose2d(input, self.weight, self.bias, form)  # type: ignore[arg-type]


def _is_subpixel_candidate(module: nn.Module) -> bool:
    """A plain ``nn.ConvTranspose2d`` the sub-pixel form computes exactly: 4x4, stride 2, padding 1."""
    return (
        isinstance(module, nn.ConvTranspose2d)
        and tuple(module.kernel_size) == (4, 4)
        and tuple(module.stride) == (2, 2)
        and tuple(module.padding) == (1, 1)
        and tuple(module.dilation) == (1, 1)
        and tuple(module.output_padding) == (0, 0)
        and module.groups == 1
        and module.padding_mode == "zeros"
    )


class _GraphSubpixel(nn.Module):
    """A transposed convolution that runs the sub-pixel form in graph captures too (export, tracing).

    Shares the parameters of the layer it replaces; for inference graphs only (the copy made by
    :func:`subpixel_graph_copy`), where the weight rearranging is folded into constants."""

    def __init__(self, layer: nn.ConvTranspose2d, form: SubpixelForm) -> None:
        super().__init__()
        self.weight, self.bias, self.form = layer.weight, layer.bias, form

    def forward(self, input: Tensor) -> Tensor:
        return subpixel_conv_transpose2d(input, self.weight, self.bias, self.form)


def subpixel_graph_copy(model: nn.Module, form: SubpixelForm = "conv2x2") -> tuple[nn.Module, int]:
    """A copy of ``model`` whose 4x4, stride-2, padding-1 transposed convolutions compute ``form`` even
    when captured by ``torch.export`` / ONNX export; returns ``(copy, layers replaced)``.

    For graph engines whose fast kernels cover convolutions but not transposed ones: OpenVINO on a
    CPU runs ``Convolution`` in bf16 or int8 but ``Deconvolution`` in f32 (docs/performance.md).
    The copy shares nothing mutable with ``model`` (it is a deep copy); ``model`` is unchanged."""
    if form not in SUBPIXEL_FORMS:
        raise ValueError(f"form={form!r} is not supported; choose one of {', '.join(SUBPIXEL_FORMS)}")
    duplicate = copy_module.deepcopy(model)
    replaced = 0
    for parent in list(duplicate.modules()):
        for name, child in list(parent.named_children()):
            if _is_subpixel_candidate(child):
                setattr(parent, name, _GraphSubpixel(child, form))  # type: ignore[arg-type]
                replaced += 1
    return duplicate, replaced
