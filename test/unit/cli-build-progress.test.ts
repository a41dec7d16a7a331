// `skiff build --progress`: the mode chosen, the tty view's frames from the classic builder's
// stream (a fake clock and terminal), redrawn in place; plain passes the text through.
import { Readable } from 'node:stream';
import { BuildView, displayBuildStream, progressMode } from '../../cli/build-progress';

const s = (stream: string) => ({ stream });

function view(o: { columns?: number; rows?: number } = {}) {
  let t = 1000;
  const writes: string[] = [];
  const v = new BuildView({ write: (x) => writes.push(x), columns: () => o.columns ?? 60, rows: () => o.rows ?? 40, now: () => t });
  return { v, writes, tick: (ms: number) => (t += ms) };
}

test('--progress: auto picks tty on a terminal, plain else; a bad mode is refused', () => {
  expect(progressMode(undefined, true)).toBe('tty');
  expect(progressMode('auto', false)).toBe('plain');
  expect(progressMode('PLAIN', true)).toBe('plain');
  expect(progressMode('tty', false)).toBe('tty');
  expect(() => progressMode('fancy', true)).toThrow('invalid progress mode "fancy"');
});

test('stages side by side: a line per step with its time, the last lines of running steps, finished steps collapsed', () => {
  const { v, tick } = view();
  v.message(s('[a] Step 1/2 : FROM busybox AS a\n[a]  ---> 0123456789ab\n'));
  v.message(s('[b] Step 1/2 : FROM busybox AS b\n'));
  v.message(s('[b]  ---> 0123456789ab\n[b] Step 2/2 : RUN make\n'));
  v.message(s('[a] Step 2/2 : RUN sleep 2\n[a]  ---> Running in abcdefabcdef\n'));
  tick(1500);
  v.message(s('[b]  ---> Using cache\n[b]  ---> 111111111111\n'));
  v.message(s('[a] one\n[a] \u001b[91mtwo\u001b[0m\n'));
  tick(500);
  expect(v.frame()).toEqual([
    '[+] Building 2.0s (3/4)',
    ' => [a 1/2] FROM busybox AS a                      DONE 0.0s',
    ' => [b 1/2] FROM busybox AS b                      DONE 0.0s',
    ' => CACHED [b 2/2] RUN make                                 ',
    ' => [a 2/2] RUN sleep 2                                 2.0s',
    ' => => one',
    ' => => two',
  ]);
  // "[x] " is a prefix only for a stage the stream named: other output keeps its brackets
  v.message(s('[a] [1/3] compiling\n'));
  expect(v.frame().slice(-1)).toEqual([' => => [1/3] compiling']);
});

test('one stage (dockerd text, output in pieces): the steps and their output; long lines cut to the width; the tail keeps 6 lines', () => {
  const { v, tick } = view({ columns: 40 });
  v.message(s('Step 1/2 : FROM busybox\n ---> 0123456789ab\nStep 2/2 : RUN for i in 1 2 3 4 5 6 7 8 9; do echo line $i; done && echo a very long line of output that does not fit\n'));
  v.message(s(' ---> Running in abcdefabcdef\nline 1\nline 2\nline 3\nline 4\nline 5\nline 6\nli'));
  v.message(s('ne 7\nline 8\n'));
  tick(100);
  const f = v.frame();
  expect(f[2]).toBe(' => [2/2] RUN for i in 1 2 3 4 5 6… 0.1s');
  expect(f.slice(3)).toEqual([' => => line 3', ' => => line 4', ' => => line 5', ' => => line 6', ' => => line 7', ' => => line 8']);
  for (const l of f) expect(l.length).toBeLessThanOrEqual(40);
});

test('a short terminal shows the newest lines; redraws go up over the last frame and clear below; the end prints the rest', () => {
  const { v, writes } = view({ rows: 4 });
  for (let i = 1; i <= 5; i++) v.message(s(`Step ${i}/5 : ENV A=${i}\n ---> 0123456789ab\n`));
  v.draw();
  expect(writes[0]).toBe('\u001b[J' + v.frame().join('\n') + '\n');
  expect(v.frame()).toHaveLength(3);
  expect(v.frame()[2]).toContain('[5/5] ENV A=5');
  v.message(s('Successfully built 0123456789ab\n'));
  v.finish(true);
  expect(writes[1].startsWith('\u001b[3A\r\u001b[J[+] Building 0.0s (5/5) FINISHED\n')).toBe(true);
  // the finished view has every step; then the lines that were no step's
  expect(writes[1].split('\n')).toHaveLength(7);
  expect(writes[2]).toBe('Successfully built 0123456789ab\n');
});

test('a failure: the running step is marked and keeps its output', () => {
  const { v } = view();
  v.message(s('Step 1/2 : FROM busybox\n ---> 0123456789ab\nStep 2/2 : RUN exit 3\n ---> Running in abcdefabcdef\noops\n'));
  v.finish(false);
  expect(v.frame().slice(2)).toEqual([' => ERROR [2/2] RUN exit 3                              0.0s', ' => => oops']);
});

test('displayBuildStream: plain writes the text as it comes; tty draws the view; the error and aux are taken out', async () => {
  const lines = [{ stream: '[a] Step 1/1 : FROM busybox AS a\n' }, { aux: { ID: 'sha256:x' } }, { stream: '[a]  ---> 0123456789ab\n' }, { errorDetail: { code: 3, message: 'bad' }, error: 'bad' }].map(
    (m) => JSON.stringify(m) + '\r\n',
  );
  let text = '';
  const out = { write: (t: string) => ((text += t), true), columns: 60, rows: 20 } as unknown as NodeJS.WritableStream;
  const aux: unknown[] = [];
  await expect(displayBuildStream(Readable.from(lines), { mode: 'plain', out, onAux: (a) => aux.push(a) })).rejects.toMatchObject({ message: 'bad', code: 3 });
  expect(text).toBe('[a] Step 1/1 : FROM busybox AS a\n[a]  ---> 0123456789ab\n');
  expect(aux).toEqual([{ ID: 'sha256:x' }]);
  text = '';
  await expect(displayBuildStream(Readable.from(lines), { mode: 'tty', out })).rejects.toMatchObject({ message: 'bad' });
  expect(text).toMatch(/^\u001b\[J\[\+\] Building \d+\.\ds \(1\/1\) FINISHED\n => \[a 1\/1\] FROM busybox AS a +DONE \d\.\ds\n$/);
});
