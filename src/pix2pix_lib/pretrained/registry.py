"""Named pretrained weights and the one loader for names, Hub repos, folders and files.

Like torchvision's weights enums, each entry pins everything needed to get the same network
every time: Hub repo, commit, file, checkpoint layout, and what the network does.

>>> from pix2pix_lib.pretrained import list_pretrained, load_pretrained
>>> list_pretrained()
['facades', 'maps']
>>> generator = load_pretrained("maps")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants
from torch import nn

from ..devices import DeviceLike, select_device
from .checkpoints import CheckpointError, read_state_dict
from .hub import download_file, is_repo_id
from .hub_mixin import GENERATOR_CLASSES
from .layouts import LayoutName, generator_from_state_dict
from .metadata import Direction, TaskMetadata

__all__ = ["PRETRAINED", "PretrainedWeights", "get_pretrained_info", "list_pretrained", "load_pretrained"]

_WEIGHTS_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class PretrainedWeights:
    """One named set of weights on the Hugging Face Hub, pinned to a commit.

    ``direction`` refers to the ``A|B`` pairs of the original pix2pix datasets (facades: A = photo,
    B = label map; maps: A = satellite photo, B = map).
    """

    name: str
    repo_id: str
    revision: str
    filename: str
    layout: LayoutName
    direction: Direction
    input_domain: str
    output_domain: str
    trained_on: str
    license: str
    image_size: int = 256
    notes: str = ""

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/blob/{self.revision}/{self.filename}"

    def task_metadata(self) -> TaskMetadata:
        return TaskMetadata(
            direction=self.direction,
            input_domain=self.input_domain,
            output_domain=self.output_domain,
            image_size=self.image_size,
            trained_on=self.trained_on,
            license=self.license,
        )


PRETRAINED: dict[str, PretrainedWeights] = {
    entry.name: entry
    for entry in (
        PretrainedWeights(
            name="maps",
            repo_id="huggan/pix2pix-maps",
            revision="29b247f1f7559f1667e3c516666c631ebfd785a1",
            filename="pytorch_model.bin",
            layout="huggan",
            direction="AtoB",
            input_domain="satellite photo",
            output_domain="map",
            trained_on="pix2pix maps (Google Maps satellite/map pairs of New York, 256x256), via huggan/maps",
            license="MIT",
            notes="HugGAN community sprint (2022) generator, not the paper's U-Net; inputs resized to 256x256.",
        ),
        PretrainedWeights(
            name="facades",
            repo_id="huggan/pix2pix-facades-demo",
            revision="3784ab6be149f42f77ffb5b9c9cba8e18fbe2fb4",
            filename="pytorch_model.bin",
            layout="huggan",
            direction="BtoA",
            input_domain="facade label map",
            output_domain="facade photo",
            trained_on="CMP Facades (400 training pairs), via huggan/facades",
            license="MIT",
            notes="A short demo training run of the HugGAN community generator: expect rough results.",
        ),
    )
}


def list_pretrained() -> list[str]:
    """Names accepted by :func:`load_pretrained` and ``translate(model=...)``, sorted."""
    return sorted(PRETRAINED)


def get_pretrained_info(name: str) -> PretrainedWeights:
    """The registry entry called ``name``; :class:`KeyError` listing the known names otherwise."""
    try:
        return PRETRAINED[name]
    except KeyError:
        raise KeyError(
            f"no pretrained weights called {name!r}; known names: {', '.join(list_pretrained())}"
        ) from None


def _load_saved(model_id: str, config: dict, revision: str | None = None) -> nn.Module:
    """A folder or Hub repo written by ``save_pretrained``: its config.json says which class to build."""
    architecture = config.get("architecture", "pix2pix-unet")
    try:
        generator_class = GENERATOR_CLASSES[architecture]
    except KeyError:
        known = ", ".join(sorted(GENERATOR_CLASSES))
        raise CheckpointError(f"{model_id}: config.json names architecture {architecture!r}; known: {known}") from None
    return generator_class.from_pretrained(model_id, revision=revision)  # type: ignore[attr-defined]


def _load_local(path: Path) -> nn.Module:
    from ..training.checkpoint import is_training_checkpoint, load_generator

    if is_training_checkpoint(path):  # a Pix2PixTrainer checkpoint, its `latest` file or its run folder
        return load_generator(path)
    if path.is_dir():
        config_path = path / constants.CONFIG_NAME
        if config_path.is_file():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise CheckpointError(f"{config_path}: not valid JSON: {error}") from error
            if isinstance(config, dict) and "architecture" in config:  # ours; else a bare weights file, as for repos
                return _load_saved(str(path), config)
        for name in (constants.SAFETENSORS_SINGLE_FILE, constants.PYTORCH_WEIGHTS_NAME, "latest_net_G.pth"):
            if (path / name).is_file():
                return generator_from_state_dict(read_state_dict(path / name), str(path / name))
        raise FileNotFoundError(
            f"{path}: no config.json, model.safetensors, pytorch_model.bin or latest_net_G.pth in this folder"
        )
    return generator_from_state_dict(read_state_dict(path), str(path))


def _load_repo(repo_id: str, revision: str | None) -> nn.Module:
    errors: list[str] = []
    try:
        config_path = download_file(repo_id, constants.CONFIG_NAME, revision)
    except FileNotFoundError as error:
        errors.append(str(error))
    else:
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{repo_id}/config.json: not valid JSON: {error}") from error
        if isinstance(config, dict) and "architecture" in config:
            return _load_saved(repo_id, config, revision)
    # No config.json of ours: a bare weights file in one of the known layouts.
    for name in (constants.SAFETENSORS_SINGLE_FILE, constants.PYTORCH_WEIGHTS_NAME):
        try:
            weights = download_file(repo_id, name, revision)
        except FileNotFoundError as error:
            errors.append(str(error))
            continue
        return generator_from_state_dict(read_state_dict(weights), f"{repo_id}/{name}")
    raise FileNotFoundError(f"could not load Hub repo {repo_id!r}: {'; '.join(errors)}")


def load_pretrained(
    name_or_repo_or_path: str | os.PathLike[str],
    revision: str | None = None,
    device: DeviceLike = "auto",
) -> nn.Module:
    """Load a generator, in eval mode, from any of:

    * a registry name (see :func:`list_pretrained`): downloaded from the Hub at the pinned commit
      (``revision`` overrides it) and cached, so later calls work offline;
    * a Hub repo id ``"owner/name"`` saved with ``save_pretrained`` / ``push_to_hub`` (or holding a
      bare ``model.safetensors`` / ``pytorch_model.bin`` in a known layout);
    * a folder written by ``save_pretrained`` / ``pix2pix convert``;
    * a training checkpoint of :class:`~pix2pix_lib.training.Pix2PixTrainer`: its folder, its
      ``checkpoints/latest`` file or the run folder (then the latest checkpoint);
    * a weights file: ``.safetensors``, or a legacy pickle (``latest_net_G.pth`` of the reference
      implementation, a HugGAN ``pytorch_model.bin``), whose layout is detected from its keys.

    The returned module carries ``.task`` (:class:`TaskMetadata`) when known.

    Raises:
        ValueError: ``name_or_repo_or_path`` is none of the above (the message lists the known names).
        FileNotFoundError: a file, folder, repo or revision does not exist (or is not cached offline).
        CheckpointError: a file is corrupted, in an unknown layout, or does not fit the network.
    """
    target = select_device(device)
    text = os.fspath(name_or_repo_or_path)
    path = Path(text).expanduser()
    model: nn.Module
    if text in PRETRAINED and not path.exists():
        entry = PRETRAINED[text]
        weights = download_file(entry.repo_id, entry.filename, revision or entry.revision)
        model = generator_from_state_dict(
            read_state_dict(weights), f"{entry.name} ({entry.repo_id}/{entry.filename})", layout=entry.layout
        )
        model.task = entry.task_metadata()  # type: ignore[assignment]
    elif path.exists():
        model = _load_local(path)
    elif (
        path.suffix.lower() in _WEIGHTS_SUFFIXES
        or text.startswith((".", "/", "~"))
        or not (is_repo_id(text) or os.sep not in text)
    ):
        raise FileNotFoundError(f"weights file or folder not found: {text}")
    elif is_repo_id(text):
        model = _load_repo(text, revision)
    else:
        raise ValueError(
            f"unknown model {text!r}: not a pretrained name (known: {', '.join(list_pretrained())}), "
            "an existing file or folder, or a Hub repo id ('owner/name')"
        )
    return model.to(target).eval()
