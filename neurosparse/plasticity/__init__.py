"""neurosparse.plasticity (filled in by its issue)."""
