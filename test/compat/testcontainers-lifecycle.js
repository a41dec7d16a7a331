// testcontainers (npm) against skiffd, as a test suite would use it: a container with an exposed
// port and a wait strategy, files copied in, exec, logs, restart, a network with aliases.
// Usage: DOCKER_HOST=unix:///path node testcontainers-lifecycle.js — prints one JSON object.
// Ryuk (the reaper container) is off: it is pulled from Docker Hub, and these machines are offline.
'use strict';
process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
const http = require('node:http');
const { GenericContainer, Network, Wait } = require('testcontainers');

const get = (port) =>
  new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/' }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      })
      .on('error', reject);
  });

async function main() {
  const res = {};
  // the default wait strategy checks the port from the host and, by exec, from inside
  const web = await new GenericContainer('busybox')
    .withCommand(['sh', '-c', 'echo "$GREETING" > /www/index.html; echo serving; exec httpd -f -p 8080 -h /www'])
    .withCopyContentToContainer([{ content: 'from the host\n', target: '/www/copied.txt' }])
    .withEnvironment({ GREETING: 'hello from testcontainers' })
    .withLabels({ suite: 'tc' })
    .withExposedPorts(8080)
    .withStartupTimeout(20000)
    .start();
  const port = web.getMappedPort(8080);
  res.host = web.getHost();
  res.http = await get(port);
  res.copied = (await web.exec(['cat', '/www/copied.txt'])).output;
  const failing = await web.exec(['sh', '-c', 'echo oops >&2; exit 3']);
  res.exec_fail = { exitCode: failing.exitCode, stderr: failing.stderr };
  res.label = web.getLabels().suite;
  res.name_ok = /^\/?[a-z0-9-]+/.test(web.getName());
  const logs = await web.logs();
  res.logs = await new Promise((resolve) => {
    let s = '';
    logs.on('data', (d) => {
      s += d;
      if (s.includes('serving')) resolve(s.trim());
    });
    setTimeout(() => resolve(s.trim()), 5000);
  });
  await web.restart();
  res.after_restart = (await get(web.getMappedPort(8080))).status;

  // a network with aliases: one container reaches the other by its alias
  const net = await new Network().start();
  const server = await new GenericContainer('busybox')
    .withCommand(['sh', '-c', 'echo pong > /index.html; echo up; exec httpd -f -p 80 -h /'])
    .withNetwork(net)
    .withNetworkAliases('backend')
    .withWaitStrategy(Wait.forLogMessage('up'))
    .start();
  const client = await new GenericContainer('busybox').withCommand(['sleep', '300']).withNetwork(net).start();
  res.by_alias = (await client.exec(['wget', '-q', '-O', '-', 'http://backend/'])).output;
  await client.stop({ timeout: 1 });
  await server.stop({ timeout: 1 });
  await net.stop();

  // an image built from a Dockerfile (POST /build with the folder as a tar), then run
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const ctxDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tc-build-'));
  try {
    fs.writeFileSync(
      path.join(ctxDir, 'Dockerfile'),
      'FROM busybox\nARG WHO=nobody\nCOPY hello.txt /hello.txt\nRUN echo "built for $WHO" >> /hello.txt\nCMD ["sh", "-c", "cat /hello.txt; sleep 300"]\n',
    );
    fs.writeFileSync(path.join(ctxDir, 'hello.txt'), 'hello from the context\n');
    const built = await GenericContainer.fromDockerfile(ctxDir).withBuildArgs({ WHO: 'testcontainers' }).build('tc-built:1', { deleteOnExit: false });
    const b = await built.withWaitStrategy(Wait.forLogMessage('built for')).start();
    res.built = (await b.exec(['cat', '/hello.txt'])).output;
    await b.stop({ timeout: 1 });
  } finally {
    fs.rmSync(ctxDir, { recursive: true, force: true });
  }

  const stopped = await web.stop({ timeout: 1 });
  res.stopped = typeof stopped.getId === 'function';
  process.stdout.write(JSON.stringify(res));
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  },
);
