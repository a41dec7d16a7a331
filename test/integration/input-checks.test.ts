// Values dockerd refuses (with its status and message) and hostile inputs that must get a clear
// 4xx instead of a 500 or a clean-up error: each case says what of moby (or runc, containerd) it
// matches. One daemon for the API cases; the runtime's failed-create clean-up has its own.
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon } from '../helpers/skiffd';

describeIf(isRoot && distBuilt, 'inputs dockerd refuses, hostile inputs: 4xx with its messages (needs `make build`)', () => {
  let d: TestDaemon;
  let runId = '';

  const create = (body: Record<string, unknown>) => d.request('POST', '/containers/create', { body: { Image: 'busybox', Cmd: ['true'], ...body } });
  const hc = (h: Record<string, unknown>) => ({ HostConfig: h });

  beforeAll(async () => {
    d = await TestDaemon.start();
    const r = await d.request('POST', '/containers/create?name=chk-run', { body: { Image: 'busybox', Cmd: ['sleep', '1000'], StopTimeout: 1 } });
    runId = r.json.Id as string;
    expect((await d.request('POST', `/containers/${runId}/start`)).status).toBe(204);
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  // ---- values refused at create, exec create and attach

  test('ExtraHosts: moby opts.ValidateExtraHost at create ("name:ip" split at the first colon, ip or host-gateway)', async () => {
    const bad: [string, string][] = [
      ['foo', 'bad format for add-host: "foo"'],
      [':1.2.3.4', 'bad format for add-host: ":1.2.3.4"'],
      ['foo:', 'invalid IP address in add-host: ""'],
      ['foo:1.2.3', 'invalid IP address in add-host: "1.2.3"'],
      ['foo:bar', 'invalid IP address in add-host: "bar"'],
      ['foo:fe80::1%eth0', 'invalid IP address in add-host: "fe80::1%eth0"'],
    ];
    for (const [h, message] of bad) {
      const r = await create(hc({ ExtraHosts: [h] }));
      expect({ h, status: r.status, message: r.json?.message }).toEqual({ h, status: 400, message });
    }
    const ok = await create(hc({ ExtraHosts: ['v4:10.1.2.3', 'v6:::1', 'gw:host-gateway'] }));
    expect(ok.status).toBe(201);
    await d.request('DELETE', `/containers/${ok.json.Id}`);
  });

  test('MemorySwap without Memory: moby verifyPlatformContainerResources at create', async () => {
    const r = await create(hc({ MemorySwap: 100 << 20 }));
    expect({ status: r.status, message: r.json?.message }).toEqual({ status: 400, message: 'You should always set the Memory limit when using Memoryswap limit, see usage' });
    const unlimited = await create(hc({ MemorySwap: -1 }));
    expect(unlimited.status).toBe(201);
    await d.request('DELETE', `/containers/${unlimited.json.Id}`);
  });

  test('detach keys as moby/term ToBytes reads them: attach 400 "Invalid detach keys", exec create "Invalid escape keys"', async () => {
    // attach: moby's ContainerAttach checks the keys before it looks the container up (InvalidParameter)
    for (const keys of ['CTRL-P', 'ctrl-pp', 'ctrl-p,', 'é']) {
      const r = await d.request('POST', `/containers/${runId}/attach?stream=1&stdout=1&detachKeys=${encodeURIComponent(keys)}`);
      expect({ keys, status: r.status, message: r.json?.message }).toEqual({ keys, status: 400, message: `Invalid detach keys (${keys}) provided` });
    }
    const unknown = await d.request('POST', '/containers/nope/attach?stream=1&detachKeys=ctrl-x,x1');
    expect({ status: unknown.status, message: unknown.json?.message }).toEqual({ status: 400, message: 'Invalid detach keys (ctrl-x,x1) provided' });
    // exec create: moby's ContainerExecCreate words it "escape keys" (as an untyped error, a 500 there)
    const bad = await d.request('POST', `/containers/${runId}/exec`, { body: { Cmd: ['true'], DetachKeys: 'ctrl-p,foo' } });
    expect({ status: bad.status, message: bad.json?.message }).toEqual({ status: 400, message: 'Invalid escape keys (ctrl-p,foo) provided' });
    const ok = await d.request('POST', `/containers/${runId}/exec`, { body: { Cmd: ['true'], DetachKeys: 'ctrl-p,q,DEL,ctrl-\\,ctrl-@' } });
    expect(ok.status).toBe(201);
  });

  // ---- 500s that are the client's fault

  test('bridge MTU: moby bridge driver parse errors and "invalid MTU number" (400); one the kernel refuses is a 400 too, nothing made', async () => {
    const before = (await d.request('GET', '/networks')).json.length as number;
    const cases: [string, string][] = [
      ['-1', 'invalid MTU number: -1'],
      ['67', 'invalid MTU number: 67'],
      ['65536', 'invalid MTU number: 65536'],
      ['abc', 'failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing "abc": invalid syntax)'],
    ];
    for (const [mtu, message] of cases) {
      const r = await d.request('POST', '/networks/create', { body: { Name: `chk-mtu-${mtu}`, Options: { 'com.docker.network.driver.mtu': mtu } } });
      expect({ mtu, status: r.status, message: r.json?.message }).toEqual({ mtu, status: 400, message });
    }
    expect((await d.request('GET', '/networks')).json.length).toBe(before);
    const ok = await d.request('POST', '/networks/create', { body: { Name: 'chk-mtu-68', Options: { 'com.docker.network.driver.mtu': '68' } } });
    expect(ok.status).toBe(201);
    expect((await d.request('DELETE', `/networks/${ok.json.Id}`)).status).toBe(204);
  });
});
