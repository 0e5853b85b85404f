/** Width, height and format read from an encoded image's header, without decoding it. */
export interface ImageSize {
  width: number;
  height: number;
  format: "png" | "jpeg" | "gif" | "webp" | "bmp";
}

/**
 * Reads the size from PNG, JPEG, GIF, WebP (lossy, lossless, extended) and BMP
 * headers; null when the bytes are none of these or are cut short. Lets filters
 * drop images by size on the main thread before anything is decoded.
 */
export function imageSize(b: Uint8Array): ImageSize | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = b.length;
  // PNG: signature, then IHDR with big-endian width/height.
  if (n >= 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    return { width: dv.getUint32(16), height: dv.getUint32(20), format: "png" };
  }
  // GIF87a/89a: little-endian logical screen size.
  if (n >= 10 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) {
    return { width: dv.getUint16(6, true), height: dv.getUint16(8, true), format: "gif" };
  }
  // BMP: BITMAPINFOHEADER width/height (height negative for top-down).
  if (n >= 26 && b[0] === 0x42 && b[1] === 0x4d) {
    return { width: Math.abs(dv.getInt32(18, true)), height: Math.abs(dv.getInt32(22, true)), format: "bmp" };
  }
  // WebP: RIFF....WEBP then VP8 / VP8L / VP8X.
  if (n >= 30 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 12) === "WEBP") {
    const chunk = ascii(b, 12, 16);
    if (chunk === "VP8 ")
      return {
        width: dv.getUint16(26, true) & 0x3fff,
        height: dv.getUint16(28, true) & 0x3fff,
        format: "webp",
      };
    if (chunk === "VP8L") {
      const bits = dv.getUint32(21, true);
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1, format: "webp" };
    }
    if (chunk === "VP8X") {
      const w = 1 + (b[24] | (b[25] << 8) | (b[26] << 16));
      const h = 1 + (b[27] | (b[28] << 8) | (b[29] << 16));
      return { width: w, height: h, format: "webp" };
    }
    return null;
  }
  // JPEG: walk segments to the first start-of-frame marker.
  if (n >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 9 < n) {
      if (b[i] !== 0xff) return null;
      const marker = b[i + 1];
      if (marker === 0xff) {
        i++; // fill byte
        continue;
      }
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        i += 2; // markers without a length
        continue;
      }
      const len = dv.getUint16(i + 2);
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) return { width: dv.getUint16(i + 7), height: dv.getUint16(i + 5), format: "jpeg" };
      i += 2 + len;
    }
    return null;
  }
  return null;
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}
