/** pino-roll 4 ships no types; this is the part of its build() that log-file.ts uses (see its README). */
declare module 'pino-roll' {
  import type SonicBoom from 'sonic-boom';
  interface PinoRollOptions {
    file: string | (() => string);
    /** A number of MB, or a string with a unit: '512k', '10m', '1g'. */
    size?: number | string;
    frequency?: 'daily' | 'hourly' | number;
    extension?: string;
    mkdir?: boolean;
    limit?: { count?: number; removeOtherLogFiles?: boolean };
    /** SonicBoom's: write each line before the call returns. */
    sync?: boolean;
    /** SonicBoom's: the mode each new file is created with. */
    mode?: number;
  }
  export default function build(options: PinoRollOptions): Promise<SonicBoom>;
}
