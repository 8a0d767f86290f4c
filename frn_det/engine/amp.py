"""Mixed-precision training on the CPU.

detectron2's AMPTrainer asserts CUDA (fp16 autocast with a GradScaler). On the CPU the forward runs
under bf16 autocast instead; bf16 has fp32's exponent range, so gradients need no scaling. FRN keeps
its statistics in fp32 under autocast (frn_det.layers.frn).
"""
import time

import torch
from detectron2.engine import SimpleTrainer


class CPUAMPTrainer(SimpleTrainer):
    """SimpleTrainer whose forward (and loss) runs under torch.autocast("cpu", dtype=precision)."""

    def __init__(self, model, data_loader, optimizer, precision=torch.bfloat16, **kwargs):
        super().__init__(model, data_loader, optimizer, **kwargs)
        self.precision = precision

    def run_step(self):
        # SimpleTrainer.run_step with the forward under autocast, as AMPTrainer does it on CUDA.
        assert self.model.training, "[CPUAMPTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        with torch.autocast("cpu", dtype=self.precision):
            loss_dict = self.model(data)
        if isinstance(loss_dict, torch.Tensor):
            loss_dict = {"total_loss": loss_dict}
        loss_dict = {k: v.float() for k, v in loss_dict.items()}  # sum and log in fp32
        losses = sum(loss_dict.values())
        if not self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        losses.backward()

        self.after_backward()
        if self.async_write_metrics:
            self.concurrent_executor.submit(self._write_metrics, loss_dict, data_time, iter=self.iter)
        else:
            self._write_metrics(loss_dict, data_time)
        self.optimizer.step()
