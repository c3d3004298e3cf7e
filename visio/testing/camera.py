"""A fake camera of a known picture for Chromium (`--use-file-for-fake-video-capture`):
a person-like figure in front of a striped wall, so that what a background effect did to
the wall can be measured in the frames a bot receives."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

WIDTH, HEIGHT, FPS = 640, 360, 15
STRIPE_PX = 16
WALL = ((230, 120, 30), (20, 140, 170))  # alternating vertical stripes (RGB)
SKIN = (205, 160, 130)
CLOTHES = (45, 45, 70)
# Where only wall can be, as fractions of the frame (x0, y0, x1, y1): well away from the figure.
WALL_REGIONS = ((0.04, 0.08, 0.2, 0.45), (0.8, 0.08, 0.96, 0.45))


def pattern() -> np.ndarray:
    """The camera's picture, HEIGHT x WIDTH x 3 RGB."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    image[:] = np.where(((x // STRIPE_PX) % 2 == 0)[..., None], WALL[0], WALL[1])
    cx = WIDTH / 2
    shoulders = (y > 0.62 * HEIGHT) & (np.abs(x - cx) < 0.2 * WIDTH + (y - 0.62 * HEIGHT) * 0.6)
    neck = (np.abs(x - cx) < 0.04 * WIDTH) & (y > 0.5 * HEIGHT) & (y <= 0.64 * HEIGHT)
    head = ((x - cx) / (0.09 * WIDTH)) ** 2 + ((y - 0.36 * HEIGHT) / (0.2 * HEIGHT)) ** 2 <= 1
    image[shoulders] = CLOTHES
    image[neck | head] = SKIN
    return image


def write_y4m(path: Path, frames: int = FPS) -> Path:
    """The pattern as a Y4M file (4:2:0, BT.601 full range as Chromium reads it)."""
    rgb = pattern().astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 + (b - luma) * 0.564
    cr = 128 + (r - luma) * 0.713

    def half(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(1, 3))

    planes = [luma, half(cb), half(cr)]
    frame = b"".join(np.clip(p, 0, 255).round().astype(np.uint8).tobytes() for p in planes)
    header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + b"".join(b"FRAME\n" + frame for _ in range(frames)))
    return path


def region(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The pixels of `box` (fractions) of an H x W x 3 image."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    return image[int(y0 * height) : int(y1 * height), int(x0 * width) : int(x1 * width)]


def wall_stats(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean colour of the wall regions, and how much the colour varies across them (the
    stripes vary a lot; a blur or a plain picture hardly)."""
    pixels = np.concatenate([region(image, box).reshape(-1, 3) for box in WALL_REGIONS])
    pixels = pixels.astype(np.float32)
    return pixels.mean(axis=0), float(pixels.std(axis=0).mean())


def solid_png(rgb: tuple[int, int, int], width: int = 64, height: int = 36) -> bytes:
    """A PNG of one colour (one's own background picture in tests)."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
