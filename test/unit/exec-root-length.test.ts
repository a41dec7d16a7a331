// skiffd refuses at start an exec root under which a container's monitor socket
// (<exec-root>/containers/<64-hex id>/ms) would pass the kernel's 108-byte sun_path: before, such
// a daemon started and every container start failed with "monitor ... is not running".
import { checkExecRootLength } from '../../src/config';

describe('checkExecRootLength', () => {
  it("takes the defaults and the test daemons' folders", () => {
    expect(() => checkExecRootLength('/run/skiff')).not.toThrow();
    expect(() => checkExecRootLength('/run/user/1000/skiff')).not.toThrow();
    expect(() => checkExecRootLength('/tmp/skt-AbCdEf/run')).not.toThrow();
  });
  it('takes the longest that fits, and refuses one byte more with the room left', () => {
    const fits = '/' + 'a'.repeat(27);
    expect(() => checkExecRootLength(fits)).not.toThrow();
    expect(() => checkExecRootLength(fits + 'b')).toThrow(
      `--exec-root ${fits}b is too long by 1 bytes: container sockets under it would pass the 108-byte unix socket path limit; use a path of at most 28 bytes`,
    );
  });
});
