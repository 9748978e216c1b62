"""Run a generator over a paired dataset and score every output against its target.

:func:`evaluate` returns the dataset means and one row of numbers per image; given ``out_dir`` it
also writes ``metrics.json``, ``per_image.csv`` and ``report.html`` (see :mod:`.report`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, default_collate
from tqdm.auto import tqdm

from .. import metrics as M
from ..data.image_io import ImageLoadError, write_bands
from ..devices import PRECISIONS, DeviceLike, Precision
from ..inference import GeneratorRunner
from ..pixels import PixelRange, from_unit, to_unit
from ..training._samples import rgb_view

#: metrics computed by ImageNet networks on RGB images: skipped (with a warning) for other band counts
_RGB_ONLY_METRICS = ("lpips", "fid", "kid")


def _view(bands: Sequence[int] | None, images: Tensor) -> Sequence[int] | None:
    """The display bands when ``images`` has them all, else the default view (first three, or gray)."""
    return bands if bands is not None and max(bands) < images.shape[1] else None

__all__ = ["evaluate"]


class _CountOnce(Dataset):
    """A dataset with ``on_error="skip"`` seen as every index once: unreadable pairs give ``None``.

    :class:`~pix2pix_lib.data.PairedImageDataset` replaces an unreadable pair by the next readable
    one (right for training); for scoring, each image must count exactly once, so the unreadable
    ones are left out here and listed in the result.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset.load_pair(index)  # type: ignore[attr-defined]
        except ImageLoadError as error:
            return {"skipped": str(error)}


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    good = [item for item in items if "skipped" not in item]
    batch = default_collate(good) if good else {}
    batch["skipped"] = [item["skipped"] for item in items if "skipped" in item]
    return batch


def _check_direction(generator: nn.Module, dataset: Dataset) -> str | None:
    """The dataset's direction, after checking it against the one the generator was trained for."""
    dataset_direction = getattr(dataset, "direction", None)
    trained = getattr(getattr(generator, "task", None), "direction", None)
    if trained is not None and dataset_direction is not None and trained != dataset_direction:
        raise ValueError(
            f"the generator was trained {trained} (its task.direction) but the dataset gives {dataset_direction} "
            f"pairs: the input would be the wrong half; build the dataset with direction={trained!r}"
        )
    return dataset_direction or trained


def _batch_tensor(batch: dict[str, Any], key: str, index: int) -> Tensor:
    if not isinstance(batch, dict) or key not in batch:
        found = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise KeyError(f"dataset items must be dicts with keys 'A', 'B' (and 'path'); batch {index} has {found}")
    value = batch[key]
    if not isinstance(value, Tensor) or value.ndim != 4:
        raise ValueError(f"dataset item {key!r} must be a (C, H, W) tensor in [-1, 1]; batch {index} gave {value!r}")
    return value


