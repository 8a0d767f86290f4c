from .file_io import write_atomic
