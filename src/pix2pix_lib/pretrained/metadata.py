"""What a generator was trained to do: the task metadata stored next to its weights in ``config.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

__all__ = ["Direction", "TaskMetadata"]

Direction = Literal["AtoB", "BtoA"]


@dataclass
class TaskMetadata:
    """The task a generator solves and how to feed it; saved as the ``"task"`` entry of ``config.json``.

    ``translate`` reads it to pick the resize size, the value range of pixels and the
    normalisation-layer mode; the model card shows it.

    Args:
        direction: which half of the pix2pix dataset's ``A|B`` pairs is the input: ``"AtoB"`` or
            ``"BtoA"`` (facades: label -> photo is ``"BtoA"``; maps: satellite -> map is ``"AtoB"``).
        input_domain: what the input images show, e.g. ``"satellite photo"``.
        output_domain: what the outputs show, e.g. ``"map"``.
        image_size: side of the square images it was trained on; ``size="resize"`` resizes to it.
        input_range: the pixel values the network expects, (black, white).
        output_range: the pixel values the network produces, (black, white).
        recommended_norm_mode: the normalisation-layer mode to use at inference (see
            :func:`pix2pix_lib.inference.inference_norm`); ``None`` uses the library default.
        trained_on: the training data, in words.
        license: licence of the weights (SPDX id where there is one).
        metrics: measured quality, e.g. ``{"psnr_db": 21.3}``; shown on the model card.
    """

    direction: Direction | None = None
    input_domain: str | None = None
    output_domain: str | None = None
    image_size: int | None = 256
    input_range: tuple[float, float] = (-1.0, 1.0)
    output_range: tuple[float, float] = (-1.0, 1.0)
    recommended_norm_mode: str | None = None
    trained_on: str | None = None
    license: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in (None, "AtoB", "BtoA"):
            raise ValueError(f"direction must be 'AtoB', 'BtoA' or None, got {self.direction!r}")
        if self.image_size is not None and (not isinstance(self.image_size, int) or self.image_size < 1):
            raise ValueError(f"image_size must be a positive int or None, got {self.image_size!r}")
        for name in ("input_range", "output_range"):
            low, high = (float(value) for value in getattr(self, name))
            if not low < high:
                raise ValueError(f"{name} must be (low, high) with low < high, got {getattr(self, name)!r}")
            setattr(self, name, (low, high))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        data["input_range"] = list(self.input_range)
        data["output_range"] = list(self.output_range)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TaskMetadata | None:
        """Inverse of :meth:`to_dict`; keys this version does not know are ignored (forward compatibility)."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError(f"task metadata must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for name in ("input_range", "output_range"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)
