"""The one exception type that reaches the user as a single line.

Anything the user can fix (a bad string, an unknown preset, a unit-less
budget, an unreachable database) is raised as :class:`UserError`; the CLI
prints ``mcunas: error: <message>`` and exits non-zero without a traceback.
Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, phrased as what was wrong and what to do."""


def did_you_mean(word: str, options) -> str:
    """`` (did you mean 'search'?)`` for a close misspelling of one of ``options``, else ``""``.

    Every "unknown NAME" message (subcommands, spaces, boards, presets, COCO
    classes) appends this, so a typo costs one look, not a trip to the docs.
    """
    import difflib

    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
