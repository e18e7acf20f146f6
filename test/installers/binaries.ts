/**
 * What a Windows or macOS binary asks of the machine it lands on, read
 * without the OS that would load it: the DLLs a PE file imports, and the
 * minimum macOS a Mach-O file was built for. Hand-written because no
 * maintained npm package reads either (pe-library reads resources only,
 * electron-builder ships none); each is a walk over fixed-layout headers:
 * Microsoft's "PE Format" (import and delay-load directories) and Apple's
 * <mach-o/loader.h> (LC_BUILD_VERSION, LC_VERSION_MIN_MACOSX, fat headers).
 *
 *   peImports(bytes)      // { imports: ['KERNEL32.dll', …], delayed: ['DirectML.dll', …] }
 *   machoMinimumOs(bytes) // ['14.0.0'] (one per architecture slice)
 */

export function peImports(buf: Buffer): { imports: string[]; delayed: string[] } {
  const pe = buf.readUInt32LE(0x3c);
  if (buf.toString('latin1', pe, pe + 4) !== 'PE\0\0') throw new Error('not a PE file');
  const coff = pe + 4;
  const sectionCount = buf.readUInt16LE(coff + 2);
  const optionalSize = buf.readUInt16LE(coff + 16);
  const optional = coff + 20;
  // The data directories follow the PE32+ (0x20b) or PE32 optional header's fixed part.
  const directories = optional + (buf.readUInt16LE(optional) === 0x20b ? 112 : 96);
  const sections = Array.from({ length: sectionCount }, (_, i) => {
    const s = optional + optionalSize + i * 40;
    return { va: buf.readUInt32LE(s + 12), size: Math.max(buf.readUInt32LE(s + 8), buf.readUInt32LE(s + 16)), raw: buf.readUInt32LE(s + 20) };
  });
  const offset = (rva: number): number => {
    const s = sections.find((x) => rva >= x.va && rva < x.va + x.size);
    if (!s) throw new Error(`RVA ${rva} is in no section`);
    return rva - s.va + s.raw;
  };
  const name = (rva: number): string => {
    const at = offset(rva);
    return buf.toString('latin1', at, buf.indexOf(0, at));
  };
  // IMAGE_IMPORT_DESCRIPTOR: 20 bytes, the DLL name's RVA at +12, a zeroed one ends the table.
  const imports: string[] = [];
  const importTable = buf.readUInt32LE(directories + 1 * 8);
  if (importTable) for (let at = offset(importTable); buf.readUInt32LE(at + 12) !== 0; at += 20) imports.push(name(buf.readUInt32LE(at + 12)));
  // IMAGE_DELAYLOAD_DESCRIPTOR: 32 bytes, the DLL name's RVA at +4.
  const delayed: string[] = [];
  const delayTable = buf.readUInt32LE(directories + 13 * 8);
  if (delayTable) for (let at = offset(delayTable); buf.readUInt32LE(at + 4) !== 0; at += 32) delayed.push(name(buf.readUInt32LE(at + 4)));
  return { imports, delayed };
}

const FAT_MAGIC = 0xcafebabe;
const MH_MAGIC_64 = 0xfeedfacf;
const LC_VERSION_MIN_MACOSX = 0x24;
const LC_BUILD_VERSION = 0x32;
const PLATFORM_MACOS = 1;

export function machoMinimumOs(buf: Buffer): string[] {
  if (buf.readUInt32BE(0) === FAT_MAGIC) {
    // fat_header then fat_arch entries (big-endian): offset at +8, size at +12.
    return Array.from({ length: buf.readUInt32BE(4) }, (_, i) => {
      const arch = 8 + i * 20;
      const start = buf.readUInt32BE(arch + 8);
      return machoMinimumOs(buf.subarray(start, start + buf.readUInt32BE(arch + 12)));
    }).flat();
  }
  if (buf.readUInt32LE(0) !== MH_MAGIC_64) throw new Error('not a 64-bit Mach-O file');
  const versions: string[] = [];
  // mach_header_64 is 32 bytes; each load command starts with its cmd and cmdsize.
  for (let i = 0, at = 32; i < buf.readUInt32LE(16); i++, at += buf.readUInt32LE(at + 4)) {
    const cmd = buf.readUInt32LE(at);
    if (cmd === LC_BUILD_VERSION && buf.readUInt32LE(at + 8) === PLATFORM_MACOS) versions.push(nibbles(buf.readUInt32LE(at + 12)));
    if (cmd === LC_VERSION_MIN_MACOSX) versions.push(nibbles(buf.readUInt32LE(at + 8)));
  }
  return versions;
}

/** xxxx.yy.zz packed in a 32-bit number. */
function nibbles(v: number): string {
  return `${v >>> 16}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

/** Compares dotted versions numerically: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}
