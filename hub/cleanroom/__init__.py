"""cleanroom: hub-side package (registry, spawner, airlock, checks, command line)."""
