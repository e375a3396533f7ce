"""``mcunas estimate``: every cost figure of one architecture, before training."""

from __future__ import annotations

import argparse

from mcunas.cli.output import print_figures

KEYS_HELP = """figures (bytes or counts):
  macs              multiply-accumulates per inference
  params            weights + biases after BatchNorm folding
  keras_params      what Keras' model.summary() counts (BatchNorm unfolded)
  weight_bytes      int8 weights, the VWW paper's flash figure
  sram_paper_bytes  the paper's peak-activation rule
  tflite_bytes      predicted size of the exported int8 .tflite file
  sram_tflm_bytes   predicted TFLM arena (greedy-planned activations + persistent tail)
  latency_ms        first-order estimate, only with --board (see README)

ARCH grammar (tokens joined by '-'):
  in_r<RES>_c<CH>[_relu6]          input RES x RES x CH (3 = RGB, 1 = grayscale)
  cv_k<K>_s<S>_c<C>                conv + BatchNorm + activation
  ds[_r<N>]_k<K>_s<S>_c<C>         depthwise-separable (MobileNetV1)
  ir[_r<N>]_k<K>_s<S>_e<E>_c<C>[_noskip]  inverted residual (MobileNetV2/MNasNet)
  mp_k<K>_s<S>                     max pool (ShuffleNet stem)
  sf[_r<N>]_k<K>_s<S>_c<C>         ShuffleNetV2 unit: s2 down-sampling, s1 basic (C even)
  gap-fc_c<CLASSES>                global average pool, classifier, softmax
example: in_r96_c3-cv_k3_s2_c8-ds_k3_s1_c16-ds_k3_s2_c32-gap-fc_c2

--tflite FILE reads any full-int8 .tflite (pure Python, no TensorFlow, no TFLM) and
predicts its TFLM arena; ops: CONV_2D, DEPTHWISE_CONV_2D, ADD, MEAN, AVERAGE_POOL_2D,
MAX_POOL_2D, RESHAPE, STRIDED_SLICE, CONCATENATION, FULLY_CONNECTED, SOFTMAX.
"""


def register(sub) -> None:
    p = sub.add_parser(
        "estimate",
        help="cost figures of an architecture (no training, no TensorFlow)",
        description="Print the cost of an architecture string or preset: MACs, parameters, "
        "flash and peak SRAM, and a latency estimate for a board.",
        epilog=KEYS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("arch", nargs="?", help="architecture string (see below)")
    src.add_argument("--preset", help="a named preset, e.g. mlperf-vww (see `mcunas presets`)")
    src.add_argument("--tflite", metavar="FILE", help="predict the TFLM arena of an existing int8 .tflite")
    p.add_argument("--board", help="board from the catalog (see `mcunas boards`) for latency_ms")
    p.add_argument("--boards-file", help="YAML file with extra boards")
    p.add_argument("--mbv2-slices", type=int, default=1, metavar="K",
                   help="paper §5.3: compute MobileNetV2 blocks in K channel slices for sram_paper_bytes")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from mcunas.arch import parse_arch
    from mcunas.cost import estimate
    from mcunas.cost.boards import get_board
    from mcunas.errors import UserError
    from mcunas.presets import preset_arch

    if args.tflite:
        print_figures(estimate_tflite(args.tflite), args.json)
        return 0
    if args.mbv2_slices < 1:
        raise UserError(f"--mbv2-slices must be 1 or more, got {args.mbv2_slices}")
    arch = preset_arch(args.preset) if args.preset else parse_arch(args.arch)
    board = get_board(args.board, args.boards_file) if args.board else None
    print_figures(estimate(arch, board=board, mbv2_slices=args.mbv2_slices), args.json)
    return 0


def estimate_tflite(path: str) -> dict:
    """Arena prediction, MACs and op counts of an existing .tflite file."""
    from collections import Counter
    from pathlib import Path

    from mcunas.cost.flatbuffer import read_tflite
    from mcunas.cost.tflite_stats import tflite_macs
    from mcunas.cost.tflm_arena import predict_arena
    from mcunas.errors import UserError

    file = Path(path)
    if not file.is_file():
        raise UserError(f"no such file: {file}")
    model = read_tflite(file.read_bytes())
    figures = {"model": str(file), "macs": tflite_macs(model), "tflite_bytes": model.file_bytes}
    figures.update(predict_arena(model))
    figures["ops"] = ", ".join(f"{op} x{n}" for op, n in Counter(o.op for o in model.operators).items())
    return figures
