/**
 * The examples every command's --help ends with, in one place so they are
 * kept together and a test can check that each command has some and that
 * each one parses (test/cli/help.test.ts).
 *
 *   addExamples(program);   // after every command is registered
 */
import type { Command } from 'commander';

/** By command path ("workers pause"); each line a command a person could paste, a comment after `#` where it helps. */
export const EXAMPLES: Record<string, readonly string[]> = {
  coordinator: ['gogrid coordinator --config coordinator.toml --data /var/lib/gogrid', 'gogrid coordinator --port 8443 --database postgres://gogrid@db/gogrid'],
  worker: [
    'gogrid worker --coordinator grid.example.com:8443 --token-file token.txt   # enroll once',
    'gogrid worker                                # later: the stored identity',
    'gogrid worker --slots 2 --label gpu --transport tcp',
  ],
  'worker pause': ['gogrid worker pause', 'gogrid worker pause --data ~/gogrid-worker'],
  'worker snooze': ['gogrid worker snooze 2h', 'gogrid worker snooze until 15:20'],
  'worker finish': ['gogrid worker finish'],
  'worker resume': ['gogrid worker resume'],
  'worker status': ['gogrid worker status', 'gogrid worker status --json'],
  local: ['gogrid local', 'gogrid local --data ~/gogrid-local --port 8443   # keep its files between runs'],
  token: ['gogrid token create --ttl 24h --uses 10', 'gogrid token list'],
  'token create': ['gogrid token create --ttl 24h --uses 10 --description "lab PCs" > token.txt'],
  'token list': ['gogrid token list', 'gogrid token list -o json'],
  'token revoke': ['gogrid token revoke k3x9a2m4'],
  keys: ['gogrid keys create --name ci --scope inference', 'gogrid keys list'],
  'keys create': ['gogrid keys create --name prometheus --scope metrics > prometheus.key', 'gogrid keys create --name ci --scope inference'],
  'keys list': ['gogrid keys list', 'gogrid keys list -o yaml'],
  'keys revoke': ['gogrid keys revoke key-0123abcd'],
  workers: ['gogrid workers', 'gogrid workers --wide', 'gogrid workers -o json | jq ".[] | select(.transport == \\"tcp\\")"'],
  'workers revoke': ['gogrid workers revoke w-5f5c5e43150a3238'],
  'workers pause': ['gogrid workers pause w-5f5c5e43150a3238 --message "disk swap, back at 14:00"', 'gogrid workers pause --all'],
  'workers resume': ['gogrid workers resume w-5f5c5e43150a3238', 'gogrid workers resume --all'],
  'workers policy': ['gogrid workers policy --all --preset desktop', 'gogrid workers policy w-5f5c5e43150a3238 --max-cores 4 --gpu off', 'gogrid workers policy w-5f5c5e43150a3238'],
  submit: [
    'gogrid submit --model mlp.onnx --input input.json --wait',
    'gogrid submit --model mlp --input - --priority 5 < input.json',
    'gogrid submit --batch jobs.jsonl --model mlp --results out/',
  ],
  job: ['gogrid job j-0123abcd', 'gogrid job j-0123abcd --output y.json', 'gogrid job j-0123abcd --output y.f32 --raw y'],
  jobs: ['gogrid jobs', 'gogrid jobs --state failed --limit 20', 'gogrid jobs --wide', 'gogrid jobs -o json'],
  cancel: ['gogrid cancel j-0123abcd'],
  models: ['gogrid models', 'gogrid models add resnet50.onnx --name resnet'],
  'models add': ['gogrid models add resnet50.onnx', 'gogrid models add llama-3.2-1b-q4.gguf --name llama --alias gpt-4o-mini'],
  'models rename': ['gogrid models rename resnet50 resnet'],
  'models alias': ['gogrid models alias llama gpt-4o-mini'],
  'models unalias': ['gogrid models unalias gpt-4o-mini'],
  completion: [
    'eval "$(gogrid completion bash)"          # in ~/.bashrc',
    'eval "$(gogrid completion zsh)"           # in ~/.zshrc',
    'gogrid completion fish > ~/.config/fish/completions/gogrid.fish',
  ],
};

/** The path of a command below the program: "workers pause". */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Appends each command's examples to its --help. */
export function addExamples(program: Command): void {
  const walk = (cmd: Command) => {
    for (const sub of cmd.commands) {
      const examples = EXAMPLES[commandPath(sub)];
      if (examples) sub.addHelpText('after', ['', 'Examples:', ...examples.map((e) => `  ${e}`)].join('\n'));
      walk(sub);
    }
  };
  walk(program);
}
