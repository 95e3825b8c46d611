"""`python -m bot.care` (also `carebot scheduler`): the care scheduler process."""

from __future__ import annotations

import sys

from bot.care.service import main

if __name__ == "__main__":
    sys.exit(main())
