"""``python -m cleanroom.airlock``: run the airlock service."""

import sys

from .app import main

sys.exit(main())
