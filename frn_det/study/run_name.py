"""A study run's folder name, as tools/batch_study.py writes it and the summary reads it back:
<method>_<m>img_seed<s>[_lr<x>][_<side>px] (e.g. frn_8img_seed0_lr0.05_256px), inside iters<N>/ when the
run is at reference schedule N (--schedules)."""
import re
from dataclasses import dataclass
from typing import Optional

# the method is any lower-case name (frn, gn_tlu, ...): the non-greedy match stops at "_<m>img"
_RUN_NAME = re.compile(r"^(?P<method>[a-z][a-z0-9_]*?)_(?P<imgs>\d+)img_seed(?P<seed>\d+)"
                       r"(?:_lr(?P<lr>[0-9.e+-]+))?(?:_(?P<size>\d+)px)?$")
_SCHEDULE_FOLDER = re.compile(r"^iters(?P<steps>\d+)$")
DIVERGED = "diverged.txt"  # in a run folder: the error line of a run stopped by a non-finite loss


@dataclass(frozen=True)
class RunName:
    """method, images per GPU, seed, the reference lr where one was given (None: the config's) and the
    input side where it is not the config's (None)."""

    method: str
    imgs: int
    seed: int
    lr: Optional[float] = None
    size: Optional[int] = None

    def __str__(self):
        return (f"{self.method}_{self.imgs}img_seed{self.seed}" + ("" if self.lr is None else f"_lr{self.lr:g}")
                + ("" if self.size is None else f"_{self.size}px"))

    @classmethod
    def parse(cls, name):
        """The RunName a folder name spells, or None when it is not a run's name."""
        match = _RUN_NAME.match(name)
        if not match:
            return None
        lr, size = match["lr"], match["size"]
        try:
            lr = None if lr is None else float(lr)
        except ValueError:
            return None
        return cls(match["method"], int(match["imgs"]), int(match["seed"]), lr, None if size is None else int(size))


def schedule_folder(steps):
    """The folder of the runs at reference schedule `steps` (iterations at the config's batch)."""
    return f"iters{steps}"


def parse_schedule_folder(name):
    """The reference schedule a folder name spells (iters<N>), or None."""
    match = _SCHEDULE_FOLDER.match(name)
    return None if match is None else int(match["steps"])
