import { describe, expect, it } from 'vitest';
import { containerNameFor } from '../src/executors/container/container-executor.js';
import { engineError, parseEngineAddress, resolveEngineAddress } from '../src/executors/container/engine.js';
import { defaultPublishHost, enabledExecutorNames } from '../src/executors/registry.js';

// The container executor's pure parts; its behaviour against a real engine is in container.test.ts and conformance.
const address = { socketPath: '/run/podman/podman.sock' };

describe('engine address', () => {
  it('parses socket paths, unix:// and tcp:// addresses', () => {
    expect(parseEngineAddress('/var/run/docker.sock')).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(parseEngineAddress('unix:///run/podman/podman.sock')).toEqual({ socketPath: '/run/podman/podman.sock' });
    expect(parseEngineAddress('tcp://10.0.0.5:2375')).toEqual({ host: '10.0.0.5', port: 2375 });
    expect(parseEngineAddress('tcp://[::1]')).toEqual({ host: '::1', port: 2375 });
    expect(() => parseEngineAddress('ssh://user@host')).toThrow(/unsupported engine address/);
  });

  it('prefers the flag, then DOCKER_HOST', () => {
    expect(resolveEngineAddress('/a.sock', { DOCKER_HOST: 'unix:///b.sock' })).toEqual({ socketPath: '/a.sock' });
    expect(resolveEngineAddress(undefined, { DOCKER_HOST: 'unix:///b.sock' })).toEqual({ socketPath: '/b.sock' });
  });
});

describe('engine errors', () => {
  it('a missing socket is engine_unreachable, naming the socket', () => {
    const err = engineError(Object.assign(new Error('connect ENOENT /nope.sock'), { code: 'ENOENT' }), { address: { socketPath: '/nope.sock' }, action: 'create container x' });
    expect(err.code).toBe('engine_unreachable');
    expect(err.message).toContain('/nope.sock');
  });

  it('a 404 about the image on create is image_not_found', () => {
    const failure = Object.assign(new Error('(HTTP code 404) no such container - no such image'), {
      statusCode: 404,
      json: { message: 'no such image: localhost/x:1: image not known' },
    });
    const err = engineError(failure, { address, action: 'create container x', image: 'localhost/x:1' });
    expect(err.code).toBe('image_not_found');
    expect(err.message).toMatch(/^image 'localhost\/x:1' is not on the container engine/);
  });

  it("Podman's 500 for a taken name is container_name_conflict; anything else keeps the engine's message", () => {
    const conflict = Object.assign(new Error('x'), { statusCode: 500, json: { message: 'the container name "a" is already in use by abc' } });
    expect(engineError(conflict, { address, action: 'create container a' }).code).toBe('container_name_conflict');
    const other = Object.assign(new Error('x'), { statusCode: 500, json: { message: 'port 5000 is already allocated' } });
    const err = engineError(other, { address, action: 'start container a' });
    expect(err.code).toBe('container_engine_error');
    expect(err.message).toBe('start container a failed (HTTP 500): port 5000 is already allocated');
  });
});

describe('executor registry', () => {
  it('enables the default executor, others on request, and refuses unknown names', () => {
    expect(enabledExecutorNames({ defaultExecutor: 'local' })).toEqual(['local']);
    expect(enabledExecutorNames({ defaultExecutor: 'container', executors: ['local', 'container'] })).toEqual(['container', 'local']);
    expect(() => enabledExecutorNames({ defaultExecutor: 'local', executors: ['container'] })).toThrow(/not among the enabled/);
    expect(() => enabledExecutorNames({ defaultExecutor: 'local', executors: ['local', 'kubernetes'] })).toThrow(/unknown executor 'kubernetes'/);
  });

  it('publishes on the agent host when it is an IP, else on loopback; names are slug + random suffix', () => {
    expect(defaultPublishHost('0.0.0.0')).toBe('0.0.0.0');
    expect(defaultPublishHost('localhost')).toBe('127.0.0.1');
    expect(containerNameFor('web.w1')).toMatch(/^web\.w1-[0-9a-f]{8}$/);
    expect(containerNameFor('web.w1')).not.toBe(containerNameFor('web.w1'));
  });
});
