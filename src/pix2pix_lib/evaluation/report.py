"""Write an evaluation to disk: ``metrics.json``, ``per_image.csv`` and a self-contained ``report.html``.

The HTML report embeds every image as a data URI and carries its own few lines of JavaScript, so
it opens offline, can be mailed or attached to an issue, and needs no server. Rows are sorted worst
first by the first per-image metric; clicking a column header re-sorts by that column.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from torch import Tensor

from ..atomic_io import write_bytes_atomically, write_text_atomically
from ..metrics import METRICS
from ..pixels import unit_to_uint8
from .embedding import data_uri, json_for_script

__all__ = ["REPORT_FILES", "encode_jpeg", "render_html", "save_png", "write_report"]

JPEG = "image/jpeg"
#: File names :func:`write_report` writes inside ``out_dir``.
REPORT_FILES = {"metrics": "metrics.json", "per_image": "per_image.csv", "report": "report.html"}

def _to_pil(image01: Tensor) -> Image.Image:
    array = unit_to_uint8(image01).cpu()
    if array.ndim == 3 and array.shape[0] == 1:
        return Image.fromarray(array[0].numpy(), mode="L")
    if array.ndim == 3 and array.shape[0] == 3:
        return Image.fromarray(array.permute(1, 2, 0).numpy(), mode="RGB")
    raise ValueError(f"expected a (1 or 3, H, W) image, got shape {tuple(image01.shape)}")


def encode_jpeg(image01: Tensor, quality: int = 90) -> bytes:
    """Encode one ``(C, H, W)`` image in ``[0, 1]`` (1 or 3 channels) as JPEG bytes."""
    buffer = io.BytesIO()
    _to_pil(image01).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def save_png(image01: Tensor, path: str | Path) -> Path:
    """Save one ``(C, H, W)`` image in ``[0, 1]`` as a PNG file (atomically)."""
    buffer = io.BytesIO()
    _to_pil(image01).save(buffer, format="PNG")
    return write_bytes_atomically(path, buffer.getvalue())


def _json_safe(value: Any) -> Any:
    """JSON has no inf/nan: write them as the strings ``"inf"``, ``"-inf"``, ``"nan"``."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _worst_first(rows: list[dict[str, Any]], metric: str | None) -> list[dict[str, Any]]:
    if metric is None:
        return list(rows)
    info = METRICS.get(metric)

    def key(row: dict[str, Any]) -> float:
        value = row[metric]
        if math.isnan(value):
            return -math.inf  # unknown values first: they need a look too
        return info.goodness(value) if info is not None else value

    return sorted(rows, key=key)


def _js_number(value: float) -> str:
    """A number as JavaScript's ``parseFloat`` reads it (``Infinity``, not Python's ``inf``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def _definition(name: str) -> str:
    """The registry's definition of a result column (``kid_mean``/``kid_std`` belong to ``kid``)."""
    metric = METRICS.get(name) or METRICS.get(name.rsplit("_", 1)[0])
    return metric.description if metric is not None else ""


