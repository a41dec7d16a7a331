// COPY/ADD's BuildKit flags without root: --chmod's parsing (octal and symbolic, as BuildKit's
// dockerfile2llb and its mode package take them), the request (--link, --parents, --exclude,
// --checksum and their errors in BuildKit's words), --parents' pivot, --exclude's patterns, Git
// sources as BuildKit's ParseGitRef tells them from paths, and the content hash that keys
// COPY's cache (contents, names, modes; never mtimes).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { linkedStepKey, stepCacheKey } from '../../src/builder/build-cache';
import { hashSources, parseChecksum, type SourceFile } from '../../src/builder/build-context';
import { parseChmod } from '../../src/builder/copy-mode';
import { copyRequest, excluder, parentsPivot } from '../../src/builder/copy-step';
import { parseDockerfile, type Instruction } from '../../src/builder/dockerfile';
import { parseGitSource } from '../../src/builder/remote-context';
import { DEFAULT_SHELL, type Stage } from '../../src/builder/types';
import { SkiffError } from '../../src/core/errors';
import type { Digest, ImageRecord } from '../../src/images/types';

const ins = (line: string): Instruction => parseDockerfile(`FROM scratch\n${line}\n`).instructions[1];
const x = { vars: new Map([['M', '0640']]), escape: '\\' };

function invalidMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SkiffError);
    expect((e as SkiffError).kind).toBe('invalid');
    return (e as SkiffError).message;
  }
  throw new Error('no error');
}

describe('--chmod', () => {
  const mode = (spec: string, m: number, dir = false) => parseChmod(spec).apply(m, dir).toString(8);

  test('octal sets the mode whatever it was (up to 07777), as BuildKit', () => {
    expect(mode('755', 0o600)).toBe('755');
    expect(mode('0644', 0o777, true)).toBe('644');
    expect(mode('4755', 0o600)).toBe('4755');
    // BuildKit's words for anything numeric that is not octal up to 07777
    expect(invalidMessage(() => parseChmod('17777'))).toBe("invalid chmod parameter: '17777'. it should be octal string and between 0 and 07777");
    expect(invalidMessage(() => parseChmod('8'))).toBe("invalid chmod parameter: '8'. it should be octal string and between 0 and 07777");
    expect(invalidMessage(() => parseChmod('0x1'))).toBe("invalid chmod parameter: '0x1'. it should be octal string and between 0 and 07777");
  });

  test('symbolic modes (dockerfile 1.10+) change each entry from its own mode, as chmod(1)', () => {
    expect(mode('u+x', 0o644)).toBe('744');
    expect(mode('go-w', 0o666)).toBe('644');
    expect(mode('a=r,u+w', 0o777)).toBe('644');
    expect(mode('+x', 0o644)).toBe('755');
    expect(mode('=rw,+X', 0o744)).toBe('777');
    expect(mode('=rw,+X', 0o644)).toBe('666');
    // X: folders, and files with an x bit already
    expect(mode('a+X', 0o644)).toBe('644');
    expect(mode('a+X', 0o700)).toBe('711');
    expect(mode('a+X', 0o644, true)).toBe('755');
    expect(mode('go+rX', 0o700, true)).toBe('755');
    // copying a class's bits
    expect(mode('g=u-w', 0o750)).toBe('750');
    expect(mode('go=u', 0o700)).toBe('777');
    expect(mode('o=', 0o777)).toBe('770');
    // set-id and sticky bits: not for "other" alone
    expect(mode('u+s', 0o755)).toBe('4755');
    expect(mode('g+s,+t', 0o755)).toBe('3755');
    expect(mode('o+s', 0o755)).toBe('755');
    // several actions in one clause
    expect(mode('u+x-w', 0o644)).toBe('544');
  });

  test('a symbolic mode that does not parse: its error', () => {
    for (const bad of ['u+z', 'u', 'z+x', 'u+x,,g+x', '-1']) expect(invalidMessage(() => parseChmod(bad))).toBe('invalid syntax');
  });
});

