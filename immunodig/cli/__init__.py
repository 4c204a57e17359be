"""Command-line front: a Typer app assembled from one module per command group."""
