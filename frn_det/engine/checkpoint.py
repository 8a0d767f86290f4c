import os
import re

import torch
from detectron2.checkpoint import DetectionCheckpointer

from frn_det.utils import write_atomic


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(save_dir):
    """Removes the temporary checkpoint files (write_atomic's NAME.pth.tmp.PID) of writers that are gone: a
    run killed while saving (a SLURM requeue, a preemption) leaves one, as large as a checkpoint."""
    for name in os.listdir(save_dir) if os.path.isdir(save_dir) else ():
        match = re.fullmatch(r".+\.pth\.tmp\.(\d+)", name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            os.remove(os.path.join(save_dir, name))


class AtomicCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer that writes each file under a temporary name and then renames it, so a run
    killed while saving never leaves a half-written checkpoint or a last_checkpoint naming one.
    (fvcore's Checkpointer writes in place.) For local OUTPUT_DIRs."""

    def save(self, name, **kwargs):
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        remove_stale_temporaries(self.save_dir)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        write_atomic(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename):
        write_atomic(os.path.join(self.save_dir, "last_checkpoint"), lambda f: f.write(last_filename_basename), "w")


class FiniteAtomicCheckpointer(AtomicCheckpointer):
    """Refuses to write weights that are not finite, so that the last checkpoint is a usable one."""

    def save(self, name, **kwargs):
        for key, value in self.model.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise FloatingPointError(
                    f"Not saving checkpoint {name!r}: {key} is not finite. Training stopped; the previous "
                    "checkpoint (OUTPUT_DIR/last_checkpoint) is intact."
                )
        super().save(name, **kwargs)
