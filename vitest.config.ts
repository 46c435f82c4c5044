import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests spawn real agents and children; give conditions time to come true under load.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
