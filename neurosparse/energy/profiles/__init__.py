"""neurosparse.energy.profiles (filled in by its issue)."""
