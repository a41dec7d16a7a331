// Unit tests need no root; integration tests run as root on the real kernel.
// Integration files run one at a time (--runInBand in the Makefile) because they share cgroups and the CPU.
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', isolatedModules: true }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testTimeout: 60000,
};
