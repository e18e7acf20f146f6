/**
 * Every command's --help ends with examples (cli/examples.ts), and every
 * example is a command line the CLI takes: its words reach a command, and
 * none of its options is unknown there.
 */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { commandPath, EXAMPLES } from '../../src/cli/examples.js';
import { buildProgram } from '../../src/cli/program.js';

function allCommands(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...allCommands(c)]);
}

/** A shell line's words up to a comment, pipe or redirection; quotes removed. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"((?:\\.|[^"])*)"|'([^']*)'|(\S+)/g)) {
    const word = m[1] ?? m[2] ?? m[3]!;
    if (m[3] !== undefined && /^(#|\||<|>)/.test(word)) break;
    out.push(word);
  }
  return out;
}

const program = buildProgram();
const commands = allCommands(program);

describe('examples in --help', () => {
  it('every command has some, and every example belongs to a command', () => {
    expect(commands.map(commandPath).filter((p) => !EXAMPLES[p])).toEqual([]);
    expect(Object.keys(EXAMPLES).filter((p) => !commands.some((c) => commandPath(c) === p))).toEqual([]);
  });

  it.each(commands.map((c) => [commandPath(c), c] as const))('%s: shown in its help, and each parses', (path, cmd) => {
    expect(cmd.helpInformation() + '\n' + captureAfterHelp(cmd)).toContain('Examples:');
    for (const example of EXAMPLES[path]!) {
      if (example.startsWith('eval ')) continue; // completion's own: the command inside is the same as the next line's
      const [gogrid, ...rest] = words(example);
      expect(gogrid, example).toBe('gogrid');
      let target: Command = program;
      while (rest.length > 0) {
        const sub = target.commands.find((c) => c.name() === rest[0]);
        if (!sub) break;
        target = sub;
        rest.shift();
      }
      // A group's examples may show its commands ("gogrid token create" under token).
      expect(`${commandPath(target)} `.startsWith(`${path} `), example).toBe(true);
      const { unknown } = target.parseOptions(rest);
      expect(unknown.filter((w) => w.startsWith('-')), example).toEqual([]);
    }
  });
});

/** What addHelpText('after') adds, which helpInformation() leaves out: commander writes it through outputHelp. */
function captureAfterHelp(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}
