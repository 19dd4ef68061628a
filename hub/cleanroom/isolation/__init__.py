"""The first wall: per-project internal networks and the host firewall around them."""
