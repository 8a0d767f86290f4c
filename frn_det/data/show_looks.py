"""Render a grid PNG of the first images of each look of the shapes dataset, with their boxes drawn.

    .venv/bin/python tools/show_looks.py [--num 6] [--scale 2] [--out benchmarks/looks.png]

One row per look (uniform, photo, real), the images of its train split (seed 0): the first `--num`
images are the same as those of shapes_uniform_train, shapes_train and shapes_real_train. They are
generated into a temporary folder, so nothing under datasets/ is touched.
"""
import argparse
import json
import os
import tempfile

from PIL import Image, ImageDraw

from frn_det.data import SHAPE_CLASSES, generate_shapes_dataset

LOOKS = ("uniform", "photo", "real")
BOX_COLOURS = ("#ff2020", "#20ff20", "#2080ff", "#ffff00")  # per class, in SHAPE_CLASSES order
LABEL_WIDTH = 70


def render_grid(num=6, scale=2, seed=0, image_size=128):
    cell = image_size * scale
    grid = Image.new("RGB", (LABEL_WIDTH + num * (cell + 4), len(LOOKS) * (cell + 4) + 16), "white")
    draw = ImageDraw.Draw(grid)
    for k, name in enumerate(SHAPE_CLASSES):  # legend
        draw.text((LABEL_WIDTH + k * 90, 2), name, fill=BOX_COLOURS[k])
    with tempfile.TemporaryDirectory() as root:
        for row, look in enumerate(LOOKS):
            coco = json.load(open(generate_shapes_dataset(root, look, num, image_size, seed=seed, look=look)))
            top = 16 + row * (cell + 4)
            draw.text((4, top + cell // 2), look, fill="black")
            for col, info in enumerate(coco["images"]):
                image = Image.open(os.path.join(root, look, info["file_name"])).convert("RGB")
                image = image.resize((cell, cell), Image.Resampling.NEAREST)  # pixels stay visible
                boxes = ImageDraw.Draw(image)
                for ann in coco["annotations"]:
                    if ann["image_id"] == info["id"]:
                        x, y, w, h = ann["bbox"]
                        # the outline runs along the box's outermost pixels
                        boxes.rectangle([x * scale, y * scale, (x + w) * scale - 1, (y + h) * scale - 1],
                                        outline=BOX_COLOURS[ann["category_id"] - 1])
                grid.paste(image, (LABEL_WIDTH + col * (cell + 4), top))
    return grid


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=6, help="images per look")
    parser.add_argument("--scale", type=int, default=2, help="pixel magnification")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/looks.png")
    args = parser.parse_args()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    render_grid(args.num, args.scale, args.seed).save(args.out)
    print(args.out)
