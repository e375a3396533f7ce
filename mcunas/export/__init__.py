"""Export: a Keras model -> int8 ``.tflite`` -> C array for TFLM, plus the arch string.

:mod:`mcunas.export.tflite` converts (and owns the input convention),
:mod:`mcunas.export.c_array` writes the ``.h``/``.cc`` pair,
:mod:`mcunas.export.bundle` writes a whole export folder.  All of them import
TensorFlow lazily.
"""