describe('COPY/ADD request: the flags BuildKit has', () => {
  test('--chmod (expanded), --link, --parents, --exclude', () => {
    const r = copyRequest({}, ins('COPY --chmod=$M --parents --exclude=*.md a/ /d/'), x);
    expect(r).toMatchObject({ sources: ['a/'], dest: '/d', intoDir: true, parents: true, excludes: ['*.md'] });
    expect(r.chmod?.text).toBe('0640');
    expect(r.link).toBeUndefined();
    expect(copyRequest({}, ins('COPY --link a /d'), x).link).toBe(true);
    expect(copyRequest({}, ins('COPY --link=false a /d'), x).link).toBeUndefined();
    // BuildKit merges onto an empty base only without --chmod
    expect(copyRequest({}, ins('COPY --link --chmod=755 a /d'), x).link).toBeUndefined();
    // repeated --exclude: the parser's list when it keeps one
    expect(copyRequest({}, { ...ins('COPY --exclude=a a /d'), flagLists: { exclude: ['*.md', '*.txt'] } } as Instruction, x).excludes).toEqual(['*.md', '*.txt']);
  });

  test("--link with --chown: ids and root only (the image's names are not there)", () => {
    expect(copyRequest({}, ins('COPY --link --chown=1000:root a /d'), x).chown).toBe('1000:root');
    expect(invalidMessage(() => copyRequest({}, ins('COPY --link --chown=app a /d'), x))).toContain('needs numeric ids with --link');
  });

  test("ADD --checksum: dispatchCopy's checks and go-digest's", () => {
    expect(copyRequest({}, ins(`ADD --checksum=sha256:${'a'.repeat(64)} http://h/f /f`), x).checksum).toBe(`sha256:${'a'.repeat(64)}`);
    expect(invalidMessage(() => copyRequest({}, ins(`ADD --checksum=sha256:${'a'.repeat(64)} f /f`), x))).toBe('checksum requires HTTP(S) or Git sources');
    expect(invalidMessage(() => copyRequest({}, ins(`ADD --checksum=sha256:${'a'.repeat(64)} http://h/a http://h/b /d/`), x))).toBe("checksum can't be specified for multiple sources");
    expect(invalidMessage(() => copyRequest({}, ins('ADD --checksum=sha256:abc http://h/f /f'), x))).toBe('invalid checksum digest length');
    expect(invalidMessage(() => parseChecksum('md5:abc'))).toBe('unsupported digest algorithm');
    expect(invalidMessage(() => parseChecksum('nodigest'))).toBe('invalid checksum digest format');
    // the parser knows no --checksum for COPY
    expect(() => ins('COPY --checksum=sha256:x a b')).toThrow('Unknown flag: checksum');
  });
});

describe('--parents and --exclude paths', () => {
  test("the /./ pivot: the path after it is kept below dest, without one the whole path (BuildKit's strings.Cut on /./)", () => {
    expect(parentsPivot('x/y/a.txt')).toEqual({ pivot: '', pattern: 'x/y/a.txt' });
    expect(parentsPivot('./x/y/a.txt')).toEqual({ pivot: '', pattern: 'x/y/a.txt' });
    expect(parentsPivot('x/./y/*.txt')).toEqual({ pivot: 'x', pattern: 'y/*.txt' });
    expect(parentsPivot('/a/b/./c/./d')).toEqual({ pivot: 'a/b', pattern: 'c/d' });
  });

  test('exclude patterns as .dockerignore: wildcards per segment, ** across, folders cover their contents, ! exceptions', () => {
    const e = excluder(['*.md', 'build', '**/*.tmp', '!keep.md'])!;
    expect(['a.md', 'keep.md', 'x/a.md', 'build/out', 'x/y/z.tmp', 'main.c'].filter(e.excluded)).toEqual(['a.md', 'build/out', 'x/y/z.tmp']);
    expect(e.reinclude).toBe(true);
    expect(excluder([])).toBeUndefined();
  });
});

