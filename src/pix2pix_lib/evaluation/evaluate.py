"""Run a generator over a paired dataset and score every output against its target.

:func:`evaluate` returns the dataset means and one row of numbers per image; given ``out_dir`` it
also writes ``metrics.json``, ``per_image.csv`` and ``report.html`` (see :mod:`.report`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .. import metrics as M
from ..devices import DeviceLike, select_device
from ..inference import inference_norm, resolve_norm_mode

__all__ = [
    "ALL_METRICS",
    "DEFAULT_METRICS",
    "HIGHER_IS_BETTER",
    "evaluate",
]

#: Per-image metrics computed when ``metrics`` is not given (no weights needed).
DEFAULT_METRICS: tuple[str, ...] = ("psnr", "ssim", "mse", "mae", "uqi", "vif")
#: Every name ``evaluate`` understands. ``lpips`` is per image; ``fid`` and ``kid`` are per dataset.
ALL_METRICS: tuple[str, ...] = (*DEFAULT_METRICS, "lpips", "fid", "kid")
#: Direction of "better" for each per-image metric (the report sorts worst first).
HIGHER_IS_BETTER: dict[str, bool] = {
    "psnr": True,
    "ssim": True,
    "uqi": True,
    "vif": True,
    "mse": False,
    "mae": False,
    "lpips": False,
}
_DATASET_METRICS = ("fid", "kid")



@contextlib.contextmanager
def _inference(generator: nn.Module, norm_mode: str | None) -> Iterator[str]:
    """Put ``generator`` in its test-time configuration for the block; yields the mode used.

    :func:`pix2pix_lib.inference.inference_norm` (modes ``"running"``, ``"per_image"``, ``"paper"``)
    restores every submodule's train/eval state afterwards.
    """
    mode = resolve_norm_mode(norm_mode, generator)  # same rule as translate()
    with inference_norm(generator, mode), torch.inference_mode():
        yield mode


def _check_metrics(metrics: Sequence[str]) -> list[str]:
    if isinstance(metrics, str):
        metrics = [metrics]
    names = [name.strip().lower() for name in metrics]
    unknown = [name for name in names if name not in ALL_METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metric(s) {unknown or metrics!r}; choose from {', '.join(ALL_METRICS)}")
    return list(dict.fromkeys(names))


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
    metrics: Sequence[str] = DEFAULT_METRICS,
    device: DeviceLike = "auto",
    batch_size: int = 8,
    out_dir: str | Path | None = None,
    norm_mode: str | None = None,
    *,
    feature_extractor: nn.Module | None = None,
    lpips_net: nn.Module | str = "alex",
    kid_subset_size: int = 1000,
    num_workers: int = 0,
    max_report_images: int | None = 500,
    save_images: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Translate every input of ``dataset`` with ``generator`` and score it against the target.

    Args:
        generator: maps ``[-1, 1]`` inputs to ``[-1, 1]`` outputs of the target's shape.
        dataset: items ``{"A": (C, H, W), "B": (C, H, W), "path": str}`` in ``[-1, 1]``, such as
            :class:`pix2pix_lib.data.PairedImageDataset`; ``"A"`` is the input and ``"B"`` the target
            (the dataset's ``direction`` already decided which half is which).
        metrics: names from :data:`ALL_METRICS`. Per-image ones get a value per image and a mean;
            ``fid`` and ``kid`` (KID mean and std) are computed once over the dataset.
        device: where the generator and metrics run (``"auto"`` picks CUDA, MPS, then CPU).
        batch_size: images per forward pass.
        out_dir: when given, write ``metrics.json``, ``per_image.csv`` and ``report.html`` there.
        norm_mode: how normalisation layers behave at test time (see :mod:`pix2pix_lib.inference`);
            ``None`` uses its default.
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

    Returns:
        ``{"metrics": {name: dataset mean}, "per_image": [{"index", "path", name: value, ...}],
        "num_images", "direction", "norm_mode", "device", "seconds", "images_per_second",
        "metric_names", "files"}``. Means are means of per-image values (PSNR is averaged per image).
    """
    names = _check_metrics(metrics)
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("evaluate(): the dataset is empty")
    if save_images and out_dir is None:
        raise ValueError("save_images=True needs out_dir to write the images to")
    source_key, target_key = "A", "B"
    direction = getattr(dataset, "direction", None)  # recorded in the results when the dataset knows it
    run_device = select_device(device)
    generator = generator.to(run_device)
    per_image_names = [name for name in names if name not in _DATASET_METRICS]

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

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    total = len(dataset)  # type: ignore[arg-type]
    with _inference(generator, norm_mode) as used_mode, tqdm(
        total=total, desc="evaluate", unit="img", disable=not progress
    ) as bar:
        for batch_index, batch in enumerate(loader):
            source = _batch_tensor(batch, source_key, batch_index).to(run_device)
            target = _batch_tensor(batch, target_key, batch_index).to(run_device)
            output = generator(source)
            if output.shape != target.shape:
                raise ValueError(
                    f"generator output {tuple(output.shape)} does not match target {tuple(target.shape)} "
                    f"in batch {batch_index}; check the dataset's direction and the generator's channels"
                )
            fake01, real01 = M.to_unit_range(output.float()), M.to_unit_range(target.float())
            values = {name: M.PAIRED_METRICS[name](fake01, real01).cpu() for name in per_image_names if name != "lpips"}
            if lpips_model is not None:
                values["lpips"] = M.lpips(fake01, real01, network=lpips_model).cpu()
            if fid_metric is not None:
                fid_metric.update(real01, real=True)
                fid_metric.update(fake01, real=False)
            if kid_metric is not None:
                kid_metric.update(real01, real=True)
                kid_metric.update(fake01, real=False)
            paths = batch.get("path", [None] * source.shape[0])
            for offset in range(source.shape[0]):
                index = len(rows)
                path = paths[offset] if paths[offset] is not None else f"item {index}"
                numbers = {name: float(values[name][offset]) for name in per_image_names}
                rows.append({"index": index, "path": str(path), **numbers})
            if collect_images:
                source01 = M.to_unit_range(source.float())
                for offset in range(source.shape[0]):
                    triplets.append(
                        (encode_jpeg(source01[offset]), encode_jpeg(fake01[offset]), encode_jpeg(real01[offset]))
                    )
                    if save_images:
                        row = rows[len(rows) - source.shape[0] + offset]
                        name = f"{row['index']:05d}_{Path(row['path']).stem}.png"
                        save_png(fake01[offset], Path(out_dir) / "images" / "generated" / name)
                        save_png(real01[offset], Path(out_dir) / "images" / "target" / name)
            bar.update(source.shape[0])
    seconds = time.perf_counter() - started

    means: dict[str, float] = {}
    for name in per_image_names:
        column = torch.tensor([row[name] for row in rows], dtype=torch.float64)
        means[name] = float(column.mean())
    if fid_metric is not None:
        means["fid"] = float(fid_metric.compute())
    if kid_metric is not None:
        kid_metric.subset_size = min(kid_metric.subset_size, len(rows))
        kid_mean, kid_std = kid_metric.compute()
        means["kid_mean"], means["kid_std"] = float(kid_mean), float(kid_std)

    result: dict[str, Any] = {
        "metrics": means,
        "per_image": rows,
        "metric_names": per_image_names,
        "num_images": len(rows),
        "direction": direction,
        "norm_mode": used_mode,
        "device": str(run_device),
        "seconds": seconds,
        "images_per_second": len(rows) / seconds if seconds > 0 else float("inf"),
        "files": {},
    }
    if out_dir is not None:
        from .report import write_report

        result["files"] = write_report(result, out_dir, triplets=triplets, max_images=max_report_images)
    return result
