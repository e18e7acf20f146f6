/**
 * `gogrid completion bash|zsh|fish`: shell completion for every command,
 * subcommand and long option, written from the command tree itself
 * (program.ts), so it cannot drift from the commands. Hand-written because
 * commander has no completion of its own and the packages that add it
 * (omelette, tabtab) install hooks into the user's shell files; this prints a
 * script and the user decides where it goes.
 *
 *   eval "$(gogrid completion bash)"                       # ~/.bashrc
 *   gogrid completion zsh > "${fpath[1]}/_gogrid"           # or eval in ~/.zshrc
 *   gogrid completion fish > ~/.config/fish/completions/gogrid.fish
 */
import type { Command } from 'commander';
import { GridError } from '../protocol/index.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** One command: the words that lead to it, what may follow it. */
export interface CommandSpec {
  path: string[];
  subcommands: string[];
  options: string[];
}

export function commandSpecs(program: Command): CommandSpec[] {
  const specs: CommandSpec[] = [];
  const visit = (cmd: Command, path: string[]) => {
    const subs = cmd.commands.filter((c) => c.name() !== 'help');
    const options = [...cmd.options.map((o) => o.long).filter((l): l is string => l !== undefined), '--help'];
    specs.push({ path, subcommands: subs.map((c) => c.name()), options });
    for (const sub of subs) visit(sub, [...path, sub.name()]);
  };
  visit(program, []);
  return specs;
}

/** Command and option names are ours ([a-z-]); anything else would need quoting, so refuse it here. */
function words(list: string[]): string {
  for (const w of list) if (!/^-{0,2}[a-z][a-z0-9-]*$/.test(w)) throw new Error(`completion: ${JSON.stringify(w)} is not a plain command or option name`);
  return list.join(' ');
}

function bash(specs: CommandSpec[]): string {
  const key = (path: string[]) => path.join(' ');
  const paths = specs.filter((s) => s.path.length > 0).map((s) => `"${key(s.path)}"`);
  const cases = specs.map((s) => `    "${key(s.path)}") candidates="${words([...s.subcommands, ...s.options])}" ;;`);
  // Variable names zsh does not reserve (path, words are special there; zsh runs this through bashcompinit),
  // and nothing newer than bash 3.2 (macOS's).
  return [
    '# gogrid completion for bash (and zsh through bashcompinit): eval "$(gogrid completion bash)"',
    '_gogrid() {',
    '  local cur=${COMP_WORDS[COMP_CWORD]} cmd="" next candidates i',
    '  # The command so far: each word that extends a known command (options and their values are skipped).',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    next="${cmd:+$cmd }${COMP_WORDS[i]}"',
    `    case "$next" in`,
    `      ${paths.join(' | ')}) cmd=$next ;;`,
    '    esac',
    '  done',
    '  case "$cmd" in',
    ...cases,
    '    *) candidates="" ;;',
    '  esac',
    '  # shellcheck disable=SC2207 # the words are plain names, split on purpose',
    '  COMPREPLY=($(compgen -W "$candidates" -- "$cur"))',
    '}',
    // -o default: file names where no word fits (--model FILE, --input FILE).
    'complete -o default -F _gogrid gogrid',
    '',
  ].join('\n');
}

function zsh(specs: CommandSpec[]): string {
  return ['#compdef gogrid', '# gogrid completion for zsh: eval "$(gogrid completion zsh)", or save it as _gogrid in a folder on $fpath', 'autoload -U +X bashcompinit && bashcompinit', bash(specs)].join('\n');
}

function fish(specs: CommandSpec[]): string {
  const lines = ['# gogrid completion for fish: gogrid completion fish > ~/.config/fish/completions/gogrid.fish'];
  for (const s of specs) {
    // At the program's top level no subcommand is there yet; deeper, every word of the path is.
    const at = s.path.length === 0 ? '__fish_use_subcommand' : s.path.map((p) => `__fish_seen_subcommand_from ${words([p])}`).join('; and ');
    const deeper = s.subcommands.length > 0 && s.path.length > 0 ? `; and not __fish_seen_subcommand_from ${words(s.subcommands)}` : '';
    if (s.subcommands.length > 0) lines.push(`complete -c gogrid -n '${at}${deeper}' -a '${words(s.subcommands)}'`);
    for (const o of s.options) lines.push(`complete -c gogrid -n '${at}' -l ${words([o.replace(/^--/, '')])}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The `<shell>` argument, checked: a name the user typed, quoted back if it is none of ours. */
export function parseShell(text: string): Shell {
  if ((SHELLS as readonly string[]).includes(text)) return text as Shell;
  throw new GridError('GG_ERR_BAD_REQUEST', `no completion for ${JSON.stringify(text)}: choose ${SHELLS.join(', ')}`);
}

export function completionScript(shell: Shell, program: Command): string {
  const specs = commandSpecs(program);
  return shell === 'bash' ? bash(specs) : shell === 'zsh' ? zsh(specs) : fish(specs);
}
