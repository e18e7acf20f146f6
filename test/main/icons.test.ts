// The checked-in icons are exactly what scripts/make-icons.ts renders from
// assets/icon.svg, so the source image and the shipped files cannot drift.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeIcons, TRAY_STATES } from '../../scripts/make-icons.js';

const ASSETS = fileURLToPath(new URL('../../assets/', import.meta.url));
const out = await mkdtemp(join(tmpdir(), 'gogrid-icons-'));
afterAll(() => rm(out, { recursive: true, force: true }));

/** Width and height from a PNG's IHDR, after checking the signature. */
function pngSize(buf: Buffer): [number, number] {
  expect(buf.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  expect(buf.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
}

describe('icons', () => {
  it('regenerate byte for byte equal to the committed files, and nothing else is committed', async () => {
    const written = (await makeIcons(out)).sort();
    const committed = [
      ...(await readdir(join(ASSETS, 'tray'))).map((f) => `tray/${f}`),
      ...(await readdir(join(ASSETS, 'app'))).map((f) => `app/${f}`),
    ].sort();
    expect(committed).toEqual(written);
    for (const name of written) {
      const [fresh, checkedIn] = await Promise.all([readFile(join(out, name)), readFile(join(ASSETS, name))]);
      expect(fresh.equals(checkedIn), `${name} differs from what make-icons.ts renders: run npm run icons`).toBe(true);
    }
  });

  it('come in every state and size each platform needs', async () => {
    for (const state of TRAY_STATES) {
      for (const [file, px] of [
        [`${state}-16.png`, 16],
        [`${state}-16@2x.png`, 32],
        [`${state}-32.png`, 32],
        [`${state}-32@2x.png`, 64],
        [`${state}Template.png`, 16],
        [`${state}Template@2x.png`, 32],
      ] as const) {
        expect(pngSize(await readFile(join(ASSETS, 'tray', file))), file).toEqual([px, px]);
      }
    }
    expect(pngSize(await readFile(join(ASSETS, 'app', 'icon-512.png')))).toEqual([512, 512]);
    expect(pngSize(await readFile(join(ASSETS, 'app', 'icon-1024.png')))).toEqual([1024, 1024]);
  });

  it('make macOS template images of black and alpha only', async () => {
    const { Resvg } = await import('@resvg/resvg-js');
    for (const state of TRAY_STATES) {
      // Decode through resvg: an <image> of the PNG, rendered at its own size, gives back its pixels.
      const png = await readFile(join(ASSETS, 'tray', `${state}Template@2x.png`));
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><image width="32" height="32" href="data:image/png;base64,${png.toString('base64')}"/></svg>`;
      const pixels = new Resvg(svg).render().pixels;
      let opaque = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        if (pixels[i + 3] === 0) continue;
        opaque += 1;
        expect([pixels[i], pixels[i + 1], pixels[i + 2]], `${state} pixel ${i / 4}`).toEqual([0, 0, 0]);
      }
      expect(opaque, state).toBeGreaterThan(100);
    }
  });

  it('write a Windows .ico with the sizes up to 256 and a macOS .icns', async () => {
    const ico = await readFile(join(ASSETS, 'app', 'icon.ico'));
    expect(ico.readUInt16LE(0)).toBe(0);
    expect(ico.readUInt16LE(2)).toBe(1);
    const count = ico.readUInt16LE(4);
    // A directory entry's width byte: 0 means 256.
    const sizes = Array.from({ length: count }, (_, i) => ico[6 + i * 16] || 256).sort((a, b) => a - b);
    expect(sizes).toEqual(expect.arrayContaining([16, 32, 48, 256]));

    const icns = await readFile(join(ASSETS, 'app', 'icon.icns'));
    expect(icns.subarray(0, 4).toString('latin1')).toBe('icns');
    expect(icns.readUInt32BE(4)).toBe(icns.length);
  });
});
