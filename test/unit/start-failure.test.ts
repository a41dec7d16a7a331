// skiff-init's failure as a typed value: the exit code from call, errno and notFound, never from
// the text; the message as Docker shows it.
import { parseWireFailure, startExitCode, StartFailure, wireFailure } from '../../src/runtime/start-failure';

const ENOENT = 2;
const EACCES = 13;
const ENOEXEC = 8;

describe('StartFailure', () => {
  test('a program not found: 127 for a container and an exec', () => {
    const w = { call: 'exec', target: '"nosuch": executable file not found in $PATH', errno: ENOENT, message: 'x', notFound: true };
    const f = new StartFailure(w, 'create');
    expect(f).toMatchObject({ call: 'exec', target: w.target, errno: { name: 'ENOENT', number: 2 }, exitCode: 127 });
    expect(f.message).toBe('exec: "nosuch": executable file not found in $PATH');
    expect(startExitCode(w, 'exec')).toBe(127);
  });

  test('not executable (EACCES, a directory): 126', () => {
    const w = { call: 'exec', target: '"/etc": is a directory: permission denied', errno: EACCES, message: 'x' };
    expect(startExitCode(w, 'create')).toBe(126);
    expect(startExitCode(w, 'exec')).toBe(126);
  });

  test("execve's ENOENT (a script's missing interpreter): 127, as dockerd ('no such file or directory' next to the command)", () => {
    const w = { call: 'exec', target: '"/script"', errno: ENOENT, message: 'exec "/script": No such file or directory (errno 2)' };
    expect([startExitCode(w, 'create'), startExitCode(w, 'exec')]).toEqual([127, 127]);
  });

  test("execve's other errors and every other call: 128 for a container, 126 for an exec", () => {
    for (const w of [
      { call: 'exec', target: '"/bin/x"', errno: ENOEXEC, message: 'm' },
      { call: 'chdir', target: '/nope', errno: ENOENT, message: 'chdir /nope: no such file or directory' },
      { call: 'mount', target: '/x on /y', errno: EACCES, message: 'permission denied' },
      { call: 'config', target: 'unable to find user x', errno: 0, message: 'config unable to find user x' },
      { message: 'skiff-init exited with signal 9 before ready' },
    ]) {
      expect([startExitCode(w, 'create'), startExitCode(w, 'exec')]).toEqual([128, 126]);
    }
  });

  test('the message: exec: <target> for exec, else the message; errno 0 is none', () => {
    const f = new StartFailure({ call: 'config', target: 'unable to find user x', errno: 0, message: 'config unable to find user x' }, 'create');
    expect(f.message).toBe('config unable to find user x');
    expect(f.errno).toBeUndefined();
  });

  test('the wire: JSON, a bare message, nothing', () => {
    expect(parseWireFailure('{"call":"mount","target":"/proc","errno":13,"message":"m"}')).toEqual({ call: 'mount', target: '/proc', errno: 13, message: 'm' });
    expect(parseWireFailure('not json')).toEqual({ message: 'not json' });
    expect(wireFailure(undefined)).toEqual({ message: 'unknown error' });
    expect(wireFailure('text')).toEqual({ message: 'text' });
  });
});
