"""Named pretrained weights: like torchvision's weights enums, each entry pins everything needed to
get the same network every time -- Hub repo, commit, file, checkpoint layout, and what the network does.

>>> from pix2pix_lib.pretrained import list_pretrained
>>> list_pretrained()
['edges2shoes', 'facades', 'maps']
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models.task import Direction, TaskMetadata
from .layouts import LayoutName

__all__ = ["PRETRAINED", "PretrainedWeights", "get_pretrained_info", "list_pretrained"]


@dataclass(frozen=True)
class PretrainedWeights:
    """One named set of weights on the Hugging Face Hub, pinned to a commit.

    ``direction`` refers to the ``A|B`` pairs of the original pix2pix datasets (facades: A = photo,
    B = label map; maps: A = satellite photo, B = map; edges2shoes: A = edge map, B = photo).
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
            name="edges2shoes",
            repo_id="huggan/pix2pix-edge2shoes",
            revision="2955b0659bf0b0bb8d114d4b83db2b4ac82e2f7b",
            filename="pytorch_model.bin",
            layout="huggan",
            direction="AtoB",
            input_domain="shoe edge map",
            output_domain="shoe photo",
            trained_on="pix2pix edges2shoes (UT Zappos50K shoe photos paired with HED edge maps, 256x256)",
            license="MIT",
            notes="HugGAN community sprint (2022) generator after 99 epochs, not the paper's U-Net; "
            "inputs resized to 256x256.",
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
            trained_on="CMP Facades, all 606 pairs of huggan/facades (the official 400 train + 100 val + 106 test)",
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
