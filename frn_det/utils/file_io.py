import json
import math
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


def finite_or_none(obj):
    """obj with every NaN and +-inf float (in dicts, lists and tuples) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def json_text(obj, indent=None, default=None):
    """obj as strict JSON: NaN and +-inf as null, which every parser reads (json.dumps would write the
    bare tokens NaN and Infinity, which jq, browsers and most non-Python readers reject)."""
    return json.dumps(finite_or_none(obj), indent=indent, default=default, allow_nan=False)


def write_json(path, obj, indent=None, default=None, fsync=False):
    """Writes obj to path as strict JSON (json_text), whole or not at all (write_atomic)."""
    text = json_text(obj, indent, default)
    write_atomic(path, lambda f: f.write(text), "w", fsync=fsync)
