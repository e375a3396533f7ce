"""TensorFlow's start-up and converter chatter kept off the user's screen and out of worker logs.

Importing TensorFlow 2.21 prints ~6 lines (oneDNN, "Could not find cuda
drivers", CPU instructions) through two copies of absl *before* absl reads
``TF_CPP_MIN_LOG_LEVEL``, so no environment variable stops them; the first
model built adds a cuInit error on a machine without a GPU, and the int8
converter prints ~15 more (SavedModel, MLIR, "fully_quantize: 0 ..." from C
to stdout).  None of it is about the user's run.

* :func:`quiet_tensorflow` (called first by the CLI, the training worker and
  the TFLM child) sets :data:`QUIET_ENV` for this process and every child it
  starts, and arranges that the first ``import tensorflow`` (directly or
  through ``keras``) runs with the C-level stdout and stderr captured.
* :func:`native_output_captured` is that capture, also used around the
  converter.  **Real errors are kept**: when the wrapped block raises, what
  was captured is written to stderr before the exception goes on; and
  TensorFlow's failures reach Python as exceptions with their message.
  ``TF_CPP_MIN_LOG_LEVEL=0`` set by the user wins (``setdefault``), for
  debugging.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import tempfile

# 3: C++ INFO, WARNING and ERROR logs off (the only ERROR seen on CPU machines is cuInit's "no GPU").
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR"}


@contextlib.contextmanager
def native_output_captured(show_on_error: bool = True):
    """Capture file descriptors 1 and 2 (C code writes there; Python's redirects cannot see it).

    On success the capture is dropped; if the block raises, it is written to
    the real stderr first (unless ``show_on_error`` is False: the caller turns
    the exception into its own one line), so a failure keeps its native
    explanation.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            if failed and show_on_error:
                capture.seek(0)
                sys.stderr.write(capture.read().decode(errors="replace"))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow`` with native output captured, then quiets its Python loggers."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # resource readers and the like: the real loader's
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with native_output_captured():
            self.loader.exec_module(module)
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        with contextlib.suppress(ImportError):
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` through the normal finders and hands back its spec with :class:`_QuietLoader`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: later imports find the module in sys.modules anyway
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow() -> None:
    """Set :data:`QUIET_ENV` (user settings win) and quiet the first TensorFlow import of this process."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
