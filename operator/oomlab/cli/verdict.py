"""One cell of a comparison, whoever ran it (an engine, the operator): what the rules predicted,
what was observed, and whether the two agree, as the report and the tables write it."""

from __future__ import annotations

from dataclasses import dataclass

from oomlab.rules.results import Predicted


@dataclass(frozen=True)
class Verdict:
    predicted: str | None
    """A :class:`Predicted` value, None without a prediction."""
    observed: str | None
    """An ``Outcome`` value, None while there is none."""
    exit_code: int | None = None
    not_run: str | None = None
    """Why it was not run (or not to its end); None when it ran."""
    pending: str = ""
    """What it is doing instead of ending (``phase Running``)."""
    refused: bool = False
    """The runtime refused to start it: the memory rules had nothing to predict."""

    @property
    def agrees(self) -> bool | None:
        """True or False when both sides decided; None when there is nothing to compare."""
        if self.not_run is not None or self.refused or self.observed is None:
            return None
        if self.predicted in (None, Predicted.BORDERLINE.value):
            return None
        return self.predicted == self.observed

    def text(self) -> str:
        """``OOMKilled, 137 ✓`` (as predicted), ``**Completed** ✗ (predicted OOMKilled)``, or
        why there is no outcome."""
        if self.not_run is not None:
            return f"not run: {self.not_run}"
        if self.observed is None:
            return f"not finished: {self.pending}"
        if self.refused:
            return "refused"
        text = self.observed + ("" if self.exit_code in (None, 0) else f", {self.exit_code}")
        agrees = self.agrees
        if agrees is True:
            return text + " ✓"
        if agrees is False:
            return f"**{text}** ✗ (predicted {self.predicted})"
        if self.predicted == Predicted.BORDERLINE.value:
            return text + " (predicted: too close to call)"
        return text
