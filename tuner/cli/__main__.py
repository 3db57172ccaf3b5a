"""``python -m tuner.cli``: the ``smart-tuner`` command."""

import sys

from tuner.cli import main

sys.exit(main())
