"""Every click command and nothing else; ``strangler.cli.main`` loads the commands lazily."""
