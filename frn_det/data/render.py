"""Rendering of the shapes images, in three looks.

Each image holds 1-6 filled shapes of the classes in `SHAPE_CLASSES`, with random colours and sizes,
upright but slightly tilted, none occluding another. The looks (`LOOKS`):

- "photo" (default): image statistics differ from image to image as in photographs - backgrounds of
  several kinds (flat, gradients, cloudy noise, stripes, checkers, grain), per-image illumination
  with light falloff, colour casts, contrast, black level, gamma and sensor noise, shaded objects and
  a per-image object scale. Batch statistics then vary with the images in a batch, which is what a
  study of batch-size dependence of normalization layers needs.
- "uniform": one plain grey noisy background, no photometric changes, a narrow range of sizes.
- "real": the photo look's shapes and sizes on random crops (position, scale, flip) of photographs
  that scikit-image's wheel bundles, with nothing synthetic on top (no lighting, cast or noise): the
  photos supply the variation. scikit-image is imported only when this look is rendered.

Images are rendered with numpy (anti-aliased through signed distances); a box is the tightest box
around every pixel its object changes.
"""
import functools
import hashlib

import numpy as np
from PIL import Image

SHAPE_CLASSES = ("circle", "rectangle", "triangle", "cross")
LOOKS = ("photo", "uniform", "real")  # the index seeds each image's generator: append only

_MAX_TILT = np.radians(15)
_CIRCLE_SIDES = 32  # of the circles' outline polygons (segmentation, extent)
# The real look's photos: skimage.data functions whose files are in scikit-image's wheel (read from the
# installed package, never downloaded), colour and grey. Left out: coins, text, page (their circles and
# glyphs look like the shape classes), retina and microscopy (not scenes), logos and synthetic images.
REAL_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field",
               "camera", "grass", "gravel", "brick", "moon")


def _hsv_to_rgb(h, s, v):
    """Vectorised HSV -> RGB; h, s, v in [0, 1], shape (...,) -> (..., 3)."""
    k = (np.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0) % 6.0
    return v[..., None] * (1.0 - s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))


def _random_colours(rng, n, sat, val):
    return _hsv_to_rgb(rng.random(n), rng.uniform(*sat, n), rng.uniform(*val, n))


def _smooth_noise(rng, cells, h, w, channels):
    """Value noise: a random (cells x cells) grid smoothly interpolated to (h, w, channels), in [0, 1]."""

    def interp_matrix(n_out):
        u = (np.arange(n_out) + 0.5) / n_out * (cells - 1)
        i0 = np.minimum(u.astype(int), cells - 2)
        f = u - i0
        f = f * f * (3.0 - 2.0 * f)  # smoothstep hides the grid's cell edges
        m = np.zeros((n_out, cells))
        m[np.arange(n_out), i0] = 1.0 - f
        m[np.arange(n_out), i0 + 1] = f
        return m

    grid = rng.random((cells, cells * channels))
    rows = (interp_matrix(h) @ grid).reshape(h, cells, channels).transpose(0, 2, 1)
    return (rows @ interp_matrix(w).T).transpose(0, 2, 1)


def _unit_coords(h, w):
    """Pixel-centre coordinates scaled to [-1, 1]."""
    return (np.arange(w) + 0.5) / w * 2 - 1, ((np.arange(h) + 0.5) / h * 2 - 1)[:, None]


