// The helpers the image store adds to src/images/reference.ts (the parser itself is covered by reference.test.ts).
import { isFullHexId, isSha256Digest, parseReference, repositoryName, familiarString, tryParseReference, normalize } from '../../src/images/reference';

const hex = 'ab'.repeat(32);

test('a bare 64-hex name is not a repository (Docker refuses it)', () => {
  expect(() => parseReference(hex)).toThrow(`invalid repository name (${hex}), cannot specify 64-byte hexadecimal strings`);
  expect(isFullHexId(hex)).toBe(true);
  expect(isFullHexId(hex.slice(1))).toBe(false);
  // shorter hex strings are ordinary names
  expect(normalize('abc123')).toBe('docker.io/library/abc123:latest');
});

test('repositoryName, familiarString, tryParseReference, isSha256Digest', () => {
  expect(repositoryName('busybox:1')).toBe('docker.io/library/busybox');
  expect(repositoryName('localhost:5000/a/b@sha256:' + hex)).toBe('localhost:5000/a/b');
  expect(familiarString(parseReference(`docker.io/library/busybox@sha256:${hex}`))).toBe(`busybox@sha256:${hex}`);
  expect(familiarString(parseReference('docker.io/foo/bar'))).toBe('foo/bar');
  expect(tryParseReference('UPPER')).toBeUndefined();
  expect(isSha256Digest(`sha256:${hex}`)).toBe(true);
  expect(isSha256Digest(`sha256:${hex.toUpperCase()}`)).toBe(false);
});
