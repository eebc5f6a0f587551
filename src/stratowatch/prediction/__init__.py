"""Drift prediction: trajectories, ensembles, cones, region arrival, back-trajectories."""
