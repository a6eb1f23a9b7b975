"""``python -m mash`` is the ``mash`` command."""

from mash.cli import main

main()
