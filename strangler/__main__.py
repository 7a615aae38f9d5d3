"""``python -m strangler`` runs the CLI."""

from strangler.cli.main import main

main()
