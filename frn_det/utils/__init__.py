from .file_io import finite_or_none, json_text, write_atomic, write_json
