"""``python -m asyncreply_client.cli``: the same as the ``asyncreply`` command."""

from __future__ import annotations

import sys

from ._main import main

if __name__ == "__main__":
    sys.exit(main())
