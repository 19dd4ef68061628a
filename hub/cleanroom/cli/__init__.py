"""The ``cleanroom`` command: operators', providers' and officers' verbs."""
