"""`python -m edgecnn.cli` runs the CLI."""

from edgecnn.cli import main

main()
