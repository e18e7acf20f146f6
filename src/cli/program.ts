/**
 * The `gogrid` command tree, apart from running it (main.ts), so tests can
 * read every command's help without starting a process per command.
 *
 *   buildProgram().commands.map((c) => c.name());   // ['local', 'coordinator', 'worker', …]
 */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { registerAdminCommands } from './admin-commands.js';
import { registerServeCommands } from './serve-commands.js';
import { registerJobCommands } from './job-commands.js';
import { registerModelCommands } from './model-commands.js';
import { registerWorkerCommands } from './worker-commands.js';
import { failAndExit, setPrettyJson } from './output.js';
import { completionScript, parseShell, SHELLS } from './completion.js';
import { addExamples } from './examples.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    // Open handles of a finished one-shot command (sockets in keep-alive,
    // systeminformation's child processes) must not keep the CLI alive; but
    // stdout to a pipe is written asynchronously, and exiting at once cut
    // `gogrid jobs --json | …` off at the pipe's 64 KiB.
    await flushed(process.stdout);
    process.exit(0);
  } catch (e) {
    failAndExit(e);
  }
}

/** Resolves once everything written to `stream` so far has reached the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

export function buildProgram(): Command {
  const program = new Command('gogrid')
    .description('GoGrid: a private compute grid for AI inference on idle machines')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions();
  registerServeCommands(program, pkg.version, run);
  registerWorkerCommands(program, run);
  registerAdminCommands(program, run);
  registerJobCommands(program, run);
  registerModelCommands(program, run);
  program
    .command('completion')
    .description('print a shell completion script: eval "$(gogrid completion bash)", or see --help')
    .argument('<shell>', SHELLS.join(' | '))
    .action((shell: string) =>
      run(async () => {
        process.stdout.write(completionScript(parseShell(shell), program));
      }),
    );
  // Every command that prints JSON can indent it.
  const withPretty = (cmd: Command) => {
    if (cmd.options.some((o) => o.long === '--json')) cmd.option('--pretty', 'indent JSON output (compact by default: one line)');
    cmd.commands.forEach(withPretty);
  };
  withPretty(program);
  addExamples(program);
  program.hook('preAction', (_program, action) => setPrettyJson(action.opts()['pretty'] === true));
  return program;
}
