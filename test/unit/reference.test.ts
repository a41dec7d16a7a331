import { familiarName, normalize, parseReference } from '../../src/images/reference';

const hex = 'a'.repeat(64);

test.each([
  ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
  ['docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['foo/bar', 'docker.io/foo/bar:latest', 'foo/bar:latest'],
  ['localhost:5000/x', 'localhost:5000/x:latest', 'localhost:5000/x:latest'],
  ['localhost/x:v1', 'localhost/x:v1', 'localhost/x:v1'],
  ['127.0.0.1:5000/a/b/c:t', '127.0.0.1:5000/a/b/c:t', '127.0.0.1:5000/a/b/c:t'],
  [`busybox@sha256:${hex}`, `docker.io/library/busybox@sha256:${hex}`, `busybox@sha256:${hex}`],
  [`reg.example.com/x:t@sha256:${hex}`, `reg.example.com/x:t@sha256:${hex}`, `reg.example.com/x:t@sha256:${hex}`],
  ['my-app/sub__name.v2_x', 'docker.io/my-app/sub__name.v2_x:latest', 'my-app/sub__name.v2_x:latest'],
])('%s', (ref, canonical, familiar) => {
  expect(normalize(ref)).toBe(canonical);
  expect(familiarName(ref)).toBe(familiar);
});

test('parts', () => {
  expect(parseReference('localhost:5000/x:t')).toEqual({ domain: 'localhost:5000', path: 'x', tag: 't', digest: undefined });
  expect(parseReference('busybox')).toEqual({ domain: 'docker.io', path: 'library/busybox', tag: undefined, digest: undefined });
});

test.each(['', 'Busybox', 'foo/Bar', 'busybox:', ':tag', 'a//b', 'busybox@sha256:xyz', '-a', 'a-', 'busy box', `x:${'t'.repeat(129)}`, '/abs'])('rejects %j', (ref) => {
  expect(() => parseReference(ref)).toThrow(/invalid reference format/);
});

test("uppercase repository names get Docker's message", () => {
  expect(() => parseReference('foo/Bar')).toThrow('invalid reference format: repository name (foo/Bar) must be lowercase');
});
