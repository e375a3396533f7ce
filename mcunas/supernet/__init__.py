"""Weight-sharing supernet: train once, score every member of a space with inherited weights in seconds.

* :mod:`mcunas.supernet.members` — which weights a member uses (pure Python);
* :mod:`mcunas.supernet.net` — the weights and a member's sliced forward pass;
* :mod:`mcunas.supernet.train` — sandwich-rule training with in-place distillation;
* :mod:`mcunas.supernet.sort` — channel importance sorting (measured, off by default);
* :mod:`mcunas.supernet.file` — the ``.npz`` file and its record;
* :mod:`mcunas.supernet.score` — BatchNorm recalibration, validation accuracy, weights for a Keras model.

Only ``members`` and ``file`` are imported by the search process; the rest
runs in the training worker (TensorFlow).
"""
