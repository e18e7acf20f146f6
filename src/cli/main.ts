/**
 * `gogrid`: the one command for coordinators, workers and their admins.
 *
 *   gogrid local                                   # everything in one process
 *   gogrid coordinator --config coordinator.toml --data /var/lib/gogrid
 *   gogrid token create --data /var/lib/gogrid     # prints only the token
 *   gogrid worker --coordinator grid.example.com:8443 --token gg1.…
 *   gogrid workers --json
 */
import { CommanderError } from 'commander';
import { failAndExit } from './output.js';
import { buildProgram } from './program.js';

buildProgram()
  .parseAsync(process.argv)
  .catch((e: unknown) => {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    failAndExit(e);
  });
