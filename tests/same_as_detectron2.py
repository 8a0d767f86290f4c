"""The check that an FRN-aware module is detectron2's with a norm that has no TLU (BN, GN)."""
import torch


def assert_same_as_detectron2(stock, ours, x, run):
    """Built under the same seed: the same state dict (names and values); with the same random weights,
    the same `run(module, x)` outputs."""
    theirs, mine = stock.state_dict(), ours.state_dict()
    assert list(theirs) == list(mine)
    assert all(torch.equal(theirs[k], mine[k]) for k in theirs)
    with torch.no_grad():
        for p in stock.parameters():
            p.normal_(0, 0.1)
    ours.load_state_dict(stock.state_dict())
    with torch.no_grad():
        assert torch.equal(run(stock, x), run(ours, x))
