"""neurosparse.layers (filled in by its issue)."""
