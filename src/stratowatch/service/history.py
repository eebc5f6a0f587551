"""Which reported tracks go to the stored history (the pipeline's pictures and the tracker workers' cells)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stratowatch.model import Track


class HistoryMarks:
    """Which reported tracks go to the stored history at a step: the new ones, those a
    measurement updated (their update count moved) and those whose status changed since they
    were last logged. A coasting track's prediction to the step time is not history (it is still
    the track's current state in the store); at 50,000 aircraft reporting every 10 s this keeps
    the history to the ~5,000 states a second that carry information, not 50,000."""

    def __init__(self) -> None:
        self.ids = np.empty(0, np.int64)
        self.updates = np.empty(0, np.int64)
        self.status = np.empty(0, np.int64)

    def mark(self, tracks: Sequence[Track]) -> np.ndarray:
        n = len(tracks)
        ids = np.fromiter((t.track_id for t in tracks), np.int64, n)
        updates = np.fromiter((t.n_updates for t in tracks), np.int64, n)
        status = np.fromiter((int(t.status) for t in tracks), np.int64, n)
        if self.ids.size:
            pos = np.minimum(np.searchsorted(self.ids, ids), self.ids.size - 1)
            same = (self.ids[pos] == ids) & (self.updates[pos] == updates) & (self.status[pos] == status)
        else:
            same = np.zeros(n, bool)
        order = np.argsort(ids, kind="stable")
        self.ids, self.updates, self.status = ids[order], updates[order], status[order]
        return ~same


__all__ = ["HistoryMarks"]
