"""Reading a user's YAML file (a space, a ``--config``) with one-line errors.

Every file a user hands mcunas can be unreadable, not UTF-8, or not YAML;
each is one :class:`~mcunas.errors.UserError` line naming the file as the
caller calls it (``what``), never a traceback.
"""

from __future__ import annotations

from pathlib import Path

from mcunas.errors import UserError


def read_yaml(path: str | Path, what: str):
    """The parsed content of ``path``; ``what`` names it in errors, e.g. ``"search space P"``."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_bytes().decode("utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{what} is not valid YAML: {str(exc).splitlines()[0]}") from None
