from .results import by_dataset, format_table, headline, write_results
