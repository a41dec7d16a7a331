// swarmkit's filterMatchLabels (manager/controlapi/common.go), as the node, secret and config
// lists use it: a key alone or "k=" needs the key; "k=v" needs the value too.
import { swarmLabelsMatch } from '../../src/core/labels';

describe('swarmLabelsMatch', () => {
  const labels = { env: 'prod', tier: '' };
  it.each([
    [['env'], true],
    [['env='], true],
    [['env=prod'], true],
    [['env=dev'], false],
    [['tier'], true],
    [['missing'], false],
    [['missing='], false],
    [['env=prod', 'tier'], true],
    [['env=prod', 'missing'], false],
    [[], true],
  ])('%j -> %s', (wanted, ok) => {
    expect(swarmLabelsMatch(labels, wanted)).toBe(ok);
  });
  it('does not take inherited keys for labels', () => {
    expect(swarmLabelsMatch({}, ['constructor'])).toBe(false);
  });
});
