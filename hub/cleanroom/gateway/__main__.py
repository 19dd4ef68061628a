"""``python -m cleanroom.gateway``: run the egress gateway."""

from cleanroom.gateway.app import main

main()
