"""The one exception type that reaches the user as a single line.

Anything the user can fix (a bad string, an unknown preset, a unit-less
budget, an unreachable database) is raised as :class:`UserError`; the CLI
prints ``mcunas: error: <message>`` and exits non-zero without a traceback.
Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, phrased as what was wrong and what to do."""