describe('ADD <git>: what BuildKit takes for a Git repository', () => {
  test('URLs and their fragments and queries', () => {
    expect(parseGitSource('https://github.com/x/y.git#v1:sub/dir')).toEqual({ url: 'https://github.com/x/y.git', ref: 'v1', subdir: 'sub/dir' });
    expect(parseGitSource('git://127.0.0.1:9418/app.git')).toEqual({ url: 'git://127.0.0.1:9418/app.git', ref: '', subdir: '' });
    expect(parseGitSource('git@github.com:x/y.git#main')).toEqual({ url: 'git@github.com:x/y.git', ref: 'main', subdir: '' });
    expect(parseGitSource('ssh://git@h/x/y')).toMatchObject({ url: 'ssh://git@h/x/y' });
    expect(parseGitSource('https://h/x/y.git?branch=dev&subdir=s&keep-git-dir=true')).toEqual({ url: 'https://h/x/y.git', ref: 'refs/heads/dev', subdir: 's', keepGitDir: true });
    expect(parseGitSource('https://h/x/y.git?checksum=abc123')).toEqual({ url: 'https://h/x/y.git', ref: 'abc123', subdir: '', checksum: 'abc123' });
    expect(invalidMessage(() => parseGitSource('https://h/x/y.git?tag=a&branch=b'))).toBe('branch conflicts with tag');
    expect(invalidMessage(() => parseGitSource('https://h/x/y.git?nope=1'))).toBe('unexpected query "nope"');
  });

  test('not Git: http(s) not ending in .git, github.com/… (a local path for ADD), other schemes, relative paths', () => {
    for (const s of ['https://h/file.tar.gz', 'github.com/x/y', 'file:///tmp/x.git', './x.git', 'dir/a.git', 'a:b']) expect(parseGitSource(s)).toBeUndefined();
  });
});

describe("COPY's cache key follows content", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-copyhash-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const tree = (name: string) => {
    const root = path.join(dir, name);
    fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(root, 'a.txt'), 'a\n');
    fs.writeFileSync(path.join(root, 'sub', 'b.md'), 'b\n');
    fs.symlinkSync('a.txt', path.join(root, 'link'));
    return root;
  };
  // COPY . (a folder's name never counts: its contents are copied)
  const src = (abs: string, extra: Partial<SourceFile> = {}): SourceFile[] => [{ abs, rel: '.', ...extra }];

  test('new mtimes (a checkout again) keep the hash; contents and modes change it', async () => {
    const root = tree('t1');
    const before = await hashSources(src(root));
    const later = new Date(Date.now() + 3600_000);
    for (const p of ['a.txt', 'sub/b.md', 'sub', '.']) fs.utimesSync(path.join(root, p), later, later);
    expect(await hashSources(src(root))).toBe(before);
    // the same files elsewhere (another checkout) hash the same
    expect(await hashSources(src(tree('t2')))).toBe(before);
    fs.chmodSync(path.join(root, 'a.txt'), 0o755);
    const chmodded = await hashSources(src(root));
    expect(chmodded).not.toBe(before);
    fs.writeFileSync(path.join(root, 'sub', 'b.md'), 'B\n');
    expect(await hashSources(src(root))).not.toBe(chmodded);
  });

  test('owners count only when they are kept (COPY --from without --chown); excluded entries never count', async () => {
    const root = tree('t3');
    const plain = await hashSources(src(root));
    fs.lchownSync(path.join(root, 'a.txt'), 1234, 1234);
    expect(await hashSources(src(root))).toBe(plain);
    expect(await hashSources(src(root), { owners: true })).not.toBe(plain);
    const ex = excluder(['**/*.md'])!;
    const without = await hashSources(src(root, ex));
    fs.writeFileSync(path.join(root, 'sub', 'b.md'), 'changed\n');
    expect(await hashSources(src(root, ex))).toBe(without);
  });

  test('the memo: a file hashed once per (inode, size, mtime, ctime); a rewrite is hashed again', async () => {
    const root = tree('t4');
    const memo = new Map<string, string>();
    const first = await hashSources(src(root), { memo });
    expect(memo.size).toBe(2);
    expect(await hashSources(src(root), { memo })).toBe(first);
    fs.writeFileSync(path.join(root, 'a.txt'), 'other\n');
    expect(await hashSources(src(root), { memo })).not.toBe(first);
    expect(memo.size).toBe(3);
  });

  test('a --link step is keyed without its parent; other steps with it', () => {
    const stage = (id: string): Stage => ({
      image: { id: id as Digest } as ImageRecord,
      config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } },
      args: new Map(),
      shell: DEFAULT_SHELL,
    });
    const i = ins('COPY --link a /a');
    expect(linkedStepKey(i, 'dir:x')).toBe(linkedStepKey(i, 'dir:x'));
    expect(linkedStepKey(i, 'dir:x')).not.toBe(linkedStepKey(i, 'dir:y'));
    expect(stepCacheKey(stage('sha256:1'), i, 'dir:x')).not.toBe(stepCacheKey(stage('sha256:2'), i, 'dir:x'));
  });
});
