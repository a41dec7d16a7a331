// Which remote= strings are Git repositories, how "#ref:folder" splits, what a download is.
import { isGitUrl, parseGitRemote, sniffContext } from '../../src/builder/remote-context';

describe('remote build contexts', () => {
  test('Git URLs as dockerd tells them apart', () => {
    for (const s of ['git://host/x', 'git@github.com:o/r.git', 'github.com/o/r', 'https://h/o/r.git', 'http://h/r.git#main:sub']) expect([s, isGitUrl(s)]).toEqual([s, true]);
    for (const s of ['https://h/ctx.tar.gz', 'http://h/Dockerfile', 'https://h/r.git/file', 'ftp://h/r.git.tar', 'gitx://h']) expect([s, isGitUrl(s)]).toEqual([s, false]);
  });

  test('fragment: ref and folder; github.com/ gets https', () => {
    expect(parseGitRemote('git://h/r.git')).toEqual({ url: 'git://h/r.git', ref: '', subdir: '' });
    expect(parseGitRemote('git://h/r.git#v1.2')).toEqual({ url: 'git://h/r.git', ref: 'v1.2', subdir: '' });
    expect(parseGitRemote('git://h/r.git#dev:docker/app')).toEqual({ url: 'git://h/r.git', ref: 'dev', subdir: 'docker/app' });
    expect(parseGitRemote('git://h/r.git#:sub')).toEqual({ url: 'git://h/r.git', ref: '', subdir: 'sub' });
    expect(parseGitRemote('github.com/o/r')).toEqual({ url: 'https://github.com/o/r', ref: '', subdir: '' });
    expect(() => parseGitRemote('git://h/r.git#--upload-pack=x')).toThrow('invalid refspec');
  });

  test('a download is a tar (plain, gzip, zstd), a Dockerfile (text), or refused', () => {
    const tar = Buffer.alloc(512);
    tar.write('ustar', 257, 'latin1');
    expect(sniffContext(tar)).toBe('tar');
    expect(sniffContext(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('tar');
    expect(sniffContext(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe('tar');
    expect(sniffContext(Buffer.from('FROM busybox\nRUN true\n'))).toBe('dockerfile');
    expect(sniffContext(Buffer.from('BZh91AY'))).toEqual({ unsupported: 'bzip2' });
    expect(sniffContext(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1]))).toEqual({ unsupported: 'xz' });
    expect(sniffContext(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1]))).toEqual({ unsupported: 'binary' });
  });
});
