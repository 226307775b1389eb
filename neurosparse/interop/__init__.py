"""neurosparse.interop (filled in by its issue)."""
