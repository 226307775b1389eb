"""neurosparse.energy (filled in by its issue)."""
