"""neurosparse.viz (filled in by its issue)."""
