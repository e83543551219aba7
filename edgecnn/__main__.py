"""`python -m edgecnn` runs the CLI."""

from edgecnn.cli import main

main()
