"""neurosparse.sdr (filled in by its issue)."""
