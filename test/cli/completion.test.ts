/**
 * `gogrid completion bash|zsh|fish`: each script passes its shell's syntax
 * check, and bash and fish complete real command lines with it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commandSpecs, completionScript, SHELLS } from '../../src/cli/completion.js';
import { buildProgram } from '../../src/cli/program.js';

const program = buildProgram();
/** The scripts checked, and the folder fish completes in (no file there starts like a command word). */
const scratch = mkdtempSync(join(tmpdir(), 'gogrid-completion-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const has = (shell: string) => spawnSync('sh', ['-c', `command -v ${shell}`], { stdio: 'ignore', timeout: 10_000 }).status === 0;
/** A shell missing on a developer's machine skips its checks; in CI (.ci/run installs all three) it fails. */
const available = (shell: string) => has(shell) || process.env['CI'] !== undefined;

/** What bash offers for `line` (the word being typed last), through the script's own function. */
function bashCompletes(line: string): string[] {
  const words = line.split(' ');
  const script = `${completionScript('bash', program)}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _gogrid; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync('bash', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  expect(result.stderr).toBe('');
  return result.stdout.split('\n').filter(Boolean);
}

function fishCompletes(line: string): string[] {
  // fish offers file names beside the words (a model or input file may come next): none match here.
  const result = spawnSync('fish', ['--no-config', '-c', `${completionScript('fish', program)}\ncomplete -C '${line}'`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000, cwd: scratch });
  expect(result.stderr).toBe('');
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t')[0]!);
}

describe('gogrid completion', () => {
  it.each(SHELLS)('%s: passes the shell\'s syntax check', (shell) => {
    if (!available(shell)) return void console.warn(`skipped: ${shell} is not installed here`);
    const file = join(scratch, `gogrid.${shell}`);
    writeFileSync(file, completionScript(shell, program));
    const result = spawnSync(shell, ['-n', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('covers every command of the tree, help excepted', () => {
    const paths = commandSpecs(program).map((s) => s.path.join(' '));
    expect(paths).toEqual(expect.arrayContaining(['', 'worker status', 'workers policy', 'models add', 'token create', 'completion']));
    expect(paths.some((p) => p.endsWith('help'))).toBe(false);
  });

  it.runIf(available('bash'))('bash: completes commands, subcommands and options where they are typed', () => {
    expect(bashCompletes('gogrid wor')).toEqual(['worker', 'workers']);
    expect(bashCompletes('gogrid workers p')).toEqual(['pause', 'policy']);
    expect(bashCompletes('gogrid worker s')).toEqual(['snooze', 'status']);
    // An option's value between the words does not lose the command.
    expect(bashCompletes('gogrid jobs --state running --li')).toEqual(['--limit']);
    expect(bashCompletes('gogrid submit --model m.onnx --gpu-f')).toEqual(['--gpu-fallback']);
    // A word that is no command does not move on: the top level's options.
    expect(bashCompletes('gogrid nosuch --')).toEqual(['--version', '--help']);
  });

  it.runIf(available('fish'))('fish: completes commands, subcommands and options where they are typed', () => {
    expect(fishCompletes('gogrid wor')).toEqual(['worker', 'workers']);
    expect(fishCompletes('gogrid workers p')).toEqual(['pause', 'policy']);
    expect(fishCompletes('gogrid models add --')).toEqual(expect.arrayContaining(['--name', '--help']));
  });

  it('refuses a shell it has no script for, in one line', () => {
    const result = spawnSync(process.execPath, ['bin/gogrid.js', 'completion', 'powershell'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe('gogrid: GG_ERR_BAD_REQUEST: no completion for "powershell": choose bash, zsh, fish\n');
  });
});
