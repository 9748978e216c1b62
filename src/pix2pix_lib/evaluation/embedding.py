"""Putting data into self-contained HTML pages (the report and the study page) safely.

* :func:`json_for_script` -- JSON for a ``<script>`` element that no value (a file name, a metric
  name) can break out of.
* :func:`data_uri` -- file bytes as a ``data:`` URI, so a page needs no other files.
"""

from __future__ import annotations

import base64
import json

__all__ = ["data_uri", "json_for_script"]

_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def json_for_script(value: object) -> str:
    """``value`` as JSON that is safe inside an HTML ``<script>`` element (any ``type``).

    ``<``, ``>``, ``&``, U+2028 and U+2029 become ``\\u003c``-style escapes (valid JSON and JavaScript
    with the same value), so no ``</script``, ``<!--`` or ``-->`` from a file name can end the element
    or switch the HTML parser into its "script data escaped" state.
    """
    return json.dumps(value).translate(_SCRIPT_ESCAPES)  # ensure_ascii: also lone surrogates of odd file names


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` for ``data``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