def _photo_background(rng, h, w, scale):
    """One of several background kinds between two random colours, optionally with cloudy shading."""
    c0 = _random_colours(rng, 1, (0.0, 0.7), (0.1, 0.95))[0]
    c1 = np.clip(c0 + rng.normal(0.0, rng.uniform(0.05, 0.3), 3), 0.0, 1.0)
    u, v = _unit_coords(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    along = (u * np.cos(angle) + v * np.sin(angle)) * (w / 2)  # rotated coordinate, in pixels
    across = (-u * np.sin(angle) + v * np.cos(angle)) * (h / 2)
    kind = rng.integers(6)
    if kind == 0:  # flat
        t = np.zeros((h, w))
    elif kind == 1:  # linear or radial gradient
        t = (along / w + 0.5) if rng.random() < 0.6 else np.sqrt(u**2 + v**2) / np.sqrt(2)
    elif kind == 2:  # clouds
        t = _smooth_noise(rng, int(rng.integers(3, 10)), h, w, 1)[..., 0]
    elif kind == 3:  # stripes, from soft to sharp
        period = rng.uniform(4, 32) * scale
        t = np.tanh(rng.uniform(0.5, 6) * np.sin(2 * np.pi * along / period + rng.uniform(0, 2 * np.pi)))
        t = 0.5 + 0.5 * t
    elif kind == 4:  # checkers / tiles
        period = rng.uniform(6, 32) * scale
        t = ((np.floor(along / period) + np.floor(across / period)) % 2).astype(float)
    else:  # coloured grain
        t = _smooth_noise(rng, int(rng.integers(16, 64)), h, w, 3)
    bg = c0 + (t if t.ndim == 3 else t[..., None]) * (c1 - c0)
    if rng.random() < 0.5:  # low-frequency shading on top of any kind
        bg = bg * (1 + rng.uniform(0.1, 0.5) * (_smooth_noise(rng, int(rng.integers(2, 5)), h, w, 1) - 0.5))
    return bg


@functools.lru_cache(maxsize=1)
def real_photos():
    """The real look's photos as RGB PIL images (in REAL_PHOTOS order) and a digest of their pixels."""
    try:
        import skimage.data  # here, not at the top: only the real look needs scikit-image
    except ImportError as e:
        raise ImportError("The real-photo look of the shapes (shapes_real_*) pastes the shapes on photographs "
                          "that scikit-image bundles: pip install scikit-image (or frn_det[real])") from e

    images, digest = [], hashlib.sha256()
    for name in REAL_PHOTOS:
        pixels = getattr(skimage.data, name)()
        if name == "stereo_motorcycle":
            pixels = pixels[0]  # (left view, right view, disparity)
        image = Image.fromarray(pixels).convert("RGB")
        digest.update(name.encode() + image.tobytes())
        images.append(image)
    return images, digest.hexdigest()[:16]


def real_background(rng, size):
    """A square crop of a random photo (REAL_PHOTOS) at a random position and scale, flipped or not,
    resized to (size, size). Returns the image (floats in [0, 1]) and the crop: (photo index, box, flipped)."""
    photos, _ = real_photos()
    index = int(rng.integers(len(photos)))
    photo = photos[index]
    short = min(photo.size)
    side = int(round(np.exp(rng.uniform(np.log(short / 4), np.log(short)))))  # log-uniform: zooms spread evenly
    x0, y0 = int(rng.integers(photo.width - side + 1)), int(rng.integers(photo.height - side + 1))
    flipped = bool(rng.random() < 0.5)
    box = (x0, y0, x0 + side, y0 + side)
    crop = photo.crop(box).resize((size, size), Image.Resampling.LANCZOS)
    if flipped:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop, dtype=np.float64) / 255.0, (index, box, flipped)


