"""The one error for a spec that cannot run as written (pure)."""

from __future__ import annotations


class InvalidSpec(ValueError):
    """The experiment cannot run as written; ``field`` names what to change."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(message)
        self.field = field_path
