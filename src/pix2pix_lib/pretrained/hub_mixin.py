"""Hub support for our generators: ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``.

Built on huggingface_hub's :class:`~huggingface_hub.PyTorchModelHubMixin`, which records the
constructor arguments and handles downloads and uploads. On top of it, for pix2pix generators:

* ``config.json`` holds the constructor arguments (top level, as the mixin expects) plus
  ``"architecture"`` (which class to build) and ``"task"`` (:class:`TaskMetadata`: direction,
  domains, training size, pixel range, recommended normalisation mode, licence, metrics). The
  mixin hands keys that are not constructor arguments to ``_from_pretrained`` as ``config``;
  that is how the task metadata comes back.
* ``model.safetensors``, ``config.json`` and the generated ``README.md`` are written atomically.
* Loading is strict: a missing, unexpected or mis-shaped tensor is an error that lists them.

This module imports nothing from :mod:`pix2pix_lib.models`, so the generator classes can inherit from it.
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin, constants

from ..atomic_io import write_text_atomically

from .checkpoints import (
    CheckpointError,
    load_state_dict_strict,
    read_state_dict,
    save_state_dict,
)
from .hub import download_file
from .metadata import TaskMetadata

__all__ = ["GENERATOR_CLASSES", "GeneratorHubMixin", "MODEL_CARD_TEMPLATE"]

PROJECT_URL = "https://github.com/pix2pix-lib/pix2pix_lib"
PAPER_URL = "https://arxiv.org/abs/1611.07004"
DOCS_URL = f"{PROJECT_URL}/tree/main/docs/pretrained.md"

#: architecture name (the ``"architecture"`` key of config.json) -> generator class
GENERATOR_CLASSES: dict[str, type] = {}

MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

A [pix2pix]({{ paper_url }}) image-to-image generator (`{{ architecture }}`, {{ "{:,}".format(num_parameters) }} parameters), saved with [pix2pix_lib]({{ repo_url }}).
{% if task.input_domain and task.output_domain %}
It translates **{{ task.input_domain }}** into **{{ task.output_domain }}**{% if task.direction %} (direction `{{ task.direction }}` of the pix2pix `A|B` image pairs){% endif %}.
{% endif %}
## Usage

```python
from pix2pix_lib import translate

result = translate("input.jpg", model="{{ repo_id }}")  # PIL image in, PIL image out
result.save("output.png")
```

To keep the network around (e.g. for many calls): `generator = pix2pix_lib.load_pretrained("{{ repo_id }}")`,
then `translate(images, model=generator)`. On the command line:
`pix2pix translate input.jpg --model {{ repo_id }} --out results/`.

## Details

| setting | value |
|---|---|
| architecture | `{{ architecture }}` |
{% for key, value in constructor.items() %}| {{ key }} | `{{ value }}` |
{% endfor %}| training image size | {{ task.image_size or "not recorded" }} |
| pixel range | input {{ task.input_range }}, output {{ task.output_range }} |
| recommended norm mode | {{ task.recommended_norm_mode or "library default" }} |
| trained on | {{ task.trained_on or "not recorded" }} |
| licence | {{ task.license or "not recorded" }} |

## Metrics

{% if task.metrics %}| metric | value |
|---|---|
{% for name, value in task.metrics.items() %}| {{ name }} | {{ value }} |
{% endfor %}{% else %}No metrics were recorded with these weights.
{% endif %}
## Links

- Code: {{ repo_url }}
- Paper: {{ paper_url }} (Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017)
- Docs: {{ docs_url }}
"""


