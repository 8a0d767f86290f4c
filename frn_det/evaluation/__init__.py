from .results import by_dataset, format_table, headline, read_results, write_results
