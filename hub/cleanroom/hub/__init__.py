"""The hub process: its configuration, log-in, services, metrics and a client of its API."""
