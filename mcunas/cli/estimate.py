"""``mcunas estimate``: every cost figure of one architecture, before training."""

from __future__ import annotations

import argparse

from mcunas.output import print_figures

KEYS_HELP = """figures (bytes or counts):
  macs              multiply-accumulates per inference
  params            weights + biases after BatchNorm folding
  keras_params      what Keras' model.summary() counts (BatchNorm unfolded)
  weight_bytes      int8 weights, the VWW paper's flash figure
  sram_paper_bytes  the paper's peak-activation rule
  tflite_bytes      predicted size of the exported int8 .tflite file
  tflite_offline_bytes  the same file with the offline memory plan embedded
                    (`export --memory-plan offline`: 4 B per tensor + 76 B); budget flash with it
  sram_tflm_bytes   predicted TFLM arena (greedy-planned activations + persistent tail)
  sram_tflm_offline_bytes  the same with the offline memory plan `export --memory-plan offline`
                    embeds (activations placed by mcunas, at or near the largest live set)
  runtime           with --board: the runtime the latency is for (--runtime)
  latency_ms        with --board: estimated milliseconds per inference (see README)
  latency_low_ms    with --board: latency_ms times the smallest measured/predicted ratio
  latency_high_ms   with --board: latency_ms times the largest; budget with this one
  latency_error_pct with --board: median error on published CNNs the fit did not see

ARCH grammar (tokens joined by '-'):
  in_r<RES>_c<CH>[_relu6]          input RES x RES x CH (3 = RGB, 1 = grayscale)
  cv_k<K>_s<S>_c<C>                conv + BatchNorm + activation
  ds[_r<N>]_k<K>_s<S>_c<C>         depthwise-separable (MobileNetV1)
  ir[_r<N>]_k<K>_s<S>_e<E>_c<C>[_noskip]  inverted residual (MobileNetV2/MNasNet)
  mp_k<K>_s<S>                     max pool (ShuffleNet stem)
  sf[_r<N>]_k<K>_s<S>_c<C>         ShuffleNetV2 unit: s2 down-sampling, s1 basic (C even)
  gap-fc_c<CLASSES>                global average pool, classifier, softmax
{limits}
example: in_r96_c3-cv_k3_s2_c8-ds_k3_s1_c16-ds_k3_s2_c32-gap-fc_c2

--tflite FILE reads a .tflite (pure Python, no TensorFlow, no TFLM) and predicts the
smallest TFLM arena it loads in, by replaying TFLM's allocations op by op: int8, int16
(16x8) or float32 activations, uint8 input and output around them (QUANTIZE/DEQUANTIZE),
resource variables and several subgraphs (IF, CALL_ONCE), and the offline memory plan (OfflineMemoryAllocation metadata) where it has one.  --target x86_64 (default) is the tflite-micro pip package `mcunas measure` runs;
--target cortex-m is a 32-bit Cortex-M build of the reference kernels (predicted only).
Ops: """ + "{ops}" + """.
"""


def _keys_help() -> str:
    from mcunas.cost.tflm_kernels import SUPPORTED_OPS

    from mcunas.arch import LIMITS

    import textwrap

    limits = textwrap.fill("numbers are digits 0-9 within: " + ", ".join(
        f"{meaning} {low}..{high}" for meaning, (low, high) in LIMITS.items()), 96,
        initial_indent="  ", subsequent_indent="    ")
    return KEYS_HELP.replace("{ops}", ", ".join(sorted(SUPPORTED_OPS))).replace("{limits}", limits)


def register(sub) -> None:
    from mcunas.cli.flags import add_board_flags

    p = sub.add_parser(
        "estimate",
        help="cost figures of an architecture (no training, no TensorFlow)",
        description="Print the cost of an architecture string or preset: MACs, parameters, "
        "flash and peak SRAM, and a latency estimate for a board.",
        epilog=_keys_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("arch", nargs="?", help="architecture string (see below)")
    src.add_argument("--preset", help="a named preset, e.g. mlperf-vww (see `mcunas presets`)")
    src.add_argument("--tflite", metavar="FILE", help="predict the TFLM arena of an existing int8 .tflite")
    add_board_flags(p, "board from the catalog (see `mcunas boards`) for latency_ms")
    p.add_argument("--target", choices=["x86_64", "cortex-m"], default="x86_64",
                   help="with --tflite: the TFLM build to predict the arena for (default x86_64)")
    p.add_argument("--mbv2-slices", type=int, default=1, metavar="K",
                   help="paper §5.3: compute MobileNetV2 blocks in K channel slices for sram_paper_bytes")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from mcunas.arch import parse_arch
    from mcunas.cli.flags import board_from_args, runtime_from_args
    from mcunas.cost import estimate
    from mcunas.errors import UserError
    from mcunas.presets import preset_arch

    if args.tflite:
        print_figures(estimate_tflite(args.tflite, args.target), args.json)
        return 0
    if args.mbv2_slices < 1:
        raise UserError(f"--mbv2-slices must be 1 or more, got {args.mbv2_slices}")
    arch = preset_arch(args.preset) if args.preset else parse_arch(args.arch)
    board, runtime = board_from_args(args), runtime_from_args(args)
    print_figures(estimate(arch, board=board, mbv2_slices=args.mbv2_slices, runtime=runtime), args.json)
    return 0


def estimate_tflite(path: str, target: str = "x86_64") -> dict:
    """Arena prediction for ``target``, MACs and op counts of an existing .tflite file."""
    from collections import Counter
    from pathlib import Path

    from mcunas.cost.flatbuffer import read_tflite
    from mcunas.cost.tflite_size import offline_plan_bytes
    from mcunas.cost.tflite_stats import tflite_macs
    from mcunas.cost.tflm_arena import predict_arena
    from mcunas.errors import UserError

    file = Path(path)
    if not file.is_file():
        raise UserError(f"no such file: {file}")
    model = read_tflite(file.read_bytes())
    figures = {"model": str(file), "macs": tflite_macs(model), "tflite_bytes": model.file_bytes}
    figures["tflite_offline_bytes"] = model.file_bytes + (
        0 if model.offline_offsets is not None else offline_plan_bytes(sum(len(sg.tensors) for sg in model.subgraphs)))
    figures.update(predict_arena(model, target))
    figures["memory_plan"] = "stock" if model.offline_offsets is None else "offline (embedded in the model)"
    ops = Counter(o.op for sg in model.subgraphs for o in sg.operators)
    figures["ops"] = ", ".join(f"{op} x{n}" for op, n in ops.items())
    return figures
