"""``python -m medcodec.cli``: the command line (as the ``medcodec`` script)."""

import sys

from . import main

sys.exit(main())
