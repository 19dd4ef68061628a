"""``python -m cleanroom.library``: the data library's pages (a hub-managed service)."""

import sys

from cleanroom.library.app import main

sys.exit(main())
