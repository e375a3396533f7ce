"""Named reference networks, as in timm's model registry.

Every preset except ``mlperf-vww`` is a space's reference network (the first
choice of every dimension) at a given width multiplier and input resolution,
so presets and search spaces cannot drift apart.  ``mlperf-vww`` is spelled
out in full because it must match the MLPerf Tiny reference model layer for
layer (MobileNetV1 α 0.25, 96×96×3, 2 classes).
"""

from __future__ import annotations

from functools import cache

from mcunas.arch import Arch, parse_arch
from mcunas.errors import UserError, did_you_mean
from mcunas.spaces import PAPER_RESOLUTIONS, ReferenceTrial, load_space, sample_arch

MLPERF_VWW = (
    "in_r96_c3-cv_k3_s2_c8-ds_k3_s1_c16-ds_k3_s2_c32-ds_k3_s1_c32-ds_k3_s2_c64-ds_k3_s1_c64-"
    "ds_k3_s2_c128-ds_r5_k3_s1_c128-ds_k3_s2_c256-ds_k3_s1_c256-gap-fc_c2"
)

# family name in the preset -> (space file, widths the VWW paper and Keras ship)
_FAMILIES = {
    "mobilenet-v1": ("mobilenet_v1", (0.25, 0.5, 0.75, 1.0)),
    "mobilenet-v2": ("mobilenet_v2", (0.35, 0.5, 0.75, 1.0)),
    "mnasnet-a1": ("mnasnet", (0.35, 0.5, 0.75, 1.0)),
    "shufflenet-v2": ("shufflenet_v2", (0.5, 1.0, 1.5, 2.0)),  # the paper's Table 5 widths
}


@cache
def presets() -> dict[str, str]:
    """All preset names mapped to their architecture strings."""
    table = {"mlperf-vww": MLPERF_VWW}
    for family, (space_name, widths) in _FAMILIES.items():
        space = load_space(space_name)
        for width in widths:
            for resolution in PAPER_RESOLUTIONS:
                trial = ReferenceTrial({"width": width, "resolution": resolution})
                table[f"{family}-{width:g}-{resolution}"] = str(sample_arch(space, trial))
    return table


def preset_arch(name: str) -> Arch:
    """The architecture of a named preset; unknown names list the families."""
    table = presets()
    if name not in table:
        raise UserError(
            f"unknown preset '{name}'{did_you_mean(name, table)}: use mlperf-vww or FAMILY-WIDTH-RESOLUTION with FAMILY in "
            f"{', '.join(_FAMILIES)} (e.g. mobilenet-v2-0.35-96); `mcunas presets` lists them all"
        )
    return parse_arch(table[name])
