import Docker from 'dockerode';
import { describe, it } from 'vitest';
import { describeAddress, dockerFor, resolveEngineAddress, type EngineAddress } from '../../src/executors/container/engine.js';

/** The image the container tests run: .ci/run imports it from the host's busybox, without a registry. */
export const TEST_IMAGE = process.env.PROCFILE_AGENT_TEST_IMAGE ?? 'localhost/busybox:latest';

/**
 * In CI the container tests must run: a missing engine there is a failure, never a silent skip.
 * `.ci/run` sets PROCFILE_AGENT_REQUIRE_ENGINE=1; CI systems set CI=true.
 */
export const ENGINE_REQUIRED =
  process.env.PROCFILE_AGENT_REQUIRE_ENGINE === '1' || (process.env.CI !== undefined && !['', '0', 'false'].includes(process.env.CI));

export interface EngineCheck {
  usable: boolean;
  /** Why not, when not usable. */
  reason: string;
  address: EngineAddress;
  /** For `--docker-socket`. */
  socket: string;
  docker: Docker;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref())]);
}

/** Same engine resolution as the agent (`DOCKER_HOST`, Docker's socket, Podman's); usable = it answers and has the image. */
export async function checkEngine(): Promise<EngineCheck> {
  const address = resolveEngineAddress(undefined);
  const socket = 'socketPath' in address ? address.socketPath : describeAddress(address);
  const docker = dockerFor(address);
  const base = { address, socket, docker };
  try {
    await withTimeout(docker.ping(), 5000, 'ping');
  } catch (err) {
    return { ...base, usable: false, reason: `no container engine answers at ${describeAddress(address)} (${(err as Error).message}); run .ci/run or see /work/shared/ci/podman.md` };
  }
  try {
    await withTimeout(docker.getImage(TEST_IMAGE).inspect(), 5000, 'image inspect');
  } catch (err) {
    return { ...base, usable: false, reason: `the engine at ${describeAddress(address)} has no image ${TEST_IMAGE} (${(err as Error).message}); .ci/run imports it` };
  }
  return { ...base, usable: true, reason: '' };
}

/**
 * `describe` that runs only with a usable engine: locally it is skipped with a visible warning; where the engine is
 * required (CI) an unusable engine is one failing test that says why.
 */
export function describeWithEngine(engine: EngineCheck, name: string, body: () => void): void {
  if (!engine.usable) {
    console.warn(`[container tests] skipping "${name}": ${engine.reason}`);
    if (ENGINE_REQUIRED) {
      describe(name, () => {
        it('needs a usable container engine (required in CI)', () => {
          throw new Error(engine.reason);
        });
      });
      return;
    }
  }
  describe.skipIf(!engine.usable)(name, body);
}

/** Every container (running or not) labelled `label=value`. */
export async function containersLabelled(docker: Docker, label: string, value: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${label}=${value}`] } });
}

/** Test hygiene after a failure (agents are SIGKILLed in afterAll): removes what those agents' containers left. */
export async function removeContainersOf(docker: Docker, label: string, values: Iterable<string>): Promise<void> {
  for (const value of values) {
    for (const info of await containersLabelled(docker, label, value).catch(() => [])) {
      await docker.getContainer(info.Id).remove({ force: true }).catch(() => undefined);
    }
  }
}
