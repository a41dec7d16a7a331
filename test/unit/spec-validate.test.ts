// validateSpecInput (create's checks, the spec built only at start) refuses what
// buildContainerSpec refuses, with the same error, and gives the same command.
import { buildContainerSpec, BuildSpecInput, validateSpecInput } from '../../src/runtime/spec';

const ROOT = { lower: [], upper: '', work: '', target: '', readonly: false, plain: '' };
const base = (o: Partial<BuildSpecInput> = {}): BuildSpecInput => ({ id: 'f'.repeat(64), config: { Cmd: ['sh'] }, root: ROOT, ...o });

const outcome = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
};

describe('validateSpecInput', () => {
  const cases: Array<[string, Partial<BuildSpecInput>]> = [
    ['fine', {}],
    ['no command', { config: {} }],
    ['bad capability', { hostConfig: { CapAdd: ['NOPE'] } }],
    ['bad ulimit', { hostConfig: { Ulimits: [{ Name: 'nope', Soft: 1, Hard: 1 }] } }],
    ['soft over hard', { hostConfig: { Ulimits: [{ Name: 'nofile', Soft: 3, Hard: 2 }] } }],
    ['host sysctl', { hostConfig: { Sysctls: { 'kernel.panic': '1' } } }],
    ['net sysctl with host network', { hostConfig: { NetworkMode: 'host', Sysctls: { 'net.ipv4.ip_forward': '1' } } }],
    ['relative working dir', { config: { Cmd: ['sh'], WorkingDir: 'rel' } }],
    ['long hostname', { config: { Cmd: ['sh'], Hostname: 'h'.repeat(65) } }],
    ['bad env', { config: { Cmd: ['sh'], Env: ['=x'] } }],
    ['bad group', { hostConfig: { GroupAdd: ['a:b'] } }],
    ['bad security opt', { hostConfig: { SecurityOpt: ['nope'] } }],
    ['oom score', { hostConfig: { OomScoreAdj: 5000 } }],
    ['shm size', { hostConfig: { ShmSize: -1 } }],
    ['two errors: the first one wins', { config: { Cmd: ['sh'], Hostname: 'h'.repeat(65) }, hostConfig: { CapAdd: ['NOPE'] } }],
    ['default ulimits', { defaultUlimits: [{ Name: 'bogus', Soft: 1, Hard: 1 }] }],
  ];
  test.each(cases)('%s: the same outcome as building the spec', (_name, o) => {
    const input = base(o);
    expect(outcome(() => validateSpecInput(input))).toBe(outcome(() => buildContainerSpec(input)));
  });

  test("the command: entrypoint and cmd merged with the image's", () => {
    const input = base({ config: { Cmd: ['-c', 'true'] }, image: { Entrypoint: ['sh'], Cmd: ['x'] } });
    expect(validateSpecInput(input).args).toEqual(buildContainerSpec(input).process.args);
    expect(validateSpecInput(input).args).toEqual(['sh', '-c', 'true']);
  });
});
