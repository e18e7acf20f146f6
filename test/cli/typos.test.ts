/** Misspelt commands get commander's "Did you mean …?", in process (the command tree, not a CLI per case). */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';

/** Parses `args` with exits turned into errors; what went to stderr. */
async function stderrOf(args: string[]): Promise<string> {
  const program = buildProgram();
  let err = '';
  const quiet = (c: Command) => {
    c.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: () => {} });
    c.commands.forEach(quiet);
  };
  quiet(program);
  await expect(program.parseAsync(args, { from: 'user' })).rejects.toMatchObject({ exitCode: 1 });
  return err;
}

describe('typos', () => {
  it('`gogrid worker staus` is an unknown command with a suggestion, not "too many arguments" for the worker', async () => {
    const err = await stderrOf(['worker', 'staus']);
    expect(err).toContain("error: unknown command 'staus'");
    expect(err).toContain('(Did you mean status?)');
    expect(err).not.toContain('too many arguments');
  });

  it('suggests top-level commands and options as commander does', async () => {
    expect(await stderrOf(['submt'])).toContain('(Did you mean submit?)');
    expect(await stderrOf(['jobs', '--stat', 'x'])).toContain('(Did you mean --state?)');
  });
});
