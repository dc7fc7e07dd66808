"""Bronze: every committed source change, verbatim and exactly once, in bronze.br_<table>_cdc."""
