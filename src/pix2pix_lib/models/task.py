"""What a generator *is* for: the task metadata that travels with its weights from training to the Hub.

:class:`TaskMetadata` is saved as the ``"task"`` entry of every ``config.json`` this library writes
(``save_pretrained`` folders, the generator of every training checkpoint, Hub repos), and read back
by :func:`~pix2pix_lib.load_pretrained`. :func:`~pix2pix_lib.translate`,
:func:`~pix2pix_lib.evaluate`, the trainer's validation and sample grids and the model card all take
the direction, pixel ranges, image size and recommended norm mode from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from ..norm_modes import NormMode, check_norm_mode
from ..pixels import DEFAULT_PIXEL_RANGE, PixelRange, ValueScale, check_pixel_range

__all__ = ["DIRECTIONS", "MAX_IMAGE_SIZE", "Direction", "TaskMetadata", "check_direction"]

#: the largest training image side a task may record (``translate(size="resize")`` resizes to it)
MAX_IMAGE_SIZE = 16384

Direction = Literal["AtoB", "BtoA"]
#: Which half of a pix2pix ``A|B`` pair is the input: the one definition, CLI choices included.
DIRECTIONS: tuple[Direction, ...] = ("AtoB", "BtoA")


def check_direction(direction: object, option: str = "direction") -> Direction:
    """``direction`` itself when it is ``"AtoB"`` or ``"BtoA"``; :class:`ValueError` naming ``option`` otherwise."""
    if direction not in DIRECTIONS:
        raise ValueError(f"{option}={direction!r} must be one of {', '.join(map(repr, DIRECTIONS))}")
    return direction  # type: ignore[return-value]


@dataclass
class TaskMetadata:
    """The task a generator solves and how to feed it; saved as the ``"task"`` entry of ``config.json``.

    Args:
        direction: which half of the pix2pix dataset's ``A|B`` pairs is the input: ``"AtoB"`` or
            ``"BtoA"`` (facades: label -> photo is ``"BtoA"``; maps: satellite -> map is ``"AtoB"``).
        input_domain: what the input images show, e.g. ``"satellite photo"``.
        output_domain: what the outputs show, e.g. ``"map"``.
        image_size: side of the square images it was trained on; ``size="resize"`` resizes to it
            (``None``: not recorded; ``translate`` then uses 256). ``fit()`` fills it in from the dataset.
        input_range: the pixel values the network expects, (black, white).
        output_range: the pixel values the network produces, (black, white).
        recommended_norm_mode: the normalisation-layer mode to use at inference (see
            :func:`pix2pix_lib.norm_modes.inference_norm`); ``None`` uses the library default.
        trained_on: the training data, in words.
        license: licence of the weights (SPDX id where there is one).
        metrics: measured quality, e.g. ``{"psnr_db": 21.3}``; shown on the model card.
        input_scale: how the input files' stored values map to [0, 1] (a
            :class:`~pix2pix_lib.pixels.ValueScale`: ``"uint16"``, ``10000``, per-band pairs, ...);
            ``None``: 8-bit data (0..255), as every model before value scales.
        output_scale: the same for the outputs; ``translate`` maps results back through it.
        display_bands: which bands sample grids and reports show as (R, G, B) (or one band as gray);
            ``None``: the first three bands, or band 0 as gray.

    ``input_scale``, ``output_scale`` and ``display_bands`` are left out of :meth:`to_dict` when ``None``,
    so 8-bit models write the same ``config.json`` as before and old files load unchanged.
    """

    direction: Direction | None = None
    input_domain: str | None = None
    output_domain: str | None = None
    image_size: int | None = None
    input_range: PixelRange = DEFAULT_PIXEL_RANGE
    output_range: PixelRange = DEFAULT_PIXEL_RANGE
    recommended_norm_mode: NormMode | None = None
    trained_on: str | None = None
    license: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    input_scale: ValueScale | None = None
    output_scale: ValueScale | None = None
    display_bands: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("input_scale", "output_scale"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, ValueScale.parse(value, f"TaskMetadata.{name}"))
        if self.display_bands is not None:
            bands = self.display_bands
            if (
                not isinstance(bands, (list, tuple)) or len(bands) not in (1, 3)
                or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in bands)
            ):
                raise ValueError(f"TaskMetadata.display_bands must be 1 or 3 band indices >= 0, got {bands!r}")
            self.display_bands = tuple(bands)
        if self.direction is not None:
            check_direction(self.direction, "TaskMetadata.direction")
        if self.image_size is not None and (
            not isinstance(self.image_size, int)
            or isinstance(self.image_size, bool)
            or not 1 <= self.image_size <= MAX_IMAGE_SIZE
        ):
            raise ValueError(
                f"TaskMetadata.image_size must be an int from 1 to {MAX_IMAGE_SIZE} or None, got {self.image_size!r}"
            )
        self.input_range = check_pixel_range(self.input_range, "TaskMetadata.input_range")
        self.output_range = check_pixel_range(self.output_range, "TaskMetadata.output_range")
        if self.recommended_norm_mode is not None:
            check_norm_mode(self.recommended_norm_mode, "TaskMetadata.recommended_norm_mode")
        for name in ("input_domain", "output_domain", "trained_on", "license"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"TaskMetadata.{name} must be a string or None, got {value!r}")
        if not isinstance(self.metrics, dict) or not all(
            isinstance(key, str) and isinstance(value, (int, float)) and not isinstance(value, bool)
            for key, value in self.metrics.items()
        ):
            raise ValueError(f"TaskMetadata.metrics must map names to numbers, got {self.metrics!r}")

    def replace(self, **changes: Any) -> TaskMetadata:
        """A copy with ``changes`` applied (and checked)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        data["input_range"] = list(self.input_range)
        data["output_range"] = list(self.output_range)
        for name in ("input_scale", "output_scale", "display_bands"):
            value = getattr(self, name)
            if value is None:
                del data[name]  # absent, as in config.json files written before these fields existed
            else:
                data[name] = value.to_json() if isinstance(value, ValueScale) else list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, source: str = "task metadata") -> TaskMetadata | None:
        """Inverse of :meth:`to_dict`; keys this version does not know are ignored (forward compatibility).

        Raises :class:`ValueError` naming ``source`` when a known key holds a value of the wrong kind.
        """
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError(f"{source}: task metadata must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{key: value for key, value in data.items() if key in known})
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: {error}") from error
