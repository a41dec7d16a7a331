// dockerode (npm) against skiffd: the lifecycle through its API, attach with a 200 hijack.
// Usage: SKIFF_SOCK=/path node dockerode-lifecycle.js — prints one JSON object of results.
'use strict';
const Docker = require('dockerode');
const { PassThrough } = require('node:stream');

const docker = new Docker({ socketPath: process.env.SKIFF_SOCK });

function collect(stream, modem) {
  const out = new PassThrough();
  const err = new PassThrough();
  const got = { out: '', err: '' };
  out.on('data', (d) => (got.out += d));
  err.on('data', (d) => (got.err += d));
  modem.demuxStream(stream, out, err);
  return got;
}

async function main() {
  const res = {};
  res.ping = (await docker.ping()).toString();
  const c = await docker.createContainer({
    Image: 'busybox',
    name: 'nodelife',
    Cmd: ['sh', '-c', 'read x; echo got $x; echo err >&2; while true; do echo tick; sleep 0.1; done'],
    OpenStdin: true,
    StdinOnce: false,
    Labels: { who: 'dockerode' },
  });
  // attach before start: dockerode sends no Upgrade header and gets a 200 hijacked stream
  const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
  const got = collect(stream, docker.modem);
  await c.start();
  stream.write('ping\n');
  for (let i = 0; i < 100 && !(got.out.includes('got ping') && got.err.includes('err')); i++) await new Promise((r) => setTimeout(r, 50));
  res.attach_out = got.out.split('tick')[0];
  res.attach_err = got.err;
  // without hijack (no Upgrade header): a plain 200 response carrying the stream
  const plain = await c.attach({ stream: true, stdout: true, stderr: true });
  res.plain_status = plain.statusCode;
  res.plain_type = plain.headers['content-type'];
  const pg = collect(plain, docker.modem);
  for (let i = 0; i < 50 && !pg.out.includes('tick'); i++) await new Promise((r) => setTimeout(r, 50));
  res.plain_out_has_tick = pg.out.includes('tick');
  plain.destroy();
  const info = await c.inspect();
  res.running = info.State.Running;
  res.name = info.Name;
  const ex = await c.exec({ Cmd: ['sh', '-c', 'echo in-exec; exit 5'], AttachStdout: true, AttachStderr: true });
  const es = await ex.start({ hijack: true, stdin: false });
  const eg = collect(es, docker.modem);
  await new Promise((r) => es.on('end', r));
  res.exec_out = eg.out;
  res.exec_exit = (await ex.inspect()).ExitCode;
  const logs = await c.logs({ stdout: true, stderr: true });
  res.logs_has_out = logs.toString().includes('got ping');
  res.listed = (await docker.listContainers({ filters: { label: ['who=dockerode'] } })).map((x) => x.Names[0]);
  await c.stop({ t: 1 });
  res.wait = await c.wait();
  res.stopped_status = (await c.inspect()).State.Status;
  stream.destroy();
  await c.remove();
  try {
    await docker.getContainer('nodelife').inspect();
    res.removed = false;
  } catch (e) {
    res.removed = e.statusCode === 404;
    res.notfound_msg = e.json && e.json.message;
  }
  process.stdout.write(JSON.stringify(res));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
