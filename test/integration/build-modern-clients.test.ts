// A Dockerfile written for BuildKit (syntax directive, heredocs in RUN and COPY, a cache mount,
// a bind mount from another stage, COPY --chmod and --link, the platform ARGs) built unchanged
// by the clients that reach the classic POST /build: docker-py (Debian's python3-docker) and
// docker-compose (Debian's 1.29, `build:` of a service). The resulting images' files, modes and
// history are checked through the API.
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon } from '../helpers/skiffd';

const execFileP = promisify(execFile);
const havePy = spawnSync('/usr/bin/python3', ['-c', 'import docker']).status === 0;
const haveCompose = which('docker-compose');

const DOCKERFILE = `# syntax=docker/dockerfile:1.7
FROM busybox AS gen
RUN <<EOF
mkdir -p /out
echo generated > /out/g
EOF

FROM busybox
ARG TARGETPLATFORM
ARG TARGETARCH
RUN --mount=type=cache,target=/var/cache/demo --mount=type=bind,from=gen,source=/out,target=/g <<EOF
set -e
cat /g/g > /from-gen
echo "$TARGETPLATFORM $TARGETARCH" > /platform
touch /var/cache/demo/seen
EOF
COPY --chmod=0750 --link app.sh /app/app.sh
COPY <<'NOTE' /app/note.txt
unexpanded $TARGETARCH
NOTE
CMD ["/app/app.sh"]
`;

describeIf(isRoot && distBuilt && (havePy || haveCompose), 'BuildKit Dockerfiles through docker-py and docker-compose (needs root, `make build`)', () => {
  let d: TestDaemon;
  let ctx: string;

  /** the image's files as a container sees them */
  const look = async (image: string): Promise<string> => {
    const r = await runClient('docker', ['run', '--rm', image, 'sh', '-c', 'cat /from-gen /platform /app/note.txt; stat -c "%a" /app/app.sh; ls /var/cache/demo 2>&1 | wc -l; /app/app.sh'], {
      ...process.env,
      DOCKER_HOST: d.host,
    });
    if (r.code !== 0) throw new Error(r.stderr);
    return r.stdout;
  };
  const expected = 'generated\nlinux/amd64 amd64\nunexpanded $TARGETARCH\n750\n1\napp-ran\n';

  beforeAll(async () => {
    d = await TestDaemon.start();
    ctx = path.join(d.dir, 'ctx');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), DOCKERFILE);
    fs.writeFileSync(path.join(ctx, 'app.sh'), '#!/bin/sh\necho app-ran\n', { mode: 0o644 });
  }, 30000);

  afterAll(async () => {
    if (d) await d.cleanup();
  }, 60000);

  (havePy ? test : test.skip)(
    'docker-py: client.images.build',
    async () => {
      const script = [
        'import docker, sys',
        'c = docker.from_env()',
        `img, logs = c.images.build(path=${JSON.stringify(ctx)}, tag="modern:py", rm=True)`,
        'print("".join(l.get("stream", "") for l in logs))',
        'print("ID", img.id)',
      ].join('\n');
      const { stdout } = await execFileP('/usr/bin/python3', ['-c', script], { env: { ...process.env, DOCKER_HOST: d.host }, timeout: 120000 });
      expect(stdout).toContain('[gen] Step');
      expect(stdout).toMatch(/ID sha256:[0-9a-f]{64}/);
      if (process.arch === 'x64') expect(await look('modern:py')).toBe(expected);
      const hist = (await d.request('GET', '/images/modern:py/history')).json as { CreatedBy: string }[];
      expect(hist.some((h) => h.CreatedBy.includes('COPY --chmod=0750'))).toBe(true);
    },
    150000,
  );

  (haveCompose ? test : test.skip)(
    'docker-compose build of a service',
    async () => {
      fs.writeFileSync(path.join(ctx, 'docker-compose.yml'), 'version: "3.8"\nservices:\n  app:\n    build: .\n    image: modern:compose\n');
      const r = await runClient(
        'docker-compose',
        ['-f', path.join(ctx, 'docker-compose.yml'), '-p', `modern${process.pid}`, 'build'],
        { ...process.env, DOCKER_HOST: d.host, COMPOSE_DOCKER_CLI_BUILD: '0', DOCKER_BUILDKIT: '0' },
        { timeoutMs: 150000 },
      );
      expect(r.code).toBe(0);
      if (process.arch === 'x64') expect(await look('modern:compose')).toBe(expected);
    },
    180000,
  );
});
