"""The one loader for generators: registry names, Hub repos, saved folders, weights files and training runs.

>>> from pix2pix_lib import load_pretrained
>>> generator = load_pretrained("maps")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import HfApi, constants
from torch import nn

from ..devices import DeviceLike, select_device
from ..models.hub import download_file, is_repo_id
from ..models.integrity import should_verify, warn_unverified
from ..models.hub_mixin import missing_local_path, no_local_note, read_config
from ..models.onnx_generator import OnnxGenerator
from ..models.registry import load_model_folder
from ..models.state_dict import read_state_dict
from .checkpoint_layout import GENERATOR_DIR, LEGACY_META_FILE, is_training_checkpoint, resolve_checkpoint
from .layouts import generator_from_state_dict
from .legacy import legacy_model
from .named import PRETRAINED, list_pretrained

__all__ = ["load_pretrained", "upload_saved_folder"]

_WEIGHTS_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt", ".onnx")
_BARE_WEIGHTS = (constants.SAFETENSORS_SINGLE_FILE, constants.PYTORCH_WEIGHTS_NAME)


def _checkpoint_generator(path: Path, verify: bool | None) -> nn.Module:
    """The generator of a training checkpoint (or of the latest checkpoint of a run folder)."""
    folder = resolve_checkpoint(path)
    if (folder / LEGACY_META_FILE).is_file():
        if should_verify(verify):
            warn_unverified(str(folder))
        return legacy_model(folder, "generator")
    return load_model_folder(folder / GENERATOR_DIR, verify=verify)


def _load_local(path: Path, verify: bool | None) -> nn.Module:
    if is_training_checkpoint(path):
        return _checkpoint_generator(path, verify)
    if path.is_dir():
        config_path = path / constants.CONFIG_NAME
        if config_path.is_file() and "architecture" in read_config(config_path):
            return load_model_folder(path, verify=verify)
        for name in (*_BARE_WEIGHTS, "latest_net_G.pth"):  # no config of ours: a bare weights file, as for repos
            if (path / name).is_file():
                return generator_from_state_dict(read_state_dict(path / name), str(path / name))
        raise FileNotFoundError(
            f"{path}: no config.json, model.safetensors, pytorch_model.bin or latest_net_G.pth in this folder, "
            "and it is not a training run"
        )
    return generator_from_state_dict(read_state_dict(path), str(path))


def _load_repo(repo_id: str, revision: str | None, verify: bool | None) -> nn.Module:
    errors: list[str] = []
    try:
        config_path = download_file(repo_id, constants.CONFIG_NAME, revision)
    except FileNotFoundError as error:
        errors.append(str(error))
    else:
        if "architecture" in read_config(config_path, f"{repo_id}/{constants.CONFIG_NAME}"):
            return load_model_folder(repo_id, revision, verify=verify)
    for name in _BARE_WEIGHTS:  # no config.json of ours: a bare weights file in one of the known layouts
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
    verify: bool | None = None,
) -> nn.Module:
    """Load a generator, in eval mode, from any of:

    * a registry name (see :func:`list_pretrained`): downloaded from the Hub at the pinned commit
      (``revision`` overrides it) and cached, so later calls work offline;
    * a Hub repo id ``"owner/name"`` saved with ``save_pretrained`` / ``push_to_hub`` (or holding a
      bare ``model.safetensors`` / ``pytorch_model.bin`` in a known layout);
    * a folder written by ``save_pretrained`` / ``pix2pix convert``;
    * a training run of :class:`~pix2pix_lib.Pix2PixTrainer`: the run folder, its ``checkpoints``
      folder or ``checkpoints/latest`` (the latest checkpoint), or one checkpoint folder;
    * a weights file: ``.safetensors``, or a legacy pickle (``latest_net_G.pth`` of the reference
      implementation, a HugGAN ``pytorch_model.bin``), whose layout is detected from its keys;
    * an ``.onnx`` file written by :func:`pix2pix_lib.export`: an
      :class:`~pix2pix_lib.models.onnx_generator.OnnxGenerator` that runs it with onnxruntime.

    The returned module carries ``.task`` (:class:`~pix2pix_lib.TaskMetadata`) when known. Nothing
    a file names is imported or called: architectures come from
    :data:`pix2pix_lib.models.MODEL_CLASSES` and their arguments are checked (and bounded) first.

    ``verify`` (default: True, unless inside :func:`~pix2pix_lib.models.integrity.skip_verification`):
    check the files of a saved folder, Hub repo or checkpoint against its ``checksums.json`` before
    using them; ``verify=False`` skips it. Folders saved before checksums existed load with an
    :class:`~pix2pix_lib.models.integrity.UnverifiedFilesWarning`. A name that looks like a local path
    (``./x``, ``runs/x`` next to a ``runs`` folder, ``a/b/c``, ``x.pth``) and does not exist is a
    :class:`FileNotFoundError` at once, never a Hub download.

    Raises:
        ValueError: ``name_or_repo_or_path`` is none of the above (the message lists the known names).
        FileNotFoundError: a file, folder, repo or revision does not exist (or is not cached offline).
        CheckpointError: a file is corrupted, names an unknown architecture or bad arguments, or its
            tensors do not fit the network.
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
    elif path.is_file() and path.suffix.lower() == ".onnx":  # written by pix2pix_lib.export; runs in onnxruntime
        model = OnnxGenerator(path)
    elif path.exists():
        model = _load_local(path, verify)
    elif (problem := missing_local_path(text)) is not None:
        raise FileNotFoundError(problem)
    elif path.suffix.lower() in _WEIGHTS_SUFFIXES or text.startswith((".", "/", "~")) or not (
        is_repo_id(text) or os.sep not in text
    ):
        raise FileNotFoundError(f"no such file or folder: {text}")
    elif is_repo_id(text):
        try:
            model = _load_repo(text, revision, verify)
        except FileNotFoundError as error:
            note = no_local_note(text)
            if note in str(error):
                raise
            raise FileNotFoundError(f"{error}; {note}") from error
    else:
        raise ValueError(
            f"unknown model {text!r}: not a pretrained name (known: {', '.join(list_pretrained())}), "
            "an existing file or folder, or a Hub repo id ('owner/name')"
        )
    return model.to(target).eval()


def upload_saved_folder(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload pix2pix generator with pix2pix_lib",
) -> str:
    """Upload a folder written by ``save_pretrained`` (or ``pix2pix convert``) after checking it loads.

    Checking first means a half-written or mismatched folder never reaches the Hub. To upload a
    training run's generator, pass its ``checkpoints/<step>/generator`` folder, or load the run and
    call ``push_to_hub`` on the model.
    """
    folder = Path(folder)
    load_pretrained(folder, device="cpu")  # raises with a clear message if the folder is unusable
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id=repo_id, private=private, exist_ok=True).repo_id
    return str(api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message, repo_type="model"))
