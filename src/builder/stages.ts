// A build's plan, before anything runs: the Dockerfile's instructions grouped into stages by
// FROM, the global ARGs (those before the first FROM), the stage the build stops at (--target)
// and the number of steps it prints ("Step n/total").
import { invalid } from '../core/errors';
import type { Dockerfile, Instruction } from './dockerfile';
import { expandWords, parseArgs } from './expand';
import { PREDEFINED_ARGS } from './types';

export interface StagePlan {
  from: Instruction;
  steps: Instruction[];
}

export interface BuildPlan {
  /** the ARGs before the first FROM, with their values: what FROM lines see */
  globalArgs: Map<string, string>;
  /** the build args some ARG declared (the others are reported unused) */
  usedArgs: Set<string>;
  stages: StagePlan[];
  /** the index of the last stage built: the target, else the last one */
  last: number;
  /** the steps printed: FROM and the instructions of each stage built */
  total: number;
}

export type BuildArgs = Record<string, string | null>;

/** An ARG's value: the build arg given for it, else its default. */
export function buildArgValue(buildArgs: BuildArgs, name: string, dflt: string | undefined): string | undefined {
  if (Object.prototype.hasOwnProperty.call(buildArgs, name)) {
    const v = buildArgs[name];
    // --build-arg NAME without a value: the client's environment had none; the default stays
    return v === null ? dflt : v;
  }
  return dflt;
}

/** FROM <image> AS <name>: the name (as written, variables expanded). */
export function stageName(from: Instruction, args: Map<string, string>, escape: string): string | undefined {
  const words = expandWords(from.raw, args, escape);
  return words.length === 3 && words[1].toLowerCase() === 'as' ? words[2] : undefined;
}

export function planBuild(df: Dockerfile, buildArgs: BuildArgs, target: string | undefined): BuildPlan {
  const globalArgs = new Map<string, string>();
  const usedArgs = new Set<string>();
  const stages: StagePlan[] = [];
  for (const ins of df.instructions) {
    if (ins.cmd === 'FROM') stages.push({ from: ins, steps: [] });
    else if (stages.length) stages[stages.length - 1].steps.push(ins);
    else if (ins.cmd === 'ARG') {
      for (const a of parseArgs(ins.raw, globalArgs, df.escape)) {
        const v = buildArgValue(buildArgs, a.name, a.default);
        if (v !== undefined) globalArgs.set(a.name, v);
        usedArgs.add(a.name);
      }
    } else throw invalid('no build stage in current context');
  }
  if (!stages.length) throw invalid('no build stage in current context');
  let last = stages.length - 1;
  if (target) {
    last = stages.findIndex((s) => stageName(s.from, globalArgs, df.escape)?.toLowerCase() === target.toLowerCase());
    if (last < 0) throw invalid(`failed to reach build target ${target} in Dockerfile`);
  }
  const total = stages.slice(0, last + 1).reduce((n, s) => n + 1 + s.steps.length, 0);
  return { globalArgs, usedArgs, stages, last, total };
}

/** Build args given that no ARG used (the predefined proxy ones are never reported). */
export function unusedBuildArgs(buildArgs: BuildArgs, usedArgs: Set<string>): string[] {
  return Object.keys(buildArgs).filter((k) => !usedArgs.has(k) && !PREDEFINED_ARGS.has(k));
}
