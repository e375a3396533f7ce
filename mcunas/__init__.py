"""mcunas: neural architecture search for microcontrollers.

Data flow (and package layout): ``search_spaces/*.yaml`` -> :mod:`mcunas.spaces`
-> :class:`mcunas.arch.Arch` -> :mod:`mcunas.cost` (no TensorFlow) -> training
and search -> query and export.
"""

__version__ = "0.1.0"
