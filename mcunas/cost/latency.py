"""A one-point latency model: MACs divided by an effective MAC rate per core.

Calibration: the VWW paper reports about 1.3 s per inference for MobileNetV1
α 0.25 on the STM32 F746 (Cortex-M7, 216 MHz) with CMSIS-NN kernels.  The
paper does not say which input it used; we assume the TensorFlow Lite Micro
person-detection model it describes (96×96 grayscale, 7,157,888 MACs by this
cost model), which gives 0.0255 MACs per cycle.  Everything here is
therefore a first-order estimate:

* it ignores memory traffic, op overheads and kernel choice, so only the
  ratio between two networks on the same core is meaningful;
* had the calibration run used 224×224 input, every figure would be about
  5.6× too slow;
* Cortex-M4 is assumed to do half the M7's work per cycle (the M7 is
  dual-issue); that factor is an assumption, not a measurement.
"""

from __future__ import annotations

from mcunas.cost.boards import Board

CALIBRATION_MACS = 7_157_888  # MobileNetV1 α0.25, 96×96×1, 2 classes (this cost model)
CALIBRATION_SECONDS = 1.3
CALIBRATION_CLOCK_HZ = 216e6
MACS_PER_CYCLE = {
    "cortex-m7": CALIBRATION_MACS / (CALIBRATION_SECONDS * CALIBRATION_CLOCK_HZ),
}
MACS_PER_CYCLE["cortex-m4"] = MACS_PER_CYCLE["cortex-m7"] / 2


def latency_ms(macs: int, board: Board) -> float:
    """Estimated milliseconds per inference of a network with ``macs`` on ``board``."""
    rate = MACS_PER_CYCLE.get(board.core, MACS_PER_CYCLE["cortex-m7"])
    return macs / (rate * board.clock_mhz * 1e6) * 1e3
