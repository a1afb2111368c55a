"""The ``rnnlab`` command: one small module per subcommand; argument parsing and messages only."""