def _format(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"


def write_report(
    result: dict[str, Any],
    out_dir: str | Path,
    triplets: Sequence[tuple[bytes, bytes, bytes]] = (),
    max_images: int | None = 500,
) -> dict[str, str]:
    """Write ``metrics.json``, ``per_image.csv`` and ``report.html`` for an :func:`evaluate` result.

    ``triplets[i]`` holds the JPEG bytes of (input, generated, target) of ``result["per_image"][i]``;
    images are embedded for the ``max_images`` worst rows (``None``: all). Returns the paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = list(result.get("metric_names", []))
    rows: list[dict[str, Any]] = result["per_image"]

    summary = {key: value for key, value in result.items() if key not in ("per_image", "files")}
    summary["metric_definitions"] = {name: _definition(name) for name in result["metrics"]}
    summary["averaging"] = "means of per-image values (PSNR averaged per image)"
    metrics_path = write_text_atomically(out / REPORT_FILES["metrics"], json.dumps(_json_safe(summary), indent=2) + "\n")

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["index", "path", *names], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: (repr(value) if isinstance(value, float) else value) for key, value in row.items()})
    csv_path = write_text_atomically(out / REPORT_FILES["per_image"], buffer.getvalue())

    html_path = write_text_atomically(out / REPORT_FILES["report"], render_html(result, triplets, max_images))
    return {"metrics": str(metrics_path), "per_image": str(csv_path), "report": str(html_path)}


def render_html(
    result: dict[str, Any], triplets: Sequence[tuple[bytes, bytes, bytes]] = (), max_images: int | None = 500
) -> str:
    """The self-contained HTML report (see :func:`write_report`)."""
    names: list[str] = list(result.get("metric_names", []))
    ordered = _worst_first(result["per_image"], names[0] if names else None)
    limit = len(ordered) if max_images is None else max_images

    summary_rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{_format(value)}</td>"
        f"<td class='def'>{html.escape(_definition(name))}</td></tr>"
        for name, value in result["metrics"].items()
    )
    header_cells = []
    for name in names:
        info = METRICS.get(name)
        higher_better = info.higher_is_better if info is not None else True
        ideal = info.ideal if info is not None else None
        arrow = f"→{ideal:g}" if ideal is not None else ("↑" if higher_better else "↓")
        header_cells.append(
            f"<th class='sortable num' data-key='{html.escape(name)}' data-higher-better='{int(higher_better)}'"
            f" data-ideal='{'' if ideal is None else ideal}' title='click to sort'>{html.escape(name)} {arrow}</th>"
        )
    body = []
    for rank, row in enumerate(ordered):
        index, path = row["index"], str(row["path"])
        if rank < limit and index < len(triplets):
            cells = "".join(
                f"<td><img alt='{label}' src='{data_uri(data, JPEG)}'></td>"
                for label, data in zip(("input", "generated", "target"), triplets[index], strict=True)
            )
        else:
            cells = "<td colspan='3' class='noimg'>(image not embedded)</td>"
        numbers = "".join(
            f"<td class='num' data-key='{html.escape(name)}' data-value='{_js_number(row[name])}'>"
            f"{_format(row[name])}</td>"
            for name in names
        )
        body.append(
            f"<tr data-index='{index}'><td class='num' data-key='index' data-value='{index}'>{index}</td>"
            f"<td class='path' title='{html.escape(path)}'>{html.escape(Path(path).name)}</td>{cells}{numbers}</tr>"
        )
    settings = ", ".join(
        f"{key}: {html.escape(str(result.get(key)))}" for key in ("num_images", "direction", "norm_mode", "device")
    )
    timing = f"{result.get('seconds', 0.0):.1f} s ({result.get('images_per_second', 0.0):.2f} images/s)"
    sort_note = f"worst first by {html.escape(names[0])}" if names else "dataset order"
    return _HTML_TEMPLATE.format(
        settings=settings,
        timing=timing,
        summary_rows=summary_rows,
        headers="".join(header_cells),
        rows="\n".join(body),
        sort_note=sort_note,
        first_metric=json_for_script(names[0] if names else ""),
    )


_HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>pix2pix evaluation report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 6px; vertical-align: middle; }}
th.sortable {{ cursor: pointer; background: #f0f0f0; user-select: none; }}
th.sortable.active {{ background: #dde8ff; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.path {{ max-width: 16em; word-break: break-all; font-size: 0.85em; }}
td.def {{ color: #555; font-size: 0.85em; }}
td.noimg {{ color: #999; text-align: center; }}
img {{ max-width: 220px; max-height: 220px; display: block; }}
</style></head>
<body>
<h1>pix2pix evaluation report</h1>
<p>{settings}; {timing}</p>
<h2>Dataset means</h2>
<table id="summary"><tbody>{summary_rows}</tbody></table>
<h2>Per image</h2>
<p>Columns: input | generated | target. Rows are sorted <span id="sort-note">{sort_note}</span>;
click a metric header to sort worst first by it, click again to reverse
(or open <code>report.html?sort=NAME&amp;order=best</code>). ↑: higher is better, ↓: lower is better,
→1: closer to 1 is better.</p>
<table id="per-image"><thead><tr><th class="sortable num" data-key="index" data-higher-better="0">#</th>
<th>path</th><th>input</th><th>generated</th><th>target</th>{headers}</tr></thead>
<tbody>
{rows}
</tbody></table>
<script>
(function () {{
  var table = document.getElementById("per-image");
  var headers = table.querySelectorAll("th.sortable");
  var state = {{ key: {first_metric}, worstFirst: true }};
  function cellValue(row, key) {{ return parseFloat(row.querySelector('td[data-key="' + key + '"]').dataset.value); }}
  function sortBy(th, worstFirst) {{
    var key = th.dataset.key, higherBetter = th.dataset.higherBetter === "1";
    var ideal = th.dataset.ideal ? parseFloat(th.dataset.ideal) : null;
    var tbody = table.tBodies[0], rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {{
      var x = cellValue(a, key), y = cellValue(b, key);
      if (ideal !== null) {{ x = -Math.abs(x - ideal); y = -Math.abs(y - ideal); higherBetter = true; }}
      var d = higherBetter ? x - y : y - x;          // ascending "goodness": worst first
      if (isNaN(d)) d = isNaN(x) ? -1 : 1;
      return worstFirst ? d : -d;
    }});
    rows.forEach(function (r) {{ tbody.appendChild(r); }});
    headers.forEach(function (h) {{ h.classList.remove("active"); }});
    th.classList.add("active");
    document.getElementById("sort-note").textContent =
      (worstFirst ? "worst first" : "best first") + " by " + th.dataset.key;
    state = {{ key: th.dataset.key, worstFirst: worstFirst }};
  }}
  headers.forEach(function (th) {{
    th.addEventListener("click", function () {{
      sortBy(th, state.key === th.dataset.key ? !state.worstFirst : true);
    }});
  }});
  // ?sort=KEY[&order=best] opens the report sorted by another column (worst first by default).
  var query = new URLSearchParams(window.location.search);
  if (query.has("sort")) {{
    headers.forEach(function (th) {{
      if (th.dataset.key === query.get("sort")) sortBy(th, query.get("order") !== "best");
    }});
  }}
  window.report = {{ sortBy: function (key, worstFirst) {{
    headers.forEach(function (th) {{ if (th.dataset.key === key) sortBy(th, worstFirst !== false); }});
  }}, order: function () {{
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) {{ return +r.dataset.index; }});
  }} }};
}})();
</script>
</body></html>
"""
