"""``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` for the library's models: the one model format.

Built on huggingface_hub's :class:`~huggingface_hub.PyTorchModelHubMixin` (subclasses override
``_save_pretrained`` and ``_from_pretrained``, nothing else). A saved model is a folder (or Hub repo)
with:

* ``config.json``: the constructor arguments (top level, as the mixin expects), ``"architecture"``
  (the registry name of the class, see :mod:`pix2pix_lib.models.registry`) and ``"task"``
  (:class:`TaskMetadata`: direction, domains, training size, pixel ranges, recommended norm mode,
  licence, metrics);
* ``model.safetensors``: every parameter and buffer;
* ``README.md``: a model card (generators only; never overwrites one the user wrote).

The generator of every training checkpoint is such a folder, so a run folder, a checkpoint, a saved
folder and a Hub repo all load through the same code. Loading checks the config's values against
the constructor (:func:`~pix2pix_lib.models.construction.instantiate`) and the tensors strictly
(:func:`~pix2pix_lib.models.state_dict.load_state_dict_strict`); a file can never pick the class.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin, constants

from ..atomic_io import write_text_atomically
from ._model_files import ModelFiles, missing_local_path, no_local_note
from .construction import constructor_arguments, instantiate
from .integrity import MANIFEST_FILE, Manifest, read_json, write_manifest
from .state_dict import CheckpointError, load_state_dict_strict, read_state_dict, save_state_dict
from .task import TaskMetadata

__all__ = [
    "METADATA_KEYS",
    "MODEL_CARD_TEMPLATE",
    "PretrainedMixin",
    "missing_local_path",
    "no_local_note",
    "read_config",
]

#: keys of config.json that are not constructor arguments
METADATA_KEYS = ("architecture", "task", "pix2pix_lib_version", "class")

PROJECT_URL = "https://github.com/pix2pix-lib/pix2pix_lib"
PAPER_URL = "https://arxiv.org/abs/1611.07004"
DOCS_URL = f"{PROJECT_URL}/tree/main/docs/pretrained.md"

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


def read_config(path: Path, source: str | None = None) -> dict[str, Any]:
    """A ``config.json`` (or other JSON metadata file) as a dict; :class:`CheckpointError` naming the file when
    it is not a JSON object, too large or too deeply nested (:func:`~pix2pix_lib.models.integrity.read_json`)."""
    source = source or str(path)
    config = read_json(path, source)
    if not isinstance(config, dict):
        raise CheckpointError(f"{source}: expected a JSON object, found {type(config).__name__}")
    return config


class PretrainedMixin(
    PyTorchModelHubMixin,
    library_name="pix2pix_lib",
    tags=["pix2pix", "image-to-image", "gan"],
    pipeline_tag="image-to-image",
    repo_url=PROJECT_URL,
    paper_url=PAPER_URL,
    docs_url=DOCS_URL,
    model_card_template=MODEL_CARD_TEMPLATE,
):
    """Adds ``save_pretrained``, ``from_pretrained`` and ``push_to_hub`` to a model ``nn.Module``.

    Subclasses name their architecture in the class statement,
    ``class UNetGenerator(nn.Module, PretrainedMixin, architecture="pix2pix-unet")``, and store
    each constructor argument as an attribute of the same name. Loading by name (from a
    config.json that does not say which class it is) goes through
    :mod:`pix2pix_lib.models.registry`, which lists the classes explicitly.
    """

    architecture: ClassVar[str] = ""
    #: whether ``save_pretrained`` writes a README.md model card
    has_model_card: ClassVar[bool] = True
    #: what the model was trained to do; ``None`` until known (the trainer fills it in)
    task: TaskMetadata | None = None

    def __init_subclass__(cls, *, architecture: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Not inherited: a subclass (say, with its own forward) is not its parent's architecture until
        # it names one here or is registered (pix2pix_lib.models.register_model).
        cls.architecture = architecture or ""

    def hub_config(self) -> dict[str, Any]:
        """What ``config.json`` holds: constructor arguments, architecture and task metadata."""
        from .._version import __version__

        config = {
            **constructor_arguments(self),  # type: ignore[arg-type]
            "architecture": self.architecture or None,
            "task": self.task.to_dict() if self.task is not None else None,
            "pix2pix_lib_version": __version__,
        }
        if not self.architecture:  # for people; never imported (loading says how to register the class)
            config["class"] = f"{type(self).__module__}.{type(self).__qualname__}"
        return config

    # --- saving ---------------------------------------------------------------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        """Write the weights as ``model.safetensors`` (atomically)."""
        save_state_dict(
            self.state_dict(), Path(save_directory) / constants.SAFETENSORS_SINGLE_FILE, {"format": "pt"}  # type: ignore[attr-defined]
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

        ``config`` replaces the generated :meth:`hub_config` (huggingface_hub's ``push_to_hub`` passes
        it). With ``push_to_hub=True`` the folder is then uploaded to ``repo_id`` and the commit URL returned.
        """
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        config = self.hub_config() if config is None else config
        # An old manifest goes first: a save cut short then leaves an unverified folder, not a mismatched one.
        (save_directory / MANIFEST_FILE).unlink(missing_ok=True)
        self._save_pretrained(save_directory)
        write_text_atomically(
            save_directory / constants.CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True) + "\n"
        )
        card_path = save_directory / constants.REPOCARD_NAME
        if self.has_model_card and not card_path.exists():  # like huggingface_hub: never overwrite a user's card
            write_text_atomically(card_path, str(self.generate_model_card(**(model_card_kwargs or {}))))
        # SHA-256 of the weights and config (not of the model card, which people edit), checked on loading
        write_manifest(save_directory, [constants.SAFETENSORS_SINGLE_FILE, constants.CONFIG_NAME])
        if push_to_hub:
            return self.push_to_hub(
                repo_id or save_directory.name, model_card_kwargs=model_card_kwargs, **push_to_hub_kwargs
            )
        return None

    def push_to_hub(  # type: ignore[override]
        self, repo_id: str, *, model_card_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> str:
        """Upload config, weights and model card to Hub repo ``repo_id`` in one commit; returns the commit URL."""
        model_card_kwargs = {"repo_id": repo_id, **(model_card_kwargs or {})}
        return super().push_to_hub(repo_id, config=self.hub_config(), model_card_kwargs=model_card_kwargs, **kwargs)

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
            "constructor": constructor_arguments(self),  # type: ignore[arg-type]
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
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        verify: bool | None = None,
        **model_kwargs: Any,
    ) -> PretrainedMixin:
        """The model saved in a local folder or Hub repo, in eval mode with ``.task`` set.

        ``verify`` (default: True, unless inside
        :func:`~pix2pix_lib.models.integrity.skip_verification`) checks ``config.json`` and the weights
        against the folder's ``checksums.json`` before using them; ``verify=False`` skips that. Other
        arguments as for huggingface_hub's ``from_pretrained``; ``model_kwargs`` override config values.
        """
        model_id = os.fspath(pretrained_model_name_or_path)
        files = ModelFiles(model_id, revision, cache_dir, force_download, local_files_only, token)
        manifest = files.manifest(verify)
        config_path = files.get(constants.CONFIG_NAME, optional=True)
        config = None
        if config_path is not None:
            manifest.verify(constants.CONFIG_NAME, config_path)
            config = read_config(config_path, f"{model_id}/{constants.CONFIG_NAME}")
        return cls._from_pretrained(
            model_id=model_id,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
            config=config,
            _manifest=manifest,
            **model_kwargs,
        )

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
        verify: bool | None = None,
        _manifest: Manifest | None = None,
        **model_kwargs: Any,
    ) -> PretrainedMixin:
        """Build the model from its checked constructor arguments and load the (verified) weights strictly."""
        source = f"{model_id}/{constants.CONFIG_NAME}"
        files = ModelFiles(model_id, revision, cache_dir, force_download, local_files_only, token)
        manifest = _manifest if _manifest is not None else files.manifest(verify)
        config = config or {}
        if not isinstance(config, dict):
            raise CheckpointError(f"{source}: expected a JSON object, found {type(config).__name__}")
        architecture = config.get("architecture")
        if architecture not in (None, cls.architecture):
            raise CheckpointError(
                f"{source}: describes a {architecture!r} model, not {cls.__name__} ({cls.architecture!r}); "
                f"load it with pix2pix_lib.load_pretrained({model_id!r})"
            )
        # Every key of the config must be metadata or a constructor argument: a typo or a foreign key is an
        # error, not something huggingface_hub's from_pretrained silently drops.
        for transport_option in ("proxies", "resume_download"):  # passed by older huggingface_hub versions
            model_kwargs.pop(transport_option, None)
        arguments = {key: value for key, value in config.items() if key not in METADATA_KEYS}
        model = instantiate(cls, {**arguments, **model_kwargs}, source)
        weights = files.weights()
        manifest.verify(weights.name, weights)
        load_state_dict_strict(model, read_state_dict(weights), str(weights))
        try:
            model.task = TaskMetadata.from_dict(config.get("task"), f"{source} 'task'")  # type: ignore[attr-defined]
        except ValueError as error:
            raise CheckpointError(str(error)) from error
        model.to(map_location)  # type: ignore[attr-defined]
        model.eval()  # type: ignore[attr-defined]
        return model  # type: ignore[return-value]
