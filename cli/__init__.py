"""The `workerlab` console script and the tools behind it: up/down, status, load, chaos, lab.

`commands/` holds the typer commands (thin: parse, call, render); the modules beside it do the
work and are shared with the course's checkers (`workerlab.labs`), which never import commands.
"""
