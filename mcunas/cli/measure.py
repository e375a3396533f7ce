"""``mcunas measure``: the ground truth of a .tflite file in TensorFlow Lite Micro."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "measure",
        help="smallest TFLM arena, file size and ops of a .tflite model (TFLM in a subprocess)",
        description="Load MODEL.tflite in TensorFlow Lite Micro (tflite-micro pip package, in a "
        "child process so a TFLM abort cannot take mcunas down) and print the smallest arena it "
        "allocates in (binary search), its head (planned activations) / tail (persistent) split "
        "from print_allocations(), the file size and the op list.",
    )
    p.add_argument("model", help="a .tflite file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    import json
    from collections import Counter

    from mcunas.output import print_figures
    from mcunas.tflm import measure_arena

    result = measure_arena(args.model)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    ops = Counter(result["ops"])
    figures = {k: result[k] for k in ("model", "tflm_arena_bytes", "tflm_head_bytes", "tflm_tail_bytes",
                                      "tflite_bytes")}
    figures["ops"] = f"{len(result['ops'])}: " + ", ".join(f"{op} x{n}" for op, n in ops.items())
    print_figures(figures, False)
    return 0
