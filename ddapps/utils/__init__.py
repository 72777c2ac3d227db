"""Small shared helpers: atomic file output, seeding, memory measurement, environment info."""