class GeneratorHubMixin(
    PyTorchModelHubMixin,
    library_name="pix2pix_lib",
    tags=["pix2pix", "image-to-image", "gan"],
    pipeline_tag="image-to-image",
    repo_url=PROJECT_URL,
    paper_url=PAPER_URL,
    docs_url=DOCS_URL,
    model_card_template=MODEL_CARD_TEMPLATE,
):
    """Adds ``save_pretrained``, ``from_pretrained`` and ``push_to_hub`` to a generator ``nn.Module``.

    Subclasses name their architecture in the class statement,
    ``class UNetGenerator(nn.Module, GeneratorHubMixin, architecture="pix2pix-unet")``, and store
    each constructor argument as an attribute of the same name.
    """

    architecture: ClassVar[str] = ""
    #: what the generator was trained to do; ``None`` until known (set it before ``save_pretrained``)
    task: TaskMetadata | None = None

    def __init_subclass__(cls, *, architecture: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if architecture is not None:
            cls.architecture = architecture
            GENERATOR_CLASSES[architecture] = cls

    # --- config ---------------------------------------------------------------------------------------
    def constructor_arguments(self) -> dict[str, Any]:
        """The arguments that rebuild this generator: ``type(self)(**self.constructor_arguments())``."""
        parameters = list(inspect.signature(type(self).__init__).parameters.values())[1:]
        return {
            p.name: getattr(self, p.name)
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }

    def hub_config(self) -> dict[str, Any]:
        """What ``config.json`` holds: constructor arguments, architecture and task metadata."""
        from .. import __version__

        return {
            **self.constructor_arguments(),
            "architecture": self.architecture,
            "task": self.task.to_dict() if self.task is not None else None,
            "pix2pix_lib_version": __version__,
        }

    # --- saving ---------------------------------------------------------------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        """Write the weights as ``model.safetensors`` (atomically)."""
        save_state_dict(
            self.state_dict(), Path(save_directory) / constants.SAFETENSORS_SINGLE_FILE, {"format": "pt"}
        )

    def save_pretrained(  # type: ignore[override]
        self,
        save_directory: str | os.PathLike[str],
        *,
        config: dict[str, Any] | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict[str, Any] | None = None,
        **push_to_hub_kwargs: Any,
    ) -> str | None:
        """Write ``model.safetensors``, ``config.json`` and (unless one exists) ``README.md`` to a folder.

        ``config`` replaces the generated config (it must still hold the constructor arguments).
        With ``push_to_hub=True`` the folder is then uploaded to ``repo_id`` and the commit URL returned.
        """
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        if config is None:
            config = self.hub_config()
        elif is_dataclass(config):
            config = asdict(config)  # type: ignore[arg-type]
        self._save_pretrained(save_directory)
        write_text_atomically(
            save_directory / constants.CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True) + "\n"
        )
        card_path = save_directory / constants.REPOCARD_NAME
        if not card_path.exists():  # like huggingface_hub: never overwrite a card the user wrote
            card = self.generate_model_card(**(model_card_kwargs or {}))
            write_text_atomically(card_path, str(card))
        if push_to_hub:
            kwargs = {**push_to_hub_kwargs, "config": config}
            return self.push_to_hub(
                repo_id or save_directory.name, model_card_kwargs=model_card_kwargs, **kwargs
            )
        return None

    def push_to_hub(
        self, repo_id: str, *, model_card_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> str:  # type: ignore[override]
        """Upload config, weights and model card to Hub repo ``repo_id`` in one commit; returns the commit URL."""
        model_card_kwargs = {"repo_id": repo_id, **(model_card_kwargs or {})}
        return super().push_to_hub(repo_id, model_card_kwargs=model_card_kwargs, **kwargs)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The README.md: usage, architecture, task metadata and metrics (when recorded)."""
        info = self._hub_mixin_info
        card_data = ModelCardData(**info.model_card_data.to_dict())
        task = self.task if self.task is not None else TaskMetadata(image_size=None)
        if task.license:
            card_data.license = task.license.lower()
        direction = (
            f"{task.input_domain} to {task.output_domain}" if task.input_domain and task.output_domain else ""
        )
        template_kwargs = {
            "title": f"pix2pix generator: {direction}" if direction else "pix2pix generator",
            "repo_id": "path/to/this/folder",
            "architecture": self.architecture,
            "constructor": self.constructor_arguments(),
            "num_parameters": sum(p.numel() for p in self.parameters()),  # type: ignore[attr-defined]
            "task": task.to_dict(),
            **kwargs,
        }
        return ModelCard.from_template(
            card_data=card_data,
            template_str=info.model_card_template,
            repo_url=info.repo_url,
            paper_url=info.paper_url,
            docs_url=info.docs_url,
            **template_kwargs,
        )

    # --- loading --------------------------------------------------------------------------------------
    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        config: dict[str, Any] | None = None,
        **model_kwargs: Any,
    ) -> GeneratorHubMixin:
        """Build the generator from its constructor arguments and load the weights strictly."""
        config = config or {}
        architecture = config.get("architecture")
        if architecture not in (None, cls.architecture):
            raise CheckpointError(
                f"{model_id}: config.json describes a {architecture!r} generator, not {cls.__name__} "
                f"({cls.architecture!r}); load it with pix2pix_lib.load_pretrained({model_id!r})"
            )
        try:
            model = cls(**model_kwargs)
        except (TypeError, ValueError) as error:
            raise CheckpointError(
                f"{model_id}: config.json does not describe a valid {cls.__name__}: {error}"
            ) from error
        weights = _locate_weights(model_id, revision, cache_dir, force_download, local_files_only, token)
        load_state_dict_strict(model, read_state_dict(weights), str(weights))  # type: ignore[arg-type]
        model.task = TaskMetadata.from_dict(config.get("task"))
        model.to(map_location)  # type: ignore[attr-defined]
        model.eval()  # type: ignore[attr-defined]
        return model


def _locate_weights(
    model_id: str,
    revision: str | None,
    cache_dir: str | Path | None,
    force_download: bool,
    local_files_only: bool,
    token: str | bool | None,
) -> Path:
    """``model.safetensors`` of a saved folder or Hub repo; ``pytorch_model.bin`` when that is all there is."""
    names = (constants.SAFETENSORS_SINGLE_FILE, constants.PYTORCH_WEIGHTS_NAME)
    if os.path.isdir(model_id):
        for name in names:
            if (Path(model_id) / name).is_file():
                return Path(model_id) / name
        raise FileNotFoundError(f"{model_id}: no {' or '.join(names)} in this folder")
    errors = []
    for name in names:
        try:
            return download_file(
                model_id,
                name,
                revision,
                cache_dir=cache_dir,
                force_download=force_download,
                local_files_only=local_files_only,
                token=token,
            )
        except FileNotFoundError as error:
            errors.append(str(error))
    raise FileNotFoundError(f"{model_id}: no weights file found ({'; '.join(errors)})")
