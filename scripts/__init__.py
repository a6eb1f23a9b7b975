"""Scripts run from the command line (and imported by their tests)."""
