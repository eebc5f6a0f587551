"""The live service: the event bus, JSON forms, the pipeline and the process that runs them.

* :mod:`.bus` — :class:`~stratowatch.service.bus.InProcessBus` (topics tracks, alerts,
  incidents, predictions);
* :mod:`.serialize` — JSON forms of tracks, observations, alerts, incidents, geofences;
* :mod:`.pipeline` — :class:`~stratowatch.service.pipeline.Pipeline`: tracker, classifier (with
  the wind match), predictions, alerts, store and bus, one step at a time;
* :mod:`.app` — ``run(settings)``: sources, pipeline and HTTP API in one process.
"""
