"""Every pixel format PIL opens is decoded with the right scaling or refused by name (lead_hsr.data.images)."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lead_hsr.data.images import decode_rgb, load_rgb
from lead_hsr.errors import InputError

RNG = np.random.default_rng(0)
RGB8 = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
GREY8 = RGB8[..., 0]


def encode(image: Image.Image, fmt="PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_rgb16(array: np.ndarray) -> bytes:
    """A 48-bit RGB PNG written by hand (PIL cannot write one): IHDR bit depth 16, colour type 2."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    height, width, _ = array.shape
    rows = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def icc_matrix_trc(description: str, gamma: float) -> bytes:
    """A minimal ICC v2 RGB display profile: sRGB primaries (D50-adapted), one power-law curve `gamma`."""
    def s15(value):
        return struct.pack(">i", round(value * 65536))

    def xyz(x, y, z):
        return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)
    text = description.encode() + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + struct.pack(">IIHB", 0, 0, 0, 0) + b"\0" * 67
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
            (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)), (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve), (b"cprt", b"text\0\0\0\0none\0\0\0\0")]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acspAPPL" + b"\0" * 24 + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB transfer function (independent reference for the ICC conversion)."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


# ---- accepted, with the right values ----

def test_8bit_rgb_and_grey_are_exact():
    assert np.array_equal(decode_rgb(encode(Image.fromarray(RGB8)), "a.png"), RGB8)
    assert np.array_equal(decode_rgb(encode(Image.fromarray(GREY8)), "a.png"), np.repeat(GREY8[..., None], 3, 2))


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_grey_keeps_its_high_byte_not_clipped_white(fmt):
    sixteen = GREY8.astype(np.uint16) * 257  # an 8-bit picture stored as 16 bits
    image = Image.fromarray(sixteen)
    assert image.mode.startswith("I;16")
    decoded = decode_rgb(encode(image, fmt), f"a.{fmt.lower()}")
    assert np.array_equal(decoded, np.repeat(GREY8[..., None], 3, 2))  # PIL's convert("RGB") gives all 255


def test_48bit_rgb_png_matches_its_8bit_content():
    assert np.array_equal(decode_rgb(png_rgb16(RGB8.astype(np.uint16) * 257), "a.png"), RGB8)


def test_16bit_grey_and_16bit_rgb_use_the_same_rule():
    values = np.array([[0, 255, 256, 32767, 32768, 65280, 65535]], dtype=np.uint16)
    grey = decode_rgb(encode(Image.fromarray(values)), "g.png")[..., 0]
    rgb = decode_rgb(png_rgb16(np.repeat(values[..., None], 3, 2)), "c.png")[..., 0]
    assert np.array_equal(grey, rgb) and grey.tolist() == [[0, 0, 1, 127, 128, 255, 255]]


def test_bilevel_is_0_or_255():
    bits = GREY8 > 127
    decoded = decode_rgb(encode(Image.fromarray(bits)), "a.png")
    assert np.array_equal(decoded[..., 0], np.where(bits, 255, 0))


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP"])
def test_palette_without_transparency_is_its_palette_colours(fmt):
    palette_image = Image.fromarray(RGB8).quantize(16)
    expected = np.asarray(palette_image.convert("RGB"))
    assert np.array_equal(decode_rgb(encode(palette_image, fmt), f"a.{fmt.lower()}"), expected)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_opaque_alpha_is_dropped(mode):
    image = Image.fromarray(RGB8).convert(mode)
    image.putalpha(255)
    assert np.array_equal(decode_rgb(encode(image), "a.png"), np.asarray(image.convert("RGB")))


def test_cmyk_jpeg_without_profile_uses_pil_formula_and_tiff_too():
    cmyk = Image.fromarray(RGB8).convert("CMYK")
    from_tiff = decode_rgb(encode(cmyk, "TIFF"), "a.tif")
    assert np.array_equal(from_tiff, np.asarray(cmyk.convert("RGB")))
    from_jpeg = decode_rgb(encode(cmyk, "JPEG", quality=100), "a.jpg")
    assert np.abs(from_jpeg.astype(int) - RGB8).mean() < 8  # JPEG loss only


