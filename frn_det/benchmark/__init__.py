"""Speed and memory of the FRN paths against GroupNorm and BatchNorm: one FRN layer (layers.py) and a
RetinaNet training iteration (models.py), timed by one interleaved loop (timing.py). tools/benchmark_frn.py
is their command line; the device check (tools/device/check.py) runs it on the GPU."""
