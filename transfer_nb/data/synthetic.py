"""Procedurally generated data sets: ``glyphs`` and ``shapes``.

Both work the same way, which keeps them fast and deterministic:

1. every class is drawn once as a *canonical* high-resolution grey mask (a character
   rendered by FreeType from a font matplotlib ships, or a polygon);
2. per image, random parameters (affine jitter, colours, texture, noise seed) are drawn
   up front for the whole set from ``numpy.random.default_rng(gen_seed)``;
3. only the images ``load_dataset`` keeps are rendered, in batches, at the requested
   size: one bilinear ``grid_sample`` warp of masks drawn at ~1.25x that size.
   Rendering at the requested size keeps 224 px glyphs sharp instead of upsampling
   blurry 32 px ones.

The content of a set is a pure function of its options (``gen_seed`` included), not of
``load_dataset``'s ``seed``: ``seed`` only chooses the split and the subsample, so the
train and test parts drawn with one seed come from the same pool and never overlap.
"""
from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from transfer_nb._validation import plain

__all__ = ["GlyphSource", "ShapeSource", "available_fonts", "DEFAULT_FONTS", "SHAPE_CLASSES",
           "CHARSETS"]

DEFAULT_FONTS = ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono")
CHARSETS = {
    "digits": "0123456789",
    "uppercase": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "lowercase": "abcdefghijklmnopqrstuvwxyz",
}
SHAPE_CLASSES = ("circle", "triangle", "square", "pentagon", "hexagon", "star", "cross", "heart")

# Fonts without usable Latin letters and digits at their usual code points.
_SKIP_FONT_FILES = ("STIXSiz", "STIXNonUni", "LastResort", "Display", "cmex10", "cmsy10",
                    "cmmi10")