def test_ycbcr_jpeg_decodes_to_rgb():
    decoded = decode_rgb(encode(Image.fromarray(RGB8), "JPEG", quality=100, subsampling=0), "a.jpg")
    assert np.abs(decoded.astype(int) - RGB8).mean() < 3


def test_lab_tiff_converts_to_srgb():
    lab = Image.new("LAB", (3, 2), (255, 128, 128))  # L* = 100, a* = b* = 0: white
    decoded = decode_rgb(encode(lab, "TIFF"), "a.tif")
    assert decoded.min() >= 250
    black = decode_rgb(encode(Image.new("LAB", (3, 2), (0, 128, 128)), "TIFF"), "b.tif")
    assert black.max() <= 5


def test_non_srgb_icc_profile_is_converted():
    linear = icc_matrix_trc("linear-light test RGB", 1.0)
    grey = np.full((2, 2, 3), 128, np.uint8)
    decoded = decode_rgb(encode(Image.fromarray(grey), icc_profile=linear), "a.png")
    expected = round(float(srgb_encode(np.array(128 / 255))) * 255)  # 188: a linear 0.5 is light in sRGB
    assert np.all(np.abs(decoded.astype(int) - expected) <= 1)


def test_palette_image_with_an_icc_profile_is_converted_too():
    linear = icc_matrix_trc("linear-light test RGB", 1.0)
    palette = Image.fromarray(np.full((2, 2, 3), 128, np.uint8)).quantize(4)
    decoded = decode_rgb(encode(palette, icc_profile=linear), "a.png")
    assert np.all(np.abs(decoded.astype(int) - 188) <= 1)


def test_srgb_tagged_image_is_untouched():
    from PIL import ImageCms
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert np.array_equal(decode_rgb(encode(Image.fromarray(RGB8), icc_profile=srgb), "a.png"), RGB8)


# ---- refused by name ----

def refused(data, name="bad.img"):
    with pytest.raises(InputError) as caught:
        decode_rgb(data, name)
    assert str(caught.value).startswith(f"{name}: ") and "Fix:" in str(caught.value)
    return str(caught.value)


def test_empty_file_says_the_file_is_empty():
    message = refused(b"")
    assert "the file is empty" in message and "BytesIO" not in message


def test_unknown_format_names_the_bytes_not_an_internal_object():
    message = refused(b"hello, not an image")
    assert "not an image format" in message and "BytesIO" not in message


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_is_refused(mode):
    image = Image.fromarray(RGB8).convert(mode)
    alpha = np.full(GREY8.shape, 255, np.uint8)
    alpha[0, 0] = 0
    image.putalpha(Image.fromarray(alpha))
    assert "transparent pixel" in refused(encode(image))


def test_palette_with_transparent_colour_is_refused():
    palette_image = Image.fromarray(RGB8).quantize(16)
    index = palette_image.getpixel((0, 0))
    assert "transparent pixel" in refused(encode(palette_image, transparency=index))


def test_32bit_int_and_float_tiffs_are_refused_by_mode():
    assert "'I'" in refused(encode(Image.fromarray(GREY8.astype(np.int32) * 1000), "TIFF"))
    assert "'F'" in refused(encode(Image.fromarray(GREY8.astype(np.float32) / 255), "TIFF"))


def test_animation_is_refused():
    frames = [Image.fromarray(RGB8), Image.fromarray(255 - RGB8)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert "2 frames" in refused(data)


def test_truncated_and_flipped_bytes_are_refused():
    data = encode(Image.fromarray(np.tile(RGB8, (20, 20, 1))), "JPEG")
    refused(data[: len(data) // 2])
    png = bytearray(encode(Image.fromarray(RGB8)))
    png[40] ^= 0xFF  # inside IDAT: CRC mismatch
    refused(bytes(png))


def test_load_rgb_empty_file_on_disk(tmp_path):
    path = tmp_path / "000001.jpg"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"000001\.jpg: the file is empty"):
        load_rgb(path)
