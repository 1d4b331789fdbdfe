"""The command line: the parser, one module per command, config and progress."""
