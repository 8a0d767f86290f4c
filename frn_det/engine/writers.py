"""metrics.json as strict JSON: detectron2's JSONWriter writes COCOeval's NaN APs (an area range with
no objects) as the bare token NaN, which jq, browsers and most non-Python readers reject."""
import json

from detectron2.utils.events import JSONWriter

from frn_det.utils import json_text


class _StrictJSONLines:
    """A text file whose write() writes each JSON line it gets as strict JSON (json_text)."""

    def __init__(self, f):
        self._f = f

    def write(self, text):
        lines = text.splitlines(keepends=True)
        return self._f.write("".join(json_text(json.loads(line)) + "\n" if line.strip() else line for line in lines))

    def __getattr__(self, name):  # flush, fileno, close
        return getattr(self._f, name)


class StrictJSONWriter(JSONWriter):
    """detectron2's JSONWriter (one JSON object a line, appended) with NaN and +-inf written as null."""

    def __init__(self, json_file, window_size=20):
        super().__init__(json_file, window_size)
        self._file_handle = _StrictJSONLines(self._file_handle)
