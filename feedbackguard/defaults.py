"""Where the shipped defaults (`config/` in the source tree) are found at run time."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def config_path(name: str) -> Path:
    """Path of a file from `config/`: bundled in the wheel, or the source checkout's."""
    bundled = _PACKAGE / "_config" / name
    if bundled.is_file():
        return bundled
    return _PACKAGE.parent / "config" / name
