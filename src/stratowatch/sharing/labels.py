"""Releasability labels: who may see a piece of data, and what a fusion of data may be shown to.

A label is a set of partner codes (``{"CAN", "USA"}``) or :data:`~stratowatch.model.PUBLIC`
(``{"PUBLIC"}``: anyone). A partner may see data whose label names it or is PUBLIC. Combining
data (a fused track, an alert about it) gives the *meet* of the labels: PUBLIC is the top (it
adds no restriction), otherwise the intersection. An empty label releases to nobody beyond the
node that holds the data.

The hot path asks "which of these observations may partner P see?" for a whole batch at once:
:class:`LabelTable` interns each distinct label once and keeps, per audience, a boolean array over
the interned labels, so the answer is one fancy-indexing operation per audience.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from stratowatch.model import PUBLIC

Label = frozenset[str]
BoolArray = npt.NDArray[np.bool_]


def meet(a: Label, b: Label) -> Label:
    """The label of data made from data labelled ``a`` and ``b``."""
    if "PUBLIC" in a:
        return b
    if "PUBLIC" in b:
        return a
    return a & b


def meet_all(labels: Iterable[Label]) -> Label:
    """The meet of many labels (PUBLIC for none)."""
    out: Label = PUBLIC
    for label in labels:
        out = meet(out, label)
    return out


def visible(label: Label, partner: str) -> bool:
    """May ``partner`` see data labelled ``label``?"""
    return "PUBLIC" in label or partner in label


def parse(codes: Iterable[str], where: str = "releasable_to") -> Label:
    """A label from configuration or a request: partner codes or PUBLIC, upper case."""
    out = frozenset(str(c).strip().upper() for c in codes if str(c).strip())
    bad = sorted(c for c in out if not (c.replace("_", "").isalnum() and c[0].isalpha()))
    if bad:
        raise ValueError(f"{where}: not partner codes: {', '.join(bad)}")
    if "PUBLIC" in out and len(out) > 1:
        return PUBLIC
    return out


def banner(label: Label) -> str:
    """The marking a console shows for data labelled ``label``."""
    if "PUBLIC" in label:
        return "PUBLIC RELEASE"
    if not label:
        return "NOT RELEASABLE"
    return "REL TO " + ", ".join(sorted(label))


class LabelTable:
    """Interned labels and, per audience, which of them it may see (see the module docstring)."""

    def __init__(self, audiences: Sequence[str]) -> None:
        self.audiences = tuple(audiences)
        self._codes: dict[Label, int] = {}
        self.labels: list[Label] = []
        self._visible: dict[str, list[bool]] = {a: [] for a in self.audiences}
        self._arrays: dict[str, BoolArray] = {}

    def code(self, label: Label) -> int:
        c = self._codes.get(label)
        if c is None:
            c = self._codes[label] = len(self.labels)
            self.labels.append(label)
            for a, vis in self._visible.items():
                vis.append(visible(label, a))
            self._arrays.clear()
        return c

    def codes(self, labels: Iterable[Label]) -> npt.NDArray[np.int64]:
        """Codes of many labels (one dict lookup each: the edge conversion of a batch)."""
        known = self._codes
        return np.fromiter(
            (c if (c := known.get(label)) is not None else self.code(label) for label in labels),
            dtype=np.int64,
        )

    def visible_mask(self, audience: str, codes: npt.NDArray[np.int64]) -> BoolArray:
        """Which of ``codes`` ``audience`` may see."""
        arr = self._arrays.get(audience)
        if arr is None:
            arr = self._arrays[audience] = np.asarray(self._visible[audience], dtype=bool)
        return arr[codes] if codes.size else np.zeros(0, dtype=bool)
