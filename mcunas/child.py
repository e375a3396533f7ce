"""How mcunas starts its own Python child processes (training workers, TFLM measurement).

``python -m MODULE`` puts the current folder first on the child's import
path, so a ``random.py`` or ``tflite_micro.py`` in the folder a campaign runs
from would be imported instead of the real module — and executed.  Children
therefore run with ``-P`` (Python 3.11+: prepend nothing unsafe) and with
``PYTHONPATH`` starting at the folder that holds the parent's own ``mcunas``
package, so the child runs exactly the code the parent does (an editable
checkout, or an installed copy) and nothing from the working folder.  They also get :data:`mcunas.quiet.QUIET_ENV`
(TensorFlow's C++ logging off) unless the user set those variables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


def python_child(module: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """``(argv, env)`` to run ``python -m module args`` with an isolated import path (see module doc)."""
    from mcunas.quiet import QUIET_ENV

    inherited = os.environ.get("PYTHONPATH", "")
    env = {**QUIET_ENV, **os.environ,
           "PYTHONPATH": os.pathsep.join([PACKAGE_ROOT, inherited]) if inherited else PACKAGE_ROOT}
    return [sys.executable, "-P", "-m", module, *map(str, args)], env
