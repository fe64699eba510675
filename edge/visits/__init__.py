"""Visits: anonymous floor trajectories -> zone dwell, path features and traits."""
