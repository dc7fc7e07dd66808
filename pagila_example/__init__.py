"""Pagila, the example the engine is shown on: its sample database, a seeded OLTP simulator, a
scaler for benchmarks and `medallion demo`. The engine (medallion/) never imports this package;
the `medallion` command offers its commands through the `medallion.commands` entry point
(pyproject.toml; commands.py)."""
