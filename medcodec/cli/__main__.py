"""``python -m medcodec.cli``: the command line (as the ``medcodec`` script)."""

from . import run

run()
