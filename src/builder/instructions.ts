// The instructions that change the image's config only (ARG, ENV, LABEL, MAINTAINER, EXPOSE,
// VOLUME, USER, STOPSIGNAL, CMD, ENTRYPOINT, SHELL, ONBUILD, HEALTHCHECK): their effect on the
// run config and the stage, and the comment dockerd records for them (history and
// ContainerConfig.Cmd say the same). No I/O: the caller commits the step.
import { invalid } from '../core/errors';
import { parseHealthcheck, type Instruction } from './dockerfile';
import { expandWord, expandWords, parseArgs, parseKeyValues } from './expand';
import { goHealthcheck, goQuoteList } from './go-format';
import type { Expansion, RunConfig, Stage } from './types';

export interface ConfigStepContext extends Expansion {
  /** the build args some ARG declared */
  usedArgs: Set<string>;
  /** an ARG's value: the build arg given for it, else its default */
  buildArg(name: string, dflt: string | undefined): string | undefined;
}

type Apply = (stage: Stage, rc: RunConfig, ins: Instruction, x: ConfigStepContext) => string;

const APPLY: Record<string, Apply> = {
  ARG: (stage, _rc, ins, x) => {
    const args = parseArgs(ins.raw, x.vars, x.escape);
    for (const a of args) {
      x.usedArgs.add(a.name);
      const v = x.buildArg(a.name, a.default);
      if (v !== undefined) stage.args.set(a.name, v);
      else stage.args.delete(a.name);
    }
    return `ARG ${args.map((a) => (a.default === undefined ? a.name : `${a.name}=${a.default}`)).join(' ')}`;
  },
  ENV: (_stage, rc, ins, x) => {
    const env = [...(rc.Env ?? [])];
    const pairs = parseKeyValues(ins.raw, x.vars, 'ENV', x.escape);
    for (const [k, v] of pairs) {
      const i = env.findIndex((e) => e.split('=')[0] === k);
      if (i >= 0) env[i] = `${k}=${v}`;
      else env.push(`${k}=${v}`);
    }
    rc.Env = env;
    return `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
  },
  LABEL: (_stage, rc, ins, x) => {
    const pairs = parseKeyValues(ins.raw, x.vars, 'LABEL', x.escape);
    rc.Labels = { ...(rc.Labels ?? {}), ...Object.fromEntries(pairs) };
    return `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
  },
  MAINTAINER: (stage, _rc, ins) => {
    stage.maintainer = ins.raw;
    return `MAINTAINER ${ins.raw}`;
  },
  EXPOSE: (_stage, rc, ins, x) => {
    const ports = { ...(rc.ExposedPorts ?? {}) };
    const words = expandWords(ins.raw, x.vars, x.escape);
    for (const p of words) {
      if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw invalid(`Invalid containerPort: ${p}`);
      ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
    }
    rc.ExposedPorts = ports;
    return `EXPOSE ${words.join(' ')}`;
  },
  VOLUME: (_stage, rc, ins, x) => {
    const vols = { ...(rc.Volumes ?? {}) };
    const list = ins.json ? ins.json.map((w) => expandWord(w, x.vars, x.escape)) : expandWords(ins.raw, x.vars, x.escape);
    if (!list.length) throw invalid('VOLUME specified can not be an empty string');
    for (const v of list) {
      if (!v.trim()) throw invalid('VOLUME specified can not be an empty string');
      vols[v] = {};
    }
    rc.Volumes = vols;
    return `VOLUME [${list.join(' ')}]`;
  },
  USER: (_stage, rc, ins, x) => {
    rc.User = expandWord(ins.raw, x.vars, x.escape);
    return `USER ${rc.User}`;
  },
  STOPSIGNAL: (_stage, rc, ins, x) => {
    rc.StopSignal = expandWord(ins.raw, x.vars, x.escape);
    return `STOPSIGNAL ${rc.StopSignal}`;
  },
  CMD: (stage, rc, ins) => {
    rc.Cmd = ins.json ?? [...stage.shell, ins.raw];
    return `CMD ${goQuoteList(rc.Cmd)}`;
  },
  ENTRYPOINT: (stage, rc, ins) => {
    rc.Entrypoint = ins.json ?? [...stage.shell, ins.raw];
    // as Docker: a new ENTRYPOINT drops the CMD the base image had
    if (!stage.cmdSet) rc.Cmd = null;
    return `ENTRYPOINT ${goQuoteList(rc.Entrypoint)}`;
  },
  SHELL: (stage, rc, ins) => {
    if (!ins.json || !ins.json.length) throw invalid('SHELL requires the arguments to be in JSON form');
    stage.shell = [...ins.json];
    rc.Shell = [...ins.json];
    return `SHELL [${ins.json.join(' ')}]`;
  },
  ONBUILD: (_stage, rc, ins) => {
    rc.OnBuild = [...(rc.OnBuild ?? []), ins.raw];
    return `ONBUILD ${ins.raw}`;
  },
  HEALTHCHECK: (_stage, rc, ins) => {
    rc.Healthcheck = healthcheck(ins);
    return `HEALTHCHECK ${goHealthcheck(rc.Healthcheck)}`;
  },
};

export const CONFIG_INSTRUCTIONS: ReadonlySet<string> = new Set(Object.keys(APPLY));

/**
 * A config-only instruction applied to rc (the stage's run config, a copy) and to the stage
 * (its ARGs, shell, maintainer); returns the step's comment. ins.cmd is one of CONFIG_INSTRUCTIONS.
 */
export function applyConfigInstruction(stage: Stage, rc: RunConfig, ins: Instruction, x: ConfigStepContext): string {
  if (!CONFIG_INSTRUCTIONS.has(ins.cmd)) throw invalid(`unknown instruction: ${ins.cmd}`);
  return APPLY[ins.cmd](stage, rc, ins, x);
}

/** HEALTHCHECK as the image config has it (durations in ns; 0 = the default, left out). */
function healthcheck(ins: Instruction): RunConfig['Healthcheck'] {
  const h = parseHealthcheck(ins);
  const hc: NonNullable<RunConfig['Healthcheck']> = { Test: h.test };
  if (h.interval) hc.Interval = h.interval;
  if (h.timeout) hc.Timeout = h.timeout;
  if (h.startPeriod) hc.StartPeriod = h.startPeriod;
  if (h.startInterval) hc.StartInterval = h.startInterval;
  if (h.retries) hc.Retries = h.retries;
  return hc;
}
