"""Makes pillow-reference.{json,bin}: Pillow's own resize and decode results, for
resample.test.ts and decode.test.ts. Made with Debian 12's python3-pil 9.4.0 and numpy 1.24
(`apt-get install python3-pil python3-numpy`; run with /usr/bin/python3 from this folder).
Resample.c and the decoders' paths used here are unchanged between Pillow 9.4 and 11.
"""
import io
import json

import numpy as np
from PIL import Image, ImageOps

rng = np.random.default_rng(2024)
blob = bytearray()


def add(b):
    global blob
    off = len(blob)
    blob += bytes(b)
    return [off, len(b)]


FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS,
           "box": Image.BOX, "hamming": Image.HAMMING}


def pattern(h, w, noisy):
    if noisy:
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx * 37 + yy * 11) % 256], -1).astype(np.uint8)


resize = []
for t in range(40):
    w, h = int(rng.integers(1, 41)), int(rng.integers(1, 41))
    ow, oh = int(rng.integers(1, 49)), int(rng.integers(1, 49))
    if t % 5 == 0:
        ow = w  # horizontal pass skipped
    if t % 7 == 0:
        oh = h  # vertical pass skipped
    f = list(FILTERS)[t % 5] if t % 2 else "bilinear"
    arr = pattern(h, w, t % 3 == 0)
    out = np.asarray(Image.fromarray(arr).resize((ow, oh), FILTERS[f], reducing_gap=None))
    resize.append(dict(width=w, height=h, outWidth=ow, outHeight=oh, filter=f,
                       input=add(arr.tobytes()), output=add(out.tobytes())))

h, w = 23, 31
yy, xx = np.mgrid[0:h, 0:w]
rgb = np.stack([(xx * 8) % 256, (yy * 11) % 256, ((xx * yy) // 3) % 256], -1).astype(np.uint8)
rgba = np.concatenate([rgb, ((xx * 9 + yy * 5) % 256).astype(np.uint8)[..., None]], -1)
rgba[0, :4, 3] = [0, 255, 1, 254]

decode = []


def item(name, im, fmt, modes=("drop", "white"), **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    data = b.getvalue()
    entry = dict(name=name, file=add(data))
    for mode in modes:
        src = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        if mode == "drop":  # Idefics2Processor: load_image → convert("RGB")
            dec = src.convert("RGB")
        else:  # Idefics2ImageProcessor: convert_to_rgb
            rgba_ = src.convert("RGBA")
            bg = Image.new("RGBA", rgba_.size, (255, 255, 255))
            dec = Image.alpha_composite(bg, rgba_).convert("RGB")
        arr = np.asarray(dec)
        entry[mode] = dict(width=arr.shape[1], height=arr.shape[0], rgb=add(arr.tobytes()))
    decode.append(entry)


pal = Image.fromarray(rgb).quantize(48)
item("jpeg-444", Image.fromarray(rgb), "JPEG", quality=95, subsampling=0)
item("jpeg-420", Image.fromarray(rgb), "JPEG", quality=60, subsampling=2)
for o in [2, 3, 5, 6, 8]:
    im = Image.fromarray(rgb)
    ex = im.getexif()
    ex[0x0112] = o
    item(f"jpeg-exif-orientation-{o}", im, "JPEG", quality=90, exif=ex.tobytes())
item("png-rgba", Image.fromarray(rgba), "PNG")
item("png-l", Image.fromarray(rgb[..., 0]), "PNG")
item("png-la", Image.fromarray(rgba[..., [0, 3]], "LA"), "PNG")
item("png-p", pal, "PNG")
item("png-p-transparency", pal, "PNG", transparency=5)
item("webp-lossy", Image.fromarray(rgb), "WEBP", quality=80)
item("webp-lossless-rgba", Image.fromarray(rgba), "WEBP", lossless=True)
item("gif", pal, "GIF")
item("gif-animated", pal, "GIF", modes=("drop",), save_all=True,
     append_images=[Image.fromarray(255 - rgb).quantize(48)])

open("pillow-reference.bin", "wb").write(blob)
json.dump(dict(pillow=Image.__version__, resize=resize, decode=decode),
          open("pillow-reference.json", "w"), indent=0)
print(len(resize), len(decode), len(blob))
