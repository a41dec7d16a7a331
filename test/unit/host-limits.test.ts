import { defaultUlimitsFrom } from '../../src/runtime/host-limits';

const limits = (hard: string) => `Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 ${hard}                files\n`;

test('nofile 1048576 when the daemon may raise limits', () => {
  expect(defaultUlimitsFrom(limits('20000'), 'CapEff:\t000001ffffffffff\n', 1048576)).toEqual([{ Name: 'nofile', Soft: 1048576, Hard: 1048576 }]);
});

test("without CAP_SYS_RESOURCE the daemon's own hard limit is the ceiling", () => {
  expect(defaultUlimitsFrom(limits('20000'), 'CapEff:\t000001fffeffffff\n', 1048576)).toEqual([{ Name: 'nofile', Soft: 20000, Hard: 20000 }]);
});

test('never above fs.nr_open', () => {
  expect(defaultUlimitsFrom(limits('unlimited'), 'CapEff:\t000001ffffffffff\n', 65536)).toEqual([{ Name: 'nofile', Soft: 65536, Hard: 65536 }]);
});
