from .command import cli

cli(prog="python -m frn_det.predict")
