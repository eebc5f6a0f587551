"""Multi-sensor, multi-target tracking: motion models, IMM filtering, gating, association and
track management, glued together by :class:`Tracker`."""

from stratowatch.tracking.frames import EcefFrame, LocalFrame
from stratowatch.tracking.tracker import Tracker, TrackerConfig, local_tracker
from stratowatch.tracking.tracks import TrackTable

__all__ = ["EcefFrame", "LocalFrame", "TrackTable", "Tracker", "TrackerConfig", "local_tracker"]
