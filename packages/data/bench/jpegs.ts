// Synthetic photo-like JPEGs for the benchmark: smooth gradients plus noise, so the encoder
// works about as hard as on a photograph.
import sharp from "sharp";

export async function makeJpegs(
  count: number,
  width: number,
  height: number,
  quality = 90,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let n = 0; n < count; n++) {
    const raw = Buffer.alloc(width * height * 3);
    let s = (n + 1) * 2654435761;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        const noise = (s >>> 26) - 32;
        const i = (y * width + x) * 3;
        raw[i] = Math.max(0, Math.min(255, ((x * 255) / width + n * 17 + noise) & 255));
        raw[i + 1] = Math.max(0, Math.min(255, (y * 255) / height + noise));
        raw[i + 2] = Math.max(0, Math.min(255, 128 + 100 * Math.sin((x + y + n * 13) / 37) + noise));
      }
    }
    out.push(
      new Uint8Array(
        await sharp(raw, { raw: { width, height, channels: 3 } })
          .jpeg({ quality })
          .toBuffer(),
      ),
    );
  }
  return out;
}
