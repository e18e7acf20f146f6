/**
 * Renders every icon the desktop app ships from the one source image,
 * assets/icon.svg, so no icon is drawn by hand and none can drift from it:
 *
 *   node --import tsx scripts/make-icons.ts            # rewrites assets/
 *   node --import tsx scripts/make-icons.ts /tmp/out   # somewhere else (the test compares)
 *
 * Out: the tray icon of each state (a badge on the bottom right tells the state
 * apart by shape and colour) as `tray/<state>-16.png` and `tray/<state>-32.png`
 * with their `@2x` twins (Electron picks `@2x` on high-DPI screens), the macOS
 * menu-bar template images `tray/<state>Template.png` (+`@2x`: black and alpha
 * only, so macOS tints them for light and dark menu bars; idle has no badge
 * there), and the app icon as `app/icon-512.png`, `app/icon-1024.png`,
 * `app/icon.ico` and `app/icon.icns`.
 */
import { Resvg } from '@resvg/resvg-js';
import png2icons from 'png2icons';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const TRAY_STATES = ['connecting', 'idle', 'working', 'paused', 'error'] as const;
export type TrayState = (typeof TRAY_STATES)[number];

const ASSETS = fileURLToPath(new URL('../assets/', import.meta.url));

/** Each badge's colour and its symbol, drawn inside a disc of radius 12 at (50, 50) on the 64-unit canvas. */
const BADGES: Record<TrayState, { colour: string; symbol: string }> = {
  connecting: { colour: '#6b7280', symbol: '<circle cx="50" cy="50" r="5.5" fill="none" stroke="#fff" stroke-width="3"/>' },
  idle: { colour: '#16a34a', symbol: '' },
  working: { colour: '#0ea5e9', symbol: '<path d="M46.5 43.5 L56.5 50 L46.5 56.5 Z" fill="#fff"/>' },
  paused: { colour: '#d97706', symbol: '<rect x="44.5" y="44" width="4" height="12" rx="1" fill="#fff"/><rect x="51.5" y="44" width="4" height="12" rx="1" fill="#fff"/>' },
  error: { colour: '#dc2626', symbol: '<rect x="48" y="42.5" width="4" height="9" rx="1.5" fill="#fff"/><circle cx="50" cy="56" r="2.2" fill="#fff"/>' },
};

/** The transparent gap around a badge, so it reads on any taskbar colour. */
const CUTOUT = '<mask id="cut"><rect width="64" height="64" fill="#fff"/><circle cx="50" cy="50" r="15.5" fill="#000"/></mask>';
/** Every colour to black, alpha kept: what macOS expects of a template image. */
const TO_BLACK = '<filter id="black"><feColorMatrix type="matrix" values="0 0 0 0 0  0 0 0 0 0  0 0 0 0 0  0 0 0 1 0"/></filter>';

interface Source {
  defs: string;
  tile: string;
  glyph: string;
}

function pick(svg: string, re: RegExp, what: string): string {
  const m = re.exec(svg);
  if (!m) throw new Error(`assets/icon.svg has no ${what}; make-icons.ts draws the tray icons from it`);
  return m[0];
}

function parseSource(svg: string): Source {
  return {
    defs: pick(svg, /<defs>[\s\S]*?<\/defs>/, '<defs>'),
    tile: pick(svg, /<rect id="tile"[^>]*\/>/, '<rect id="tile" …/>'),
    glyph: pick(svg, /<g id="glyph"[\s\S]*?<\/g>/, '<g id="glyph">…</g>'),
  };
}

const wrap = (body: string) => `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">${body}</svg>`;

function colourTray(src: Source, state: TrayState): string {
  const b = BADGES[state];
  return wrap(`${src.defs}<defs>${CUTOUT}</defs><g mask="url(#cut)">${src.tile}${src.glyph}</g><circle cx="50" cy="50" r="12" fill="${b.colour}"/>${b.symbol}`);
}

function templateTray(src: Source, state: TrayState): string {
  // Without the tile the glyph alone fills the menu-bar slot; the symbol is punched out of a black disc.
  const glyph = `<g transform="translate(32 32) scale(1.6) translate(-32 -32)">${src.glyph}</g>`;
  if (state === 'idle') return wrap(`<defs>${TO_BLACK}</defs><g filter="url(#black)">${glyph}</g>`);
  const symbolMask = `<mask id="symbol"><rect width="64" height="64" fill="#fff"/><g filter="url(#black)">${BADGES[state].symbol}</g></mask>`;
  return wrap(
    `<defs>${TO_BLACK}${CUTOUT}${symbolMask}</defs><g mask="url(#cut)" filter="url(#black)">${glyph}</g>` +
      `<circle cx="50" cy="50" r="12" fill="#000" mask="url(#symbol)"/>`,
  );
}

function render(svg: string, px: number): Buffer {
  return new Resvg(svg, { fitTo: { mode: 'width', value: px }, font: { loadSystemFonts: false } }).render().asPng();
}

/** Writes every icon under `outDir` (tray/ and app/); returns the paths written, relative to it. */
export async function makeIcons(outDir: string, sourceSvg = join(ASSETS, 'icon.svg')): Promise<string[]> {
  const svg = await readFile(sourceSvg, 'utf8');
  const src = parseSource(svg);
  const files = new Map<string, Buffer>();
  for (const state of TRAY_STATES) {
    const colour = colourTray(src, state);
    for (const size of [16, 32]) {
      files.set(`tray/${state}-${size}.png`, render(colour, size));
      files.set(`tray/${state}-${size}@2x.png`, render(colour, size * 2));
    }
    const template = templateTray(src, state);
    files.set(`tray/${state}Template.png`, render(template, 16));
    files.set(`tray/${state}Template@2x.png`, render(template, 32));
  }
  const app1024 = render(svg, 1024);
  files.set('app/icon-512.png', render(svg, 512));
  files.set('app/icon-1024.png', app1024);
  files.set('app/icon.ico', orThrow(png2icons.createICO(app1024, png2icons.BICUBIC, 0, true, true), 'icon.ico'));
  files.set('app/icon.icns', orThrow(png2icons.createICNS(app1024, png2icons.BICUBIC, 0), 'icon.icns'));

  await mkdir(join(outDir, 'tray'), { recursive: true });
  await mkdir(join(outDir, 'app'), { recursive: true });
  await Promise.all([...files].map(([name, bytes]) => writeFile(join(outDir, name), bytes)));
  return [...files.keys()];
}

function orThrow(buf: Buffer | null, name: string): Buffer {
  if (!buf) throw new Error(`png2icons could not make ${name}`);
  return buf;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = resolve(process.argv[2] ?? ASSETS);
  const written = await makeIcons(out);
  process.stdout.write(`wrote ${written.length} icons under ${out}\n`);
}
