// A build's plan, before anything runs: the Dockerfile's instructions grouped into stages by
// FROM, the global ARGs (those before the first FROM, and BuildKit's automatic platform args),
// the stage the build stops at (--target) and the number of steps it prints ("Step n/total").
import { invalid } from '../core/errors';
import type { Dockerfile, Instruction } from './dockerfile';
import type { ImageConfig, ImageRecord } from '../images/types';
import { expandWord, expandWords, parseArgs } from './expand';
import { formatPlatform, hostPlatform, parsePlatform, PLATFORM_ARGS, platformArgs, PREDEFINED_ARGS, type Platform } from './types';

export interface StagePlan {
  from: Instruction;
  steps: Instruction[];
}

export interface BuildPlan {
  /** the ARGs before the first FROM, with their values, and the platform args: what FROM lines see */
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

/**
 * An ARG's value inside a stage: the build arg given for it, else its default, else (no
 * default) the value the global scope has for it, an ARG before the first FROM or a platform
 * arg (dockerd's allowedMetaArgs, BuildKit's dispatchArg).
 */
export function stageArgValue(plan: Pick<BuildPlan, 'globalArgs'>, buildArgs: BuildArgs, name: string, dflt: string | undefined): string | undefined {
  return buildArgValue(buildArgs, name, dflt) ?? (dflt === undefined ? plan.globalArgs.get(name) : undefined);
}

/** FROM <image> AS <name>: the name (as written, variables expanded). */
export function stageName(from: Instruction, args: Map<string, string>, escape: string): string | undefined {
  const words = expandWords(from.raw, args, escape);
  return words.length === 3 && words[1].toLowerCase() === 'as' ? words[2] : undefined;
}

export function planBuild(df: Dockerfile, buildArgs: BuildArgs, target: string | undefined): BuildPlan {
  // the platform args first, a build arg of the same name replacing one (BuildKit's overrides)
  const globalArgs = new Map<string, string>();
  for (const [k, v] of platformArgs(target)) globalArgs.set(k, buildArgValue(buildArgs, k, v) ?? v);
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

/**
 * FROM --platform=…: the value expanded with the global args ($BUILDPLATFORM, $TARGETPLATFORM …);
 * empty is no platform, as BuildKit. This builder runs its steps here, without emulation: a
 * platform other than this host's is refused.
 */
export function fromPlatform(ins: Instruction, globalArgs: Map<string, string>, escape: string): Platform | undefined {
  if (ins.flags.platform === undefined) return undefined;
  const text = expandWord(ins.flags.platform, globalArgs, escape);
  if (text === '') return undefined;
  const p = parsePlatform(text);
  if (!p) throw invalid(`failed to parse platform ${text}: "${text}": unknown operating system or architecture: invalid argument`);
  const host = hostPlatform();
  if (formatPlatform(p) !== formatPlatform(host)) {
    throw invalid(`FROM --platform=${text}: this daemon builds for ${formatPlatform(host)} only (its RUN steps run here, without emulation)`);
  }
  return p;
}

/** dockerd's check of an image for a platform asked for: its os and architecture (and a variant it names). */
export function checkImagePlatform(ref: string, image: ImageRecord, want: Platform): void {
  const cfg = image.config as ImageConfig & { variant?: string };
  const actual = { os: cfg.os ?? '', architecture: cfg.architecture ?? '', variant: cfg.variant ?? '' };
  const norm = parsePlatform(formatPlatform(actual)) ?? actual;
  if (norm.os !== want.os || norm.architecture !== want.architecture || (norm.variant && want.variant && norm.variant !== want.variant)) {
    throw invalid(`image with reference ${ref} was found but does not match the specified platform: wanted ${formatPlatform(want)}, actual: ${formatPlatform(actual)}`);
  }
}

/** Build args given that no ARG used (the predefined proxy ones and the platform args are never reported). */
export function unusedBuildArgs(buildArgs: BuildArgs, usedArgs: Set<string>): string[] {
  return Object.keys(buildArgs).filter((k) => !usedArgs.has(k) && !PREDEFINED_ARGS.has(k) && !PLATFORM_ARGS.has(k));
}

/** Which stages a build runs and what each waits for (BuildKit's reachability from the target). */
export interface StageSchedule {
  /** each stage's name (FROM … AS name, variables expanded), lower-cased */
  names: (string | undefined)[];
  /** for each stage, the earlier stages it uses: FROM <stage>, COPY --from, RUN --mount from= */
  deps: number[][];
  /** the stages the target needs (itself included), in Dockerfile order */
  needed: number[];
}

/** The values of RUN's --mount flags (several when the instruction type lists them). */
export function mountValues(ins: Instruction): string[] {
  const lists = (ins as Instruction & { flagLists?: Record<string, string[] | undefined> }).flagLists;
  const m = lists?.mount ?? (ins.flags.mount !== undefined ? [ins.flags.mount] : []);
  return m;
}

/** A --mount value's from= (type=bind,from=build,target=/x), if it names one; just enough of its CSV. */
export function mountFrom(value: string): string | undefined {
  for (const field of value.split(',')) {
    const i = field.indexOf('=');
    if (i > 0 && field.slice(0, i).trim().toLowerCase() === 'from')
      return field
        .slice(i + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}

/** The references an instruction makes to other stages (or images): COPY --from, RUN --mount from=. */
export function instructionRefs(ins: Instruction): string[] {
  if ((ins.cmd === 'COPY' || ins.cmd === 'ADD') && ins.flags.from !== undefined) return [ins.flags.from];
  if (ins.cmd === 'RUN') return mountValues(ins).flatMap((v) => mountFrom(v) ?? []);
  return [];
}

/**
 * The stage a reference names, among the stages before `before`: a name (any case), or for
 * COPY --from and --mount from= an index too (`FROM 0` is an image); undefined: an image.
 */
export function stageIndexOf(names: (string | undefined)[], ref: string, before: number, byIndex: boolean): number | undefined {
  if (byIndex && /^\d+$/.test(ref)) {
    const i = Number(ref);
    return i < before ? i : undefined;
  }
  // the first stage of that name, as dockerd's legacy builder finds it
  const i = names.findIndex((n, at) => at < before && n === ref.toLowerCase());
  return i < 0 ? undefined : i;
}

/**
 * The stages the target (plan.last) needs, transitively, and each stage's dependencies. The
 * references are expanded with the global ARGs, as FROM's are; a reference found only when the
 * step runs (an ONBUILD trigger's) starts its stage then.
 */
export function scheduleStages(plan: BuildPlan, escape: string): StageSchedule {
  const names = plan.stages.map((s) => stageName(s.from, plan.globalArgs, escape)?.toLowerCase());
  const expand = (ref: string) => expandWords(ref, plan.globalArgs, escape).join(' ');
  const deps = plan.stages.map((s, i) => {
    const found = new Set<number>();
    const base = expandWords(s.from.raw, plan.globalArgs, escape)[0];
    const fromStage = base !== undefined ? stageIndexOf(names, base, i, false) : undefined;
    if (fromStage !== undefined) found.add(fromStage);
    for (const ins of s.steps) {
      for (const ref of instructionRefs(ins)) {
        const at = stageIndexOf(names, expand(ref), i, true);
        if (at !== undefined) found.add(at);
      }
    }
    return [...found].sort((a, b) => a - b);
  });
  const reached = new Set<number>();
  const visit = (i: number) => {
    if (reached.has(i)) return;
    reached.add(i);
    deps[i].forEach(visit);
  };
  visit(plan.last);
  return { names, deps, needed: [...reached].sort((a, b) => a - b) };
}
