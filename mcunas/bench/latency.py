"""``mcunas bench latency``: how well the latency model predicts published measurements.

Two tables, both derived from the measurements shipped in
``mcunas/cost/data`` (nothing is timed on this machine):

* leave-one-model-out cross-validation: each published network is predicted
  by a fit that never saw it; the median and worst relative error per
  runtime and core, for CNNs and for every network;
* the predicted latency of the ``mlperf-vww`` preset on every catalog board
  under each runtime, with its band.
"""

from __future__ import annotations

import json
import statistics


def register(sub) -> None:
    p = sub.add_parser("latency", help="latency model: cross-validated error and mlperf-vww per board",
                       description="Leave-one-model-out error of the latency model per runtime and core, and "
                       "the predicted mlperf-vww latency on every catalog board under each runtime.")
    p.add_argument("--boards-file", help="YAML file with extra boards")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def cross_validation() -> list[dict]:
    """Median and worst |measured/predicted - 1| per (runtime, core), CNNs and all networks."""
    from mcunas.cost.latency import is_cnn
    from mcunas.cost.latency_fit import leave_one_model_out, workloads

    held = leave_one_model_out()
    out = []
    for runtime, core in sorted({(h.row.runtime, h.row.core) for h in held}) + [(r, "all") for r in
                                                                              sorted({h.row.runtime for h in held})]:
        mine = [h for h in held if h.row.runtime == runtime and core in ("all", h.row.core)]
        row = {"runtime": runtime, "core": core}
        for label, subset in (("cnn", [h for h in mine if is_cnn(workloads()[h.row.workload])]), ("all", mine)):
            errors = [abs(h.ratio - 1) for h in subset]
            row[f"{label}_n"] = len(subset)
            row[f"{label}_median_error_pct"] = round(100 * statistics.median(errors), 1) if errors else None
            row[f"{label}_worst_error_pct"] = round(100 * max(errors), 1) if errors else None
        out.append(row)
    return out


def preset_per_board(boards_file: str | None, preset: str = "mlperf-vww") -> list[dict]:
    from mcunas.cost.boards import load_boards
    from mcunas.cost.graph import build_graph
    from mcunas.cost.latency import RUNTIMES, latency_figures
    from mcunas.presets import preset_arch

    graph = build_graph(preset_arch(preset))
    return [{"board": b.name, "core": b.core, "clock_mhz": b.clock_mhz, **latency_figures(graph, b, runtime)}
            for b in load_boards(boards_file).values() for runtime in RUNTIMES]


def run(args) -> int:
    from mcunas.cost.latency_fit import fitted

    model = fitted()
    result = {
        "coefficients_m7_cycles": model.coeff,
        "core_factor": model.core_factor,
        "vendor_engine_factor": model.engine_factor,
        "ref_over_cmsis_nn": {"median": model.ref_ratio, "min": model.ref_ratio_range[0],
                              "max": model.ref_ratio_range[1]},
        "cross_validation": cross_validation(),
        "mlperf_vww": preset_per_board(args.boards_file),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print("coefficients (Cortex-M7 cycles per MAC / element / op):")
    for runtime, coeff in model.coeff.items():
        print(f"  {runtime:<14} " + "  ".join(f"{k} {v:.3g}" for k, v in coeff.items()))
    print("  tflm-ref       = tflm-cmsis-nn x {median:.2f} (published pairs {min:.2f}-{max:.2f})".format(
        **result["ref_over_cmsis_nn"]))
    print("core factors (cycles relative to Cortex-M7): "
          + ", ".join(f"{k} {v:.3g}" for k, v in model.core_factor.items()))
    print("vendor engine factors: " + ", ".join(f"{k} {v:.3g}" for k, v in model.engine_factor.items()))
    print("\nleave-one-model-out |measured/predicted - 1| (%), CNNs | all networks")
    print(f"{'runtime':<14} {'core':<14} {'n':>3} {'median':>7} {'worst':>7} | {'n':>3} {'median':>7} {'worst':>7}")
    for r in result["cross_validation"]:
        print(f"{r['runtime']:<14} {r['core']:<14} {r['cnn_n']:>3} {_pct(r['cnn_median_error_pct'])} "
              f"{_pct(r['cnn_worst_error_pct'])} | {r['all_n']:>3} {_pct(r['all_median_error_pct'])} "
              f"{_pct(r['all_worst_error_pct'])}")
    print("\nmlperf-vww predicted latency (ms) [low, high]")
    print(f"{'board':<20} {'core':<13} {'MHz':>5} {'runtime':<14} {'latency':>9} {'low':>9} {'high':>9}")
    for r in result["mlperf_vww"]:
        print(f"{r['board']:<20} {r['core']:<13} {r['clock_mhz']:>5.0f} {r['runtime']:<14} {r['latency_ms']:>9,.1f} "
              f"{r['latency_low_ms']:>9,.1f} {r['latency_high_ms']:>9,.1f}")
    return 0


def _pct(value) -> str:
    return f"{'-':>7}" if value is None else f"{value:>7.1f}"