def evaluate(
    generator: nn.Module,
    dataset: Dataset,
    metrics: Sequence[str] = M.DEFAULT_METRICS,
    device: DeviceLike = "auto",
    batch_size: int = 8,
    out_dir: str | Path | None = None,
    norm_mode: str | None = None,
    *,
    precision: Precision = "auto",
    feature_extractor: nn.Module | None = None,
    lpips_net: nn.Module | str = "alex",
    kid_subset_size: int = 1000,
    num_workers: int = 0,
    max_report_images: int | None = 500,
    save_images: bool = False,
    progress: bool = True,
    engine: str = "auto",
) -> dict[str, Any]:
    """Translate every input of ``dataset`` with ``generator`` and score it against the target.

    Args:
        generator: maps inputs in its ``task.input_range`` to outputs in its ``task.output_range``
            (``(-1, 1)`` when it has no task) of the target's shape.
        dataset: items ``{"A": (C, H, W), "B": (C, H, W), "path": str}`` in the dataset's
            ``value_range`` (default ``(-1, 1)``), such as :class:`pix2pix_lib.data.PairedImageDataset`;
            ``"A"`` is the input and ``"B"`` the target. The dataset's ``direction`` decides which
            half is which, and must agree with the generator's ``task.direction`` when both are known
            (else :class:`ValueError`). With ``on_error="skip"`` unreadable pairs are left out
            (listed in ``"skipped"``) and every other image counts once.
        metrics: names from :data:`pix2pix_lib.metrics.METRICS`. Per-image ones get a value per image and a mean;
            ``fid`` and ``kid`` (KID mean and std) are computed once over the dataset.
        device: where the generator and metrics run: ``"auto"`` keeps the generator on its device,
            else it is moved there (the rule of :class:`~pix2pix_lib.inference.GeneratorRunner`).
        batch_size: images per forward pass.
        out_dir: when given, write ``metrics.json``, ``per_image.csv`` and ``report.html`` there.
        norm_mode: how normalisation layers behave at test time (see :mod:`pix2pix_lib.norm_modes`);
            ``None``: the generator's ``task.recommended_norm_mode``, else the library default.
        precision: the generator's autocast, as in :func:`~pix2pix_lib.translate`: ``"auto"``
            (bf16 where it is fast, else fp32), ``"fp32"``, ``"bf16"`` or ``"fp16"``. Metrics are
            always computed in float32.
        feature_extractor: feature network for FID/KID (``None``: the standard Inception weights).
        lpips_net: LPIPS backbone name or a module from :func:`pix2pix_lib.metrics.lpips_network`.
        kid_subset_size: KID subset size (lowered to the number of images when there are fewer).
        num_workers: DataLoader workers.
        max_report_images: embed image triplets for at most this many rows of the HTML report (the
            worst ones); ``None`` for all.
        save_images: also write each generated and target image as PNG to
            ``out_dir/images/generated`` and ``out_dir/images/target`` (same names, same processing),
            ready for ``pix2pix study --real .../target --fake .../generated``.
        progress: show a tqdm progress bar.
        engine: who runs the generator, as in :func:`~pix2pix_lib.translate`: ``"auto"`` (measured,
            gated against float32), ``"torch"``, ``"torch-compiled"``, ``"onnxruntime"`` or ``"openvino"``.

    Returns:
        ``{"metrics": {name: dataset mean}, "per_image": [{"index", "path", name: value, ...}],
        "num_images", "skipped", "direction", "norm_mode", "precision", "engine", "device", "seconds", "images_per_second",
        "metric_names", "files"}``. Means are means of per-image values (PSNR is averaged per image).
    """
    names = M.check_metric_names(metrics)
    out_channels = getattr(generator, "out_channels", None)
    rgb_only = [name for name in names if name in _RGB_ONLY_METRICS]
    if out_channels not in (None, 1, 3) and rgb_only:
        warnings.warn(
            f"evaluate(): {', '.join(rgb_only)} need RGB images (ImageNet networks); skipped for a {out_channels}-band "
            "model (the other metrics are reported per band and averaged)",
            stacklevel=2,
        )
        names = [name for name in names if name not in _RGB_ONLY_METRICS]
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("evaluate(): the dataset is empty")
    if save_images and out_dir is None:
        raise ValueError("save_images=True needs out_dir to write the images to")
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not supported by evaluate(); choose one of {', '.join(PRECISIONS)}")
    direction = _check_direction(generator, dataset)
    # device, autocast, channels-last, norm mode and pixel ranges: the same owner as translate()
    runner = GeneratorRunner(generator, device=device, precision=precision, norm_mode=norm_mode, engine=engine)
    input_range, output_range = runner.input_range, runner.output_range
    data_range: PixelRange = getattr(dataset, "value_range", output_range)
    run_device = runner.device
    per_image_names = [name for name in names if M.METRICS[name].per_image or name == "lpips"]
    per_band = out_channels not in (None, 1, 3)  # multi-band: each per-image metric per band too
    band_names = [f"{name}_band{band}" for band in range(out_channels or 0) for name in per_image_names] if per_band else []
    view = getattr(getattr(generator, "task", None), "display_bands", None) or getattr(dataset, "display_bands", None)

    lpips_model = None
    if "lpips" in names:
        lpips_model = M.lpips_network(lpips_net) if isinstance(lpips_net, str) else lpips_net
        lpips_model = lpips_model.to(run_device)
    if feature_extractor is None and {"fid", "kid"} & set(names):  # load Inception once for both
        feature_extractor = M.inception_feature_extractor()
    fid_metric = M.build_fid(feature_extractor).to(run_device) if "fid" in names else None
    kid_metric = M.build_kid(feature_extractor, subset_size=kid_subset_size).to(run_device) if "kid" in names else None

    collect_images = out_dir is not None
    triplets: list[tuple[bytes, bytes, bytes]] = []
    if collect_images:
        from .report import encode_jpeg, save_png

    skip_unreadable = getattr(dataset, "on_error", "raise") == "skip" and hasattr(dataset, "load_pair")
    source_dataset = _CountOnce(dataset) if skip_unreadable else dataset
    loader = DataLoader(
        source_dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
        collate_fn=_collate if skip_unreadable else None,
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    started = time.perf_counter()
    mode = runner.norm_mode
    with runner.session(), tqdm(
        total=len(dataset), desc="evaluate", unit="img", disable=not progress  # type: ignore[arg-type]
    ) as bar:
        for batch_index, batch in enumerate(loader):
            skipped += batch.pop("skipped", [])
            if not batch:
                continue
            source = _batch_tensor(batch, "A", batch_index).to(run_device)
            target = _batch_tensor(batch, "B", batch_index).to(run_device)
            source01 = to_unit(source, data_range)
            output = runner.run(from_unit(source01, input_range) if data_range != input_range else source)
            if output.shape != target.shape:
                raise ValueError(
                    f"generator output {tuple(output.shape)} does not match target {tuple(target.shape)} "
                    f"in batch {batch_index}; check the dataset's direction and the generator's channels"
                )
            fake01 = to_unit(output, output_range).clamp(0, 1)
            real01 = to_unit(target, data_range).clamp(0, 1)
            values = {
                name: M.METRICS[name].function(fake01, real01).cpu()  # type: ignore[misc]
                for name in per_image_names
                if name != "lpips"
            }
            if per_band:
                for band in range(fake01.shape[1]):
                    for name in per_image_names:
                        values[f"{name}_band{band}"] = M.METRICS[name].function(  # type: ignore[misc]
                            fake01[:, band : band + 1], real01[:, band : band + 1]
                        ).cpu()
            if lpips_model is not None:
                values["lpips"] = M.lpips(fake01, real01, network=lpips_model).cpu()
            for metric in (fid_metric, kid_metric):
                if metric is not None:
                    metric.update(real01, real=True)
                    metric.update(fake01, real=False)
            paths = batch.get("path", [None] * source.shape[0])
            for offset in range(source.shape[0]):
                index = len(rows)
                path = paths[offset] if paths[offset] is not None else f"item {index}"
                numbers = {name: float(values[name][offset]) for name in per_image_names + band_names}
                rows.append({"index": index, "path": str(path), **numbers})
                if collect_images:
                    shown = [rgb_view(images[offset : offset + 1].clamp(0, 1), _view(view, images))[0]
                             for images in (source01, fake01, real01)]  # the band-to-RGB view
                    triplets.append(tuple(encode_jpeg(image) for image in shown))  # type: ignore[arg-type]
                if save_images:
                    name = f"{index:05d}_{Path(str(path)).stem}.png"
                    for kind, images in (("generated", fake01), ("target", real01)):
                        where = Path(out_dir) / "images" / kind / name  # type: ignore[arg-type]
                        if images.shape[1] in (1, 3):
                            save_png(images[offset], where)
                        else:  # other band counts: every band, float32 in [0, 1], as a TIFF
                            write_bands(where.with_suffix(".tif"), images[offset].permute(1, 2, 0).float().cpu().numpy())
            bar.update(len(rows) + len(skipped) - bar.n)
    seconds = time.perf_counter() - started
    if not rows:
        raise ValueError(f"evaluate(): no readable pair in the dataset ({len(skipped)} skipped)")

    means: dict[str, float] = {}
    for name in per_image_names + band_names:
        means[name] = float(torch.tensor([row[name] for row in rows], dtype=torch.float64).mean())
    if fid_metric is not None:
        means["fid"] = float(fid_metric.compute())
    if kid_metric is not None:
        kid_metric.subset_size = min(kid_metric.subset_size, len(rows))
        kid_mean, kid_std = kid_metric.compute()
        means["kid_mean"], means["kid_std"] = float(kid_mean), float(kid_std)

    result: dict[str, Any] = {
        "metrics": means,
        "per_image": rows,
        "metric_names": per_image_names + band_names,
        "num_images": len(rows),
        "skipped": skipped,
        "direction": direction,
        "norm_mode": mode,
        "precision": runner.float_precision,
        "engine": ",".join(runner.engines_used) or engine,
        "device": str(run_device),
        "seconds": seconds,
        "images_per_second": len(rows) / seconds if seconds > 0 else float("inf"),
        "files": {},
    }
    if out_dir is not None:
        from .report import write_report

        result["files"] = write_report(result, out_dir, triplets=triplets, max_images=max_report_images)
    return result