def _render_chunk_size(h: int, w: int) -> int:
    # keep the sampling grid of one chunk around 16 MB whatever the image size
    return max(1, (1 << 21) // (h * w))


def _warp(canonical: torch.Tensor, angle, scale, tx, ty, size: tuple[int, int]) -> torch.Tensor:
    """Rotate/scale/translate ``(n, 1, R, R)`` masks into ``(n, 1, h, w)`` images.

    ``angle`` in radians, ``scale`` relative to the canonical drawing, ``tx``/``ty`` in
    normalised coordinates (1 = half the image).  The canonical masks are drawn at only
    ~1.25x the output size, so one bilinear sample per pixel barely aliases; this is 4x
    cheaper than supersampling and generation stays well under a second per thousand.
    """
    h, w = size
    n = canonical.shape[0]
    col = lambda v: torch.as_tensor(np.asarray(v), dtype=torch.float32).view(n, 1, 1)
    angle, scale, tx, ty = col(angle), col(scale), col(tx), col(ty)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # pixel centres in [-1, 1] (align_corners=False convention)
    xs = ((torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1).view(1, 1, w) - tx
    ys = ((torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1).view(1, h, 1) - ty
    # the grid maps *output* pixels to *input* coordinates: the inverse transform.
    # Built by broadcasting: F.affine_grid's batched matmul is several times slower.
    grid = torch.stack([cos * xs - sin * ys, sin * xs + cos * ys], dim=-1)
    return F.grid_sample(canonical, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def _canonical_res(size: tuple[int, int]) -> int:
    # a little above the output size: enough detail, little aliasing (see _warp)
    return int(min(max(40, round(1.25 * max(size))), 512))


# ---------------------------------------------------------------------------------------
# glyphs
# ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def available_fonts() -> dict[str, str]:
    """Fonts shipped with matplotlib usable for glyphs: ``{name: path}``.

    Names are ``family`` plus the style when it is not the regular one, e.g.
    ``"DejaVu Sans"``, ``"DejaVu Serif Italic"``, ``"STIXGeneral Bold"``, ``"cmr10"``.
    """
    import matplotlib
    from matplotlib.ft2font import FT2Font
    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    fonts = {}
    for fname in sorted(os.listdir(folder)):
        if not fname.endswith(".ttf") or any(s in fname for s in _SKIP_FONT_FILES):
            continue
        path = os.path.join(folder, fname)
        ft = FT2Font(path)
        style = ft.style_name
        name = ft.family_name if style in ("Book", "Regular", "Roman") else f"{ft.family_name} {style}"
        fonts[name] = path
    return fonts


def resolve_fonts(fonts) -> tuple[str, ...]:
    """Validate ``fonts`` (names, ``"all"`` or ``None`` for the default) -> canonical names."""
    table = available_fonts()
    if fonts is None:
        return DEFAULT_FONTS
    if isinstance(fonts, str):
        if fonts == "all":
            return tuple(table)
        fonts = [fonts]
    lower = {k.lower(): k for k in table}
    out = []
    for f in fonts:
        key = str(f).lower()
        if key not in lower:
            raise ValueError(f"unknown font {plain(f)!r}; matplotlib ships {sorted(table)} "
                             "(or use 'all')")
        out.append(lower[key])
    if not out:
        raise ValueError("fonts must name at least one font")
    return tuple(dict.fromkeys(out))


def resolve_chars(chars) -> str:
    """Validate ``chars`` (a string of distinct characters or a charset name)."""
    if chars is None:
        return CHARSETS["digits"]
    if not isinstance(chars, str):
        chars = "".join(str(c) for c in chars)
    chars = CHARSETS.get(chars, chars)
    if len(chars) < 2 or len(set(chars)) != len(chars) or any(c.isspace() for c in chars):
        raise ValueError(f"chars must hold at least 2 distinct visible characters (or one of "
                         f"{sorted(CHARSETS)}), got {plain(chars)!r}")
    return chars


@functools.lru_cache(maxsize=256)
def _glyph_mask(font: str, char: str, res: int) -> np.ndarray:
    """``char`` in ``font`` rendered white on black, centred in a ``res x res`` canvas."""
    from matplotlib.ft2font import FT2Font, LoadFlags
    ft = FT2Font(available_fonts()[font])
    if ft.get_char_index(ord(char)) == 0:
        raise ValueError(f"font {font!r} has no glyph for {char!r}")
    ft.set_size(0.62 * res, 72)  # em of ~0.62 res: tall glyphs with descenders still fit
    ft.set_text(char, 0.0, flags=LoadFlags.NO_HINTING)
    ft.draw_glyphs_to_bitmap(antialiased=True)
    bitmap = np.asarray(ft.get_image(), dtype=np.float32) / 255.0
    canvas = np.zeros((res, res), dtype=np.float32)
    bh, bw = min(bitmap.shape[0], res), min(bitmap.shape[1], res)
    by, bx = (bitmap.shape[0] - bh) // 2, (bitmap.shape[1] - bw) // 2
    y0, x0 = (res - bh) // 2, (res - bw) // 2  # centre the ink's bounding box
    canvas[y0:y0 + bh, x0:x0 + bw] = bitmap[by:by + bh, bx:bx + bw]
    return canvas


class GlyphSource:
    """Characters rendered from matplotlib's fonts with random affine jitter.

    Image ``i`` of class ``c`` uses font ``i mod len(fonts)`` so that every class sees
    every font equally often.  Jitter (scaled by ``jitter`` in [0, 1]): rotation
    within +-15 degrees, scale 0.8 .. 1.1, shift within +-12% of the width.
    """

    def __init__(self, chars: str, fonts: tuple[str, ...], n_per_class: int, jitter: float,
                 invert: bool, gen_seed: int, size: int = 32):
        self.chars, self.fonts, self.invert = chars, fonts, bool(invert)
        for font in fonts:  # fail now, with the font's name, if a glyph is missing
            for ch in chars:
                _glyph_mask(font, ch, 64)
        self.classes = list(chars)
        self.native_size = (int(size), int(size))
        k, n = len(chars), len(chars) * n_per_class
        # interleave classes (0, 1, .., k-1, 0, 1, ..) so any prefix is balanced
        self.targets = np.tile(np.arange(k, dtype=np.int64), n_per_class)
        self._font_idx = np.repeat(np.arange(n_per_class), k) % len(fonts)
        rng = np.random.default_rng([int(gen_seed), 0x61F])
        j = float(jitter)
        self._angle = np.deg2rad(rng.uniform(-15, 15, n) * j)
        self._scale = 1.0 + rng.uniform(-0.2, 0.1, n) * j
        self._tx = rng.uniform(-0.12, 0.12, n) * j
        self._ty = rng.uniform(-0.12, 0.12, n) * j

    def images(self, indices, size=None) -> torch.Tensor:
        size = tuple(size) if size is not None else self.native_size
        indices = np.asarray(indices, dtype=np.int64)
        res = _canonical_res(size)
        masks = torch.from_numpy(np.stack([
            np.stack([_glyph_mask(f, ch, res) for ch in self.chars]) for f in self.fonts]))
        out = []
        step = _render_chunk_size(*size)
        for s in range(0, len(indices), step):
            idx = indices[s:s + step]
            canon = masks[torch.from_numpy(self._font_idx[idx]),
                          torch.from_numpy(self.targets[idx])].unsqueeze(1)
            out.append(_warp(canon, self._angle[idx], self._scale[idx], self._tx[idx],
                             self._ty[idx], size).clamp_(0, 1))
        x = torch.cat(out) if out else torch.zeros((0, 1, *size))
        return 1.0 - x if self.invert else x


# ---------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------
def _polygon(name: str) -> np.ndarray:
    """Outline of a shape as ``(m, 2)`` points in [-1, 1] (centred, radius about 1)."""
    def regular(k, phase=math.pi / 2, r=1.0):
        t = phase + 2 * math.pi * np.arange(k) / k
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    if name == "circle":
        return regular(96)
    if name == "triangle":
        return regular(3)
    if name == "square":
        return regular(4, phase=math.pi / 4)
    if name == "pentagon":
        return regular(5)
    if name == "hexagon":
        return regular(6)
    if name == "star":
        t = math.pi / 2 + math.pi * np.arange(10) / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    if name == "cross":
        a, b = 0.33, 0.95
        pts = [(a, b), (a, a), (b, a), (b, -a), (a, -a), (a, -b), (-a, -b), (-a, -a),
               (-b, -a), (-b, a), (-a, a), (-a, b)]
        return np.asarray(pts, dtype=np.float64)
    if name == "heart":
        t = np.linspace(0, 2 * math.pi, 128, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        pts = np.stack([x, y + 2.5], 1) / 17.0
        return pts
    raise ValueError(f"unknown shape {name!r}; expected some of {list(SHAPE_CLASSES)}")


@functools.lru_cache(maxsize=64)
def _shape_mask(name: str, res: int, fill: float) -> np.ndarray:
    """Shape ``name`` as a ``res x res`` mask; ``fill`` 0 = solid, 1 = thin outline."""
    from matplotlib.path import Path
    from scipy.ndimage import distance_transform_edt
    ss = 2 * res  # rasterise at 2x and average: smooth edges
    c = (np.arange(ss) + 0.5) / ss * 2 - 1
    xx, yy = np.meshgrid(c, -c)  # image rows go down, y goes up
    inside = Path(_polygon(name)).contains_points(np.stack([xx.ravel(), yy.ravel()], 1))
    inside = inside.reshape(ss, ss)
    if fill > 0:
        # hollow the shape: keep pixels closer to the edge than a fraction of the
        # deepest point, so every shape keeps a stroke proportional to its size
        depth = distance_transform_edt(inside)
        inside &= depth <= (1.0 - 0.8 * float(fill)) * depth.max() + 1.0
    mask = inside.astype(np.float32).reshape(res, 2, res, 2).mean(axis=(1, 3))
    return mask


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


class ShapeSource:
    """Shapes with a controllable domain shift.

    ``shift`` in [0, 1] moves from clean white shapes on black (0) to a harder domain
    (1); each factor can be set on its own (``None`` means "use ``shift``"):

    * ``color``   -- blends white/black into random foreground/background colours
      (drawn so that the shape stays darker or lighter than its background);
    * ``texture`` -- adds a smooth random background field (amplitude 0.5 at 1);
    * ``noise``   -- adds Gaussian pixel noise (sigma 0.15 at 1);
    * ``fill``    -- hollows the shapes, from solid (0) to a thin outline (1).

    Geometry jitter (any rotation, scale 0.55 .. 0.9, shift +-15%) is the same in every
    domain, so only appearance changes with ``shift``.
    """

    def __init__(self, classes: tuple[str, ...], n_per_class: int, shift: float,
                 color: float | None, texture: float | None, noise: float | None,
                 fill: float | None, gen_seed: int, size: int = 32):
        for name in classes:
            _polygon(name)
        self.shape_names = tuple(classes)
        self.classes = list(classes)
        self.native_size = (int(size), int(size))
        self.color = float(shift if color is None else color)
        self.texture = float(shift if texture is None else texture)
        self.noise = float(shift if noise is None else noise)
        self.fill = float(shift if fill is None else fill)
        k, n = len(classes), len(classes) * n_per_class
        self.targets = np.tile(np.arange(k, dtype=np.int64), n_per_class)
        rng = np.random.default_rng([int(gen_seed), 0x5AE])
        self._angle = rng.uniform(0, 2 * math.pi, n)
        self._scale = rng.uniform(0.55, 0.9, n)
        self._tx = rng.uniform(-0.15, 0.15, n)
        self._ty = rng.uniform(-0.15, 0.15, n)
        # colours: a random foreground and a background pushed to the other side of
        # mid-grey in luminance, so colour never makes the shape invisible
        fg = rng.uniform(0, 1, (n, 3))
        bg = rng.uniform(0, 1, (n, 3))
        light_fg = _luminance(fg) >= 0.5
        bg = np.where(light_fg[:, None], bg * 0.45, 0.55 + bg * 0.45)
        self._fg = (1 - self.color) * 1.0 + self.color * fg
        self._bg = self.color * bg
        # low-frequency fields (5x5 and 11x11 grids, upsampled at render time): resolution
        # independent, so the same image at 32 px and 224 px has the same texture
        self._field_coarse = rng.standard_normal((n, 3, 5, 5)).astype(np.float32)
        self._field_fine = rng.standard_normal((n, 3, 11, 11)).astype(np.float32)
        self._noise_seed = rng.integers(0, 2 ** 62, n)

    def images(self, indices, size=None) -> torch.Tensor:
        size = tuple(size) if size is not None else self.native_size
        h, w = size
        indices = np.asarray(indices, dtype=np.int64)
        res = _canonical_res(size)
        masks = torch.from_numpy(np.stack([_shape_mask(s, res, round(self.fill, 6))
                                           for s in self.shape_names]))
        # Compositing runs in NumPy: these small element-wise steps are single-threaded
        # and several times faster there than torch's thread pool on a busy 2-core box.
        wy5, wx5 = _smooth_upsampler(5, h), _smooth_upsampler(5, w)
        wy11, wx11 = _smooth_upsampler(11, h), _smooth_upsampler(11, w)
        out = np.empty((len(indices), 3, h, w), dtype=np.float32)
        step = _render_chunk_size(h, w)
        for s in range(0, len(indices), step):
            idx = indices[s:s + step]
            canon = masks[torch.from_numpy(self.targets[idx])].unsqueeze(1)
            alpha = _warp(canon, self._angle[idx], self._scale[idx], self._tx[idx],
                          self._ty[idx], size).numpy()
            np.clip(alpha, 0, 1, out=alpha)
            fg = self._fg[idx].astype(np.float32)[:, :, None, None]
            bg = np.broadcast_to(self._bg[idx].astype(np.float32)[:, :, None, None],
                                 (len(idx), 3, h, w))
            if self.texture > 0:
                field = (0.3 * _upsample_field(self._field_coarse[idx], wy5, wx5)
                         + 0.2 * _upsample_field(self._field_fine[idx], wy11, wx11))
                bg = bg + self.texture * field
            img = bg + alpha * (fg - bg)
            if self.noise > 0:
                sigma = np.float32(0.15 * self.noise)
                for j, seed in enumerate(self._noise_seed[idx]):
                    img[j] += sigma * np.random.default_rng(int(seed)).standard_normal(
                        (3, h, w), dtype=np.float32)
            np.clip(img, 0, 1, out=out[s:s + len(idx)])
        return torch.from_numpy(out)


def _upsample_field(field: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> np.ndarray:
    """``(n, c, k, k)`` grid values -> ``(n, c, h, w)`` with the separable weights.

    ``tensordot`` runs two plain GEMMs; NumPy's broadcast ``@`` on these stacks of tiny
    matrices is two orders of magnitude slower.
    """
    tmp = np.tensordot(field, wx, axes=([3], [1]))          # (n, c, k, w)
    return np.tensordot(wy, tmp, axes=([1], [2])).transpose(1, 2, 0, 3)  # (n, c, h, w)


@functools.lru_cache(maxsize=32)
def _smooth_upsampler(k: int, length: int) -> np.ndarray:
    """``(length, k)`` matrix that interpolates ``k`` grid values smoothly (Gaussian
    weights, normalised) onto ``length`` pixels; the same field at any resolution."""
    pos = (np.arange(length) + 0.5) / length * k - 0.5
    d = pos[:, None] - np.arange(k)[None, :]
    wts = np.exp(-0.5 * (d / 0.6) ** 2)
    return (wts / wts.sum(1, keepdims=True)).astype(np.float32)
