import { LABEL_AGENT } from '../src/executors/container/index.js';
import { defineConformanceSuite } from './conformance/suite.js';
import { checkEngine, containersLabelled, describeWithEngine, removeContainersOf, TEST_IMAGE } from './helpers/podman.js';

// The same suite against real containers (Podman in CI, through its Docker-compatible API); requests name the
// executor explicitly, on an agent that enables both.
const engine = await checkEngine();

describeWithEngine(engine, 'container executor (real engine)', () => {
  defineConformanceSuite(
    'container',
    ['--executors', 'container,local', '--docker-socket', engine.socket, '--container-image', TEST_IMAGE],
    { executor: 'container' },
    {
      leftovers: async (agent) => (await containersLabelled(engine.docker, LABEL_AGENT, agent.dataDir)).map((c) => c.Names?.[0] ?? c.Id),
      cleanup: (agent) => removeContainersOf(engine.docker, LABEL_AGENT, [agent.dataDir]),
    },
  );
});
