import { afterAll } from 'vitest';
import { META_AGENT } from '../src/executors/fly/index.js';
import { defineConformanceSuite } from './conformance/suite.js';
import { startFlySim } from './fly-sim/server.js';

// The same suite against the Fly Machines API simulator (test/fly-sim): each child is a simulated machine whose
// init command really runs as a local process group, fetching the source from the suite's fixture server itself.
const sim = await startFlySim();
// The suite's agents inherit this process's environment: that is how they get the token.
process.env.FLY_API_TOKEN = sim.token;
afterAll(() => sim.close());

defineConformanceSuite(
  'fly',
  ['--executors', 'fly,local', '--fly-api-url', sim.apiUrl, '--fly-logs-url', sim.logsUrl, '--fly-app', sim.app, '--fly-image', 'sim/busybox:latest'],
  { executor: 'fly' },
  {
    mergedOutput: true,
    skip: { 'stdin: console text frames reach the child, one line each': 'Fly machines have no stdin: the Machines API offers no way to write to a machine\'s process' },
    leftovers: async (agent) =>
      [...sim.machines.values()].filter((m) => m.state !== 'destroyed' && m.config.metadata?.[META_AGENT] === agent.dataDir).map((m) => `${m.id} (${m.state})`),
  },
);
