"""One router per resource; :func:`stratowatch.api.main.create_app` mounts them all."""
