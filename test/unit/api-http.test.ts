// Pieces of the API layer that need no daemon: ps output as /top's table, label filters,
// the exec start body.
import { labelMatches, regexMatch } from '../../src/core/labels';
import { parsePs } from '../../src/containers/top';
import { parseExecStart } from '../../src/containers/exec-start';

test('parsePs keeps the title row and the given pids; the last column keeps its spaces', () => {
  const out = 'UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:00 sleep 100\nroot 7 1 0 10:00 ? 00:00:00 sh -c echo hi\nroot 9 1 0 10:00 ? 00:00:00 other\n';
  expect(parsePs(out, new Set([1, 7]))).toEqual({
    Titles: ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'],
    Processes: [
      ['root', '1', '0', '0', '10:00', '?', '00:00:00', 'sleep 100'],
      ['root', '7', '1', '0', '10:00', '?', '00:00:00', 'sh -c echo hi'],
    ],
  });
  expect(() => parsePs('USER CMD\n', new Set())).toThrow("Couldn't find PID field in ps output");
});

test('label filters: k, k=v, k!=v; regex names fall back to substrings', () => {
  const l = { a: '1', b: '2' };
  expect(labelMatches(l, ['a', 'b=2'])).toBe(true);
  expect(labelMatches(l, ['a!=1'])).toBe(false);
  expect(labelMatches(l, ['c'])).toBe(false);
  expect(regexMatch('^/we', '/web')).toBe(true);
  expect(regexMatch('[', 'a[b')).toBe(true);
});

test('exec start body: Detach, Tty, ConsoleSize only with a terminal', () => {
  expect(parseExecStart(undefined)).toEqual({ detach: false, tty: false, size: undefined });
  expect(parseExecStart({ Detach: true, ConsoleSize: [10, 20] })).toEqual({ detach: true, tty: false, size: undefined });
  expect(parseExecStart({ Tty: true, ConsoleSize: [10, 20] })).toEqual({ detach: false, tty: true, size: [10, 20] });
  expect(() => parseExecStart({ Tty: 'yes' })).toThrow('json: cannot unmarshal string into Go struct field ExecStartOptions.Tty of type bool');
  expect(() => parseExecStart([])).toThrow('container.ExecStartOptions');
});
