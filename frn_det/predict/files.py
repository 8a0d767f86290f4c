"""The predict command's files: the images and video it reads, and the drawn images and video it
writes."""
import glob
import os

import numpy as np

from frn_det.engine.predictor import PredictError
from frn_det.utils import write_atomic

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def import_cv2():
    """OpenCV, for image and video files; one clear message where it is missing."""
    try:
        import cv2
    except ImportError as e:
        raise PredictError(
            f"frn_det.predict needs OpenCV for image and video files ({e}): pip install opencv-python-headless "
            "(or opencv-python where a display is used)") from None
    return cv2


def expand_inputs(patterns):
    """Image files from files, folders (their images, sorted, not recursive) and globs (their images),
    in the order given, each once. A file named directly is taken whatever its extension."""
    files = []
    for pattern in patterns:
        path = os.path.expanduser(pattern)
        if not glob.has_magic(path) and not os.path.exists(path):
            raise PredictError(f"--input {pattern}: no such file or folder")
        if os.path.isdir(path):
            found = [os.path.join(path, n) for n in sorted(os.listdir(path))]
        elif os.path.isfile(path):
            files.append(path)
            continue
        else:
            found = sorted(glob.glob(path, recursive=True))
        files += [f for f in found if os.path.isfile(f) and f.lower().endswith(IMAGE_EXTENSIONS)]
    files = list(dict.fromkeys(files))
    if not files:
        raise PredictError(f"--input {' '.join(patterns)}: no image files matched (files, folders and globs "
                           f"are searched for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def output_names(files):
    """A file name in the output folder per input: its own, made unique, with an image extension."""
    names, used = [], set()
    for f in files:
        stem, ext = os.path.splitext(os.path.basename(f))
        ext = ext if ext.lower() in IMAGE_EXTENSIONS else ext + ".png"
        name, k = stem + ext, 1
        while name in used:
            name, k = f"{stem}_{k}{ext}", k + 1
        used.add(name)
        names.append(name)
    return names


def refuse_overwriting(inputs, outputs):
    """A PredictError when a file to write is one of the inputs (--output is an input's folder)."""
    real = {os.path.realpath(p) for p in inputs}
    clash = [p for p in outputs if os.path.realpath(p) in real]
    if clash:
        raise PredictError(f"--output would overwrite the input {clash[0]}: choose another folder")


def draw(image_rgb, instances, metadata, scale=1.0):
    """The image with its detections drawn by detectron2's Visualizer (RGB uint8)."""
    from detectron2.utils.visualizer import Visualizer

    return Visualizer(image_rgb, metadata, scale=scale).draw_instance_predictions(instances).get_image()


def write_image(cv2, path, image_rgb):
    ok, data = cv2.imencode(os.path.splitext(path)[1], np.ascontiguousarray(image_rgb[:, :, ::-1]))
    if not ok:
        raise OSError(f"OpenCV could not encode {path}")
    write_atomic(path, lambda f: f.write(data.tobytes()), fsync=False)


def open_video(cv2, path):
    """The capture, once its first frame decodes (else a PredictError)."""
    capture = cv2.VideoCapture(path)
    ok = capture.isOpened()
    if ok:
        ok, _ = capture.read()
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    if not ok:
        capture.release()
        why = ("no such file" if not os.path.exists(path) else
               "OpenCV can't open it as a video or decode a frame of it (format or codec)")
        raise PredictError(f"--video-input {path}: {why}")
    return capture


def video_output(output, path):
    return os.path.join(output, os.path.splitext(os.path.basename(path))[0] + ".mp4")


class VideoWriter:
    """An mp4v video at `path`, written whole or not at all: frames go to a .partial.mp4 beside it,
    renamed when the `with` block ends without an error and removed when it fails."""

    def __init__(self, cv2, path, fps, size):
        self.path, self.partial = path, path[:-4] + ".partial.mp4"
        self.writer = cv2.VideoWriter(self.partial, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise OSError(f"OpenCV can't write {self.partial} (mp4v)")

    def write(self, frame_bgr):
        self.writer.write(np.ascontiguousarray(frame_bgr))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.writer.release()
        if exc_type is None:
            os.replace(self.partial, self.path)
        elif os.path.exists(self.partial):
            os.remove(self.partial)
