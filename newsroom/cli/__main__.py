"""``python -m newsroom.cli``."""

from .main import main

main()
