/**
 * How to fork one of this folder's process entry points (job-process,
 * llm-probe-process, runtime-probe-process, gpu-probe-process): from dist/ with plain node; run from TypeScript source
 * (tsx), the child needs tsx too, unless GOGRID_CHILDREN_FROM_DIST=1 says
 * dist/ is built from these very sources (the test suite makes sure of it:
 * test/helpers/build-dist.ts) and the children start from there, without
 * tsx's half second.
 *
 *   const { file, execArgv } = entryPoint('job-process');
 *   fork(file, [], { execArgv, … });
 */
import { fileURLToPath } from 'node:url';

const FROM_SOURCE = import.meta.url.endsWith('.ts');

/** Read at each fork: a test may switch it (test executors live in the sources' registry only). */
export function entryPoint(name: 'job-process' | 'llm-probe-process' | 'runtime-probe-process' | 'gpu-probe-process'): { file: string; execArgv: string[] } {
  const TSX = FROM_SOURCE && process.env.GOGRID_CHILDREN_FROM_DIST !== '1';
  if (FROM_SOURCE && !TSX) return { file: fileURLToPath(new URL(`../../../dist/worker/executors/${name}.js`, import.meta.url)), execArgv: [] };
  return {
    file: fileURLToPath(new URL(`./${name}.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url)),
    execArgv: TSX ? ['--import', 'tsx'] : [],
  };
}
