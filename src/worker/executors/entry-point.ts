/**
 * How to fork one of this folder's process entry points (job-process,
 * llm-probe-process, runtime-probe-process, gpu-probe-process): from dist/ with plain node; run from TypeScript source
 * (tests, tsx), the child needs tsx too.
 *
 *   const { file, execArgv } = entryPoint('job-process');
 *   fork(file, [], { execArgv, … });
 */
import { fileURLToPath } from 'node:url';

const FROM_SOURCE = import.meta.url.endsWith('.ts');

export function entryPoint(name: 'job-process' | 'llm-probe-process' | 'runtime-probe-process' | 'gpu-probe-process'): { file: string; execArgv: string[] } {
  return {
    file: fileURLToPath(new URL(`./${name}.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url)),
    execArgv: FROM_SOURCE ? ['--import', 'tsx'] : [],
  };
}
