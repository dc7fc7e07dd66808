"""Silver: system-versioned history of every captured table, generated as dbt models from bronze."""
