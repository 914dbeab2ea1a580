"""Helpers shared by the suites' conftests (on sys.path through pytest's `pythonpath`)."""
