"""Decoding uploads into upright 8-bit RGB (Pillow, no models)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from models.decode import (
    EmptyImage,
    ImageTooLarge,
    NotAnImage,
    UndecodableImage,
    decode_image,
)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_errors_carry_status_and_code():
    with pytest.raises(EmptyImage) as e:
        decode_image(b"")
    assert (e.value.status, e.value.code) == (400, "empty_file")
    with pytest.raises(NotAnImage) as e:
        decode_image(b"plain text")
    assert (e.value.status, e.value.code) == (415, "not_an_image")
    big = encode(Image.new("L", (300, 200)), "PNG")
    with pytest.raises(ImageTooLarge) as e:
        decode_image(big, max_pixels=300 * 200 - 1)
    assert (e.value.status, e.value.code) == (413, "image_too_large")
    assert decode_image(big, max_pixels=300 * 200).shape == (200, 300, 3)


def test_modes_become_rgb():
    assert decode_image(encode(Image.new("L", (4, 3), 200), "PNG"))[0, 0].tolist() == [200] * 3
    i16 = Image.fromarray(np.full((3, 4), 65535, np.uint16))
    assert decode_image(encode(i16, "PNG"))[0, 0].tolist() == [255] * 3
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    red = decode_image(encode(cmyk, "JPEG", quality=100))[2, 2]
    assert red[0] > 240 and red[1] < 20 and red[2] < 20
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # fully transparent -> white
    assert decode_image(encode(rgba, "PNG"))[0, 0].tolist() == [255, 255, 255]
    pal = Image.new("P", (4, 4), 3)
    pal.putpalette([0, 0, 0, 10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * 756)
    assert decode_image(encode(pal, "GIF"))[0, 0].tolist() == [70, 80, 90]
    bw = Image.new("1", (4, 4), 1)
    assert decode_image(encode(bw, "PNG"))[0, 0].tolist() == [255] * 3


def test_exif_orientation_is_applied():
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :10] = 255  # white band on the left of a landscape image
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    out = decode_image(encode(img, "JPEG", exif=exif.tobytes(), quality=100))
    assert out.shape == (40, 20, 3)
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # the band is now on top


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out = decode_image(buf.getvalue())
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 50


def test_garbage_after_a_png_signature_is_422():
    with pytest.raises(UndecodableImage):
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_opencv_path_equals_pillow(fmt: str, orientation: int) -> None:
    from models.decode import _decode_pixels, _decode_with_opencv

    rgb = np.random.default_rng(orientation).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(rgb), fmt, exif=exif.tobytes(), quality=95)
    fast = _decode_with_opencv(Image.open(io.BytesIO(data)), data)
    assert fast is not None  # plain JPEG / still opaque WebP take the OpenCV path
    reference = _decode_pixels(Image.open(io.BytesIO(data)), 10**6)
    assert fast.flags.c_contiguous
    np.testing.assert_array_equal(fast, reference)
    np.testing.assert_array_equal(decode_image(data), reference)