def _photometric(rng, img):
    """Per-image camera and lighting: illumination with falloff, colour cast, contrast, black level, gamma."""
    h, w, _ = img.shape
    u, v = _unit_coords(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    light = np.exp(rng.uniform(0, 0.6) * (u * np.cos(angle) + v * np.sin(angle)))
    light = light * (1 - rng.uniform(0, 0.5) * (u**2 + v**2) / 2)  # vignetting
    gain = np.exp(rng.uniform(np.log(0.45), np.log(1.35)))
    cast = np.exp(np.clip(rng.normal(0.0, 0.12, 3), -0.3, 0.3))
    img = img * (gain * light)[..., None] * cast
    mean = img.mean()
    img = mean + np.exp(rng.uniform(np.log(0.6), np.log(1.5))) * (img - mean)
    img = np.clip(img + rng.uniform(-0.05, 0.1), 0.0, 1.0)
    return img ** np.exp(rng.uniform(np.log(0.7), np.log(1.4)))


def _shape_parts(cls, s, rng):
    """Shape of class `cls` with size `s` (about its half-extent), centred on 0, upright but tilted a little.

    Returns (parts whose union is the shape, outline polygon): a part is a convex polygon, a (k, 2)
    array of x, y vertices, or for circles the radius (exact and cheaper than a polygon).
    """
    # Free rotation halved the AP of a short from-scratch training (the classes got confused), and
    # image statistics, not poses, are what this dataset is for: tilts stay within +-MAX_TILT.
    a = rng.uniform(-_MAX_TILT, _MAX_TILT)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    name = SHAPE_CLASSES[cls]
    if name == "circle":
        t = np.linspace(0, 2 * np.pi, _CIRCLE_SIDES, endpoint=False)
        return [s], s * np.stack([np.cos(t), np.sin(t)], 1)
    if name == "rectangle":  # landscape or portrait
        half = 0.85 * s * np.array([1.0, rng.uniform(0.6, 1.0)])
        outline = (np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half[rng.permutation(2)]) @ rot.T
        return [outline], outline
    if name == "triangle":  # apex up (y points down), proportions jittered
        t = np.pi / 2 + np.array([np.pi, -np.pi / 3, np.pi / 3]) + rng.uniform(-0.15, 0.15, 3)
        r = 1.2 * s * rng.uniform(0.95, 1.05, 3)
        outline = np.stack([r * np.cos(t), r * np.sin(t)], 1) @ rot.T
        return [outline], outline
    arm, half = s, s * rng.uniform(0.25, 0.36)  # cross "+": union of two bars
    bar = np.array([[-arm, -half], [arm, -half], [arm, half], [-arm, half]])
    outline = np.array([[half, arm], [half, half], [arm, half], [arm, -half], [half, -half], [half, -arm],
                        [-half, -arm], [-half, -half], [-arm, -half], [-arm, half], [-half, half], [-half, arm]])
    return [bar @ rot.T, bar[:, ::-1] @ rot.T], outline @ rot.T


def _part_sdf(poly, px, py):
    """Signed distance (negative inside) from pixel centres (px, py) to a part of a shape (_shape_parts)."""
    if np.ndim(poly) == 0:
        return np.sqrt(px**2 + py**2) - poly
    edges = np.roll(poly, -1, axis=0) - poly
    normals = np.stack([edges[:, 1], -edges[:, 0]], 1) / np.linalg.norm(edges, axis=1, keepdims=True)
    normals *= -np.sign(((poly.mean(0) - poly) * normals).sum(1, keepdims=True))  # point outwards
    dx, dy = px[..., None] - poly[:, 0], py[..., None] - poly[:, 1]  # (h, w, k): from each vertex
    inside = (dx * normals[:, 0] + dy * normals[:, 1]).max(-1)  # exact inside
    # outside, the distance to the nearest edge (the half-planes alone would grow sharp corners)
    t = np.clip((dx * edges[:, 0] + dy * edges[:, 1]) / (edges**2).sum(1), 0.0, 1.0)
    outside = np.sqrt((dx - t * edges[:, 0]) ** 2 + (dy - t * edges[:, 1]) ** 2).min(-1)
    return np.where(inside > 0, outside, inside)


def render_sample(rng, image_size, look, num_objects=None):
    """Render one image. Returns (uint8 HxWx3 image, objects); each object is a dict with category (0-based),
    bbox [x, y, w, h], area, segmentation (flat polygon) and mask (bool HxW: the pixels it changed)."""
    photo, real = look == "photo", look == "real"
    size = image_size
    scale = size / 128.0
    if photo:
        img = _photo_background(rng, size, size, scale)
    elif real:
        img = real_background(rng, size)[0]
    else:
        img = np.full((size, size, 3), 0.4)
    if num_objects is None:
        num_objects = int(rng.integers(1, 7))
    # "photo" and "real": one object scale per image (near / far), objects vary around it
    base = np.exp(rng.uniform(np.log(8), np.log(22))) * scale if photo or real else None
    occupied = np.zeros((size, size), bool)
    objects, boxes = [], []  # boxes: the outlines' (x0, y0, x1, y1), for the overlap test
    for _ in range(num_objects):
        for _attempt in range(20):  # rejection sampling; an object that does not fit is dropped
            cls = int(rng.integers(len(SHAPE_CLASSES)))
            if base is not None:
                s = float(np.clip(base * np.exp(rng.normal(0, 0.2)), 6 * scale, 30 * scale))
            else:
                s = rng.uniform(9, 18) * scale
            parts, outline = _shape_parts(cls, s, rng)
            lo, hi = outline.min(0), outline.max(0)
            # one pixel of margin keeps every shape whole inside the image (no truncated boxes)
            centre = rng.uniform(1 - lo, size - 1 - hi)
            x0, y0 = np.maximum(np.floor(centre + lo - 3).astype(int), 0)  # room for anti-aliasing and gap
            x1, y1 = np.minimum(np.ceil(centre + hi + 3).astype(int), size)
            px = np.arange(x0, x1) + 0.5 - centre[0]
            py = (np.arange(y0, y1) + 0.5 - centre[1])[:, None]
            # no occlusion: boxes apart (overlap < 35% of the smaller), >= 1.5 px between shapes
            box = np.concatenate([centre + lo, centre + hi])
            if any(_overlap_of_smaller(box, b) > 0.35 for b in boxes):
                continue
            sdf = np.min([_part_sdf(p, px, py) for p in parts], axis=0)
            if not (occupied[y0:y1, x0:x1] & (sdf < 2.0)).any():
                break
        else:
            continue
        alpha = np.clip(0.5 - sdf, 0.0, 1.0)  # area coverage of a pixel, from its distance to the edge
        alpha[alpha < 0.1] = 0.0  # so that the box covers only pixels the shape visibly changes
        window = img[y0:y1, x0:x1]
        colour = _object_colour(rng, window.reshape(-1, 3).mean(0), photo or real)
        if photo:  # shading across the object
            a = rng.uniform(0, 2 * np.pi)
            shade = 1 + rng.uniform(-0.3, 0.3) * (px * np.cos(a) + py * np.sin(a)) / s
            colour = np.clip(colour * shade[..., None], 0.0, 1.0)
        img[y0:y1, x0:x1] = window * (1 - alpha[..., None]) + colour * alpha[..., None]
        mask = np.zeros((size, size), bool)
        mask[y0:y1, x0:x1] = alpha > 0
        occupied |= mask
        ys, xs = np.nonzero(mask)
        objects.append({
            "category": cls,
            "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
            "area": round(float(alpha.sum()), 2),
            "segmentation": [round(float(c), 2) for c in (outline + centre).ravel()],
            "mask": mask,
        })
        boxes.append(box)
    if photo:
        img = _photometric(rng, img)
    if not real:  # a photograph brings its own noise
        noise = rng.uniform(0.005, 0.04) if photo else 0.03
        img = img + rng.normal(0.0, noise, img.shape)
    return (np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), objects


def _overlap_of_smaller(a, b):
    """Intersection of boxes (x0, y0, x1, y1) over the smaller box's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller


def _object_colour(rng, background, photo):
    """A random colour that stands out from the mean background under the object (RGB distance >= 0.45)."""
    candidates = _random_colours(rng, 12, (0.2, 1.0) if photo else (0.6, 1.0), (0.15, 1.0) if photo else (0.7, 1.0))
    dist = np.linalg.norm(candidates - background, axis=1)
    ok = np.nonzero(dist >= 0.45)[0]
    return candidates[ok[0] if len(ok) else dist.argmax()]
