import os


def write_atomic(path, write, mode="wb", fsync=True):
    """Calls write(file) on a temporary file beside `path`, then renames it to `path`: readers (other
    ranks, a resumed run) never see half a file, also when the writer is killed. fsync makes the
    content durable before the rename (for checkpoints); files that can be regenerated skip it."""
    path = os.fspath(path)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, mode) as f:
        write(f)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
