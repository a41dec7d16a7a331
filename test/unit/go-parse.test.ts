// strconv.ParseBool and strconv.Atoi as Go has them (src/go-parse.ts), and the places that parse
// with them: what each case gives is what Go gives on a 64-bit machine.
import { planLog } from '../../src/containers/log-drivers';
import { goAtoi, goQueryEscape, parseGoBool, StrconvError } from '../../src/core/go-parse';

describe('parseGoBool', () => {
  test.each([
    ['1', true],
    ['t', true],
    ['T', true],
    ['TRUE', true],
    ['true', true],
    ['True', true],
    ['0', false],
    ['f', false],
    ['F', false],
    ['FALSE', false],
    ['false', false],
    ['False', false],
  ])('%s -> %s', (s, want) => expect(parseGoBool(s)).toBe(want));

  test.each(['', 'yes', 'tRUE', ' true', '2'])('%j: invalid syntax', (s) => {
    expect(() => parseGoBool(s)).toThrow(new StrconvError('ParseBool', s, 'invalid syntax'));
    expect(() => parseGoBool(s)).toThrow(`strconv.ParseBool: parsing ${JSON.stringify(s)}: invalid syntax`);
  });
});

describe('goAtoi', () => {
  test.each([
    ['5', 5],
    ['+5', 5],
    ['-5', -5],
    ['007', 7],
    ['-0', 0],
    ['9223372036854775807', 9223372036854775807],
  ])('%s -> %d', (s, want) => expect(goAtoi(s)).toBe(want));

  test.each(['', '+', '1_000', ' 5', '5 ', '0x10', '1e3', '1.0', '５'])('%j: invalid syntax', (s) => {
    expect(() => goAtoi(s)).toThrow(`strconv.Atoi: parsing ${JSON.stringify(s)}: invalid syntax`);
  });

  test.each(['9223372036854775808', '-9223372036854775809'])('%s: value out of range', (s) => {
    expect(() => goAtoi(s)).toThrow(`strconv.Atoi: parsing ${JSON.stringify(s)}: value out of range`);
  });
});

describe('log-opts parsed with them (moby: strconv.Atoi takes a sign)', () => {
  test('local max-file "+3", gelf compression level "+5" and tcp reconnect "+2" are accepted', () => {
    expect(planLog({ Type: 'local', Config: { 'max-file': '+3' } }).file?.maxFile).toBe(3);
    expect(planLog({ Type: 'json-file', Config: { 'max-file': '+2' } }).file?.maxFile).toBe(2);
    const g = planLog({ Type: 'gelf', Config: { 'gelf-address': 'udp://127.0.0.1:1', 'gelf-compression-level': '+5' } }).remote;
    expect(g).toMatchObject({ driver: 'gelf', level: 5 });
    const t = planLog({ Type: 'gelf', Config: { 'gelf-address': 'tcp://127.0.0.1:1', 'gelf-tcp-max-reconnect': '+2' } }).remote;
    expect(t).toMatchObject({ driver: 'gelf', tcpMaxReconnect: 2 });
  });

  test("the errors keep Go's texts", () => {
    expect(() => planLog({ Type: 'local', Config: { 'max-file': 'x' } })).toThrow('invalid value for max-file: x: strconv.Atoi: parsing "x": invalid syntax');
    expect(() => planLog({ Type: 'json-file', Config: { 'max-file': '99999999999999999999' } })).toThrow('strconv.Atoi: parsing "99999999999999999999": value out of range');
    expect(() => planLog({ Type: 'local', Config: { compress: 'maybe' } })).toThrow('invalid boolean value for compress: strconv.ParseBool: parsing "maybe": invalid syntax');
    expect(() => planLog({ Type: 'gelf', Config: { 'gelf-address': 'tcp://127.0.0.1:1', 'gelf-tcp-max-reconnect': '-1' } })).toThrow('"gelf-tcp-max-reconnect" must be a positive integer');
  });
});

describe('goQueryEscape (url.QueryEscape: docker logs --details)', () => {
  test.each([
    ['a b', 'a+b'],
    ["!'()*", '%21%27%28%29%2A'],
    ['AZaz09-_.~', 'AZaz09-_.~'],
    ['k=v,x&y/z?#%+', 'k%3Dv%2Cx%26y%2Fz%3F%23%25%2B'],
    ['é€', '%C3%A9%E2%82%AC'],
    ['', ''],
  ])('%j -> %j', (s, want) => expect(goQueryEscape(s)).toBe(want));
});
