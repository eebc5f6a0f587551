"""Errors raised by the wind-field code."""

from __future__ import annotations


class WindDomainError(ValueError):
    """A query fell outside a wind field: names the axis, the value and the field's range."""

    def __init__(self, axis: str, value: float, low: float, high: float, source: str = "") -> None:
        self.axis = axis
        self.value = value
        self.low = low
        self.high = high
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{axis} {value:g} is outside the wind field's range [{low:g}, {high:g}]")


class WindFormatError(ValueError):
    """A wind file could not be read or merged: the message names the file (and line or
    variable) and what was wrong."""
