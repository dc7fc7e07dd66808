"""pagila-medallion: PostgreSQL change data capture into bronze, system-versioned silver, gold marts."""

__version__ = "0.1.0"
