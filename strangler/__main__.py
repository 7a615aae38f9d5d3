"""``python -m strangler`` runs the CLI."""

from strangler.cli import main

main()
