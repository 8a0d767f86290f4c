"""Writes the backbone weights of a detectron2 checkpoint (e.g. a RetinaNet-FRN model_final.pth), to
initialise another detectron2 model's FRN backbone.

  python tools/extract_backbone.py output/retinanet_frn_2img/model_final.pth frn_R101_fpn.pth
  python tools/extract_backbone.py model_final.pth frn_R101.pth --bottom-up-only   # ResNet only

Keys stay `backbone.*` (with --bottom-up-only, `backbone.bottom_up.*`), so that DetectionCheckpointer
(MODEL.WEIGHTS) loads them into any model whose backbone is build_resnet_frn_fpn_backbone or
build_retinanet_resnet_frn_fpn_backbone, and logs the keys the target model lacks or has in addition
(e.g. RetinaNet's P6/P7 convs, an R-CNN's P2 convs). The optimizer, scheduler and iteration are dropped.
"""
import argparse

import torch


def extract_backbone(checkpoint, bottom_up_only=False):
    """{"model": backbone state} from a checkpoint dict (detectron2's {"model": ...} or a bare state)."""
    state = checkpoint.get("model", checkpoint)
    prefix = "backbone.bottom_up." if bottom_up_only else "backbone."
    kept = {k: v for k, v in state.items() if k.startswith(prefix)}
    if not kept:
        raise ValueError(f"the checkpoint has no {prefix}* weights (its keys start with: "
                         f"{sorted({k.split('.')[0] for k in state})})")
    return {"model": kept}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a detectron2 .pth checkpoint")
    parser.add_argument("output", help="where to write the backbone weights (.pth)")
    parser.add_argument("--bottom-up-only", action="store_true", help="the ResNet only, without the FPN")
    args = parser.parse_args(argv)
    # weights_only=False: detectron2 checkpoints hold numpy scalars and the trainer's state
    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    out = extract_backbone(checkpoint, args.bottom_up_only)
    state = checkpoint.get("model", checkpoint)
    torch.save(out, args.output)
    dropped = sorted({".".join(k.split(".")[:2]) + ".*" for k in state if k not in out["model"]})
    dropped += sorted(set(checkpoint) - {"model"}) if "model" in checkpoint else []
    print(f"{args.output}: kept {len(out['model'])} of {len(state)} tensors; dropped {', '.join(dropped)}")
    return 0
