// docker run on an attachable swarm network (net/attach.ts): the address a manager gives is the
// claim of "<node>/<name>", so a run reusing the name of a container already there (refused
// by the create with its name conflict) must not ask for it and then release it: the running
// container's address would be free for the next one (given twice).
import { createAttached, type AttachDeps } from '../../src/swarm/net/attach';
import type { SwarmNetworksApi } from '../../src/swarm/net/facade';
import type { NetworkAttachment } from '../../src/swarm/net/records';

function deps(existing: string[]) {
  const calls: string[] = [];
  const api = {
    role: () => 'worker',
    attach: async (net: string, name: string) => {
      calls.push(`attach ${net} ${name}`);
      return { Network: { ID: 'n1', Spec: { Name: 'att' } }, Addresses: ['10.0.5.3/24'] } as unknown as NetworkAttachment;
    },
    detach: async (net: string, name: string) => void calls.push(`detach ${net} ${name}`),
  } as unknown as SwarmNetworksApi;
  const d: AttachDeps = { api, findLocal: () => undefined, syncNow: async () => undefined, attaching: new Set(), exists: (n) => existing.includes(n) };
  return { d, calls };
}

const conflict = async (name: string | undefined): Promise<never> => {
  throw new Error(`Conflict. The container name "/${name}" is already in use`);
};

test('a name already in use: the create refuses it, the running container keeps its address', async () => {
  const { d, calls } = deps(['c1']);
  await expect(createAttached(d, 'c1', { HostConfig: { NetworkMode: 'att' } }, conflict)).rejects.toThrow('already in use');
  expect(calls).toEqual([]);
});

test('a new name: its address asked for, and released when the create fails', async () => {
  const { d, calls } = deps([]);
  let got: unknown;
  await createAttached(d, 'c2', { HostConfig: { NetworkMode: 'att' } }, async (_n, body) => (got = body));
  expect(calls).toEqual(['attach att c2']);
  expect(got).toMatchObject({ HostConfig: { NetworkMode: 'att' }, NetworkingConfig: { EndpointsConfig: { att: { IPAMConfig: { IPv4Address: '10.0.5.3' } } } } });
  await expect(createAttached(d, 'c3', { HostConfig: { NetworkMode: 'att' } }, conflict)).rejects.toThrow();
  expect(calls).toEqual(['attach att c2', 'attach att c3', 'detach n1 c3']);
});
