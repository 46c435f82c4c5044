import { existsSync } from 'node:fs';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import { AgentError, messageOf } from '../../errors.js';

/** Where the Docker Engine API answers: a unix socket, or plain HTTP on host:port (`DOCKER_HOST=tcp://…`, no TLS). */
export type EngineAddress = { socketPath: string } | { host: string; port: number };

import { DOCKER_SOCKET, PODMAN_SOCKET } from './defaults.js';
export { DOCKER_SOCKET, PODMAN_SOCKET };

/**
 * `--docker-socket` when given; else `DOCKER_HOST` when set; else Docker's socket when it exists; else Podman's
 * rootful socket (which may not exist yet: starts then fail with `engine_unreachable`, the agent stays up).
 */
export function resolveEngineAddress(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): EngineAddress {
  const given = flag ?? env.DOCKER_HOST;
  if (given) return parseEngineAddress(given);
  return { socketPath: existsSync(DOCKER_SOCKET) ? DOCKER_SOCKET : PODMAN_SOCKET };
}

/** `/path`, `unix:///path` or `tcp://host:port` (`http://` is accepted as a synonym of `tcp://`). */
export function parseEngineAddress(value: string): EngineAddress {
  if (value.startsWith('unix://')) return { socketPath: value.slice('unix://'.length) };
  const tcp = /^(?:tcp|http):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(value);
  if (tcp) return { host: tcp[1]!.replace(/^\[|\]$/g, ''), port: Number(tcp[2] ?? 2375) };
  if (value.includes('://')) {
    throw new AgentError('invalid_config', `unsupported engine address '${value}' (use a socket path, unix:///path or tcp://host:port)`, 400);
  }
  return { socketPath: value };
}

export function describeAddress(address: EngineAddress): string {
  return 'socketPath' in address ? address.socketPath : `tcp://${address.host}:${address.port}`;
}

export function dockerFor(address: EngineAddress): Docker {
  return 'socketPath' in address ? new Docker({ socketPath: address.socketPath }) : new Docker({ host: address.host, port: address.port, protocol: 'http' });
}

/**
 * Attaches to a container's stdin, stdout and stderr on a raw upgraded connection.
 * dockerode's own `attach({hijack, stdin})` sends its options as a JSON request body, and Podman forwards those
 * bytes to the container's stdin (or, with a chunked empty body, never answers); an upgrade with
 * `Content-Length: 0` is what both engines expect.
 */
export function attachRaw(address: EngineAddress, containerId: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      ...('socketPath' in address ? { socketPath: address.socketPath } : { host: address.host, port: address.port }),
      method: 'POST',
      path: `/containers/${encodeURIComponent(containerId)}/attach?stream=1&stdin=1&stdout=1&stderr=1`,
      headers: { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Length': '0', Host: 'docker' },
    });
    req.once('upgrade', (_res, socket, head) => {
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        let message = body.trim();
        try {
          message = (JSON.parse(body) as { message?: string }).message ?? message;
        } catch {
          // plain text
        }
        reject(Object.assign(new Error(message || `attach answered ${res.statusCode}`), { statusCode: res.statusCode, json: { message } }));
      });
    });
    req.once('error', reject);
    req.end();
  });
}

interface EngineFailure {
  code?: string;
  statusCode?: number;
  json?: { message?: string; cause?: string } | string | null;
  message?: string;
}

const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTSOCK', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ETIMEDOUT', 'ENOTFOUND']);

/** The engine's own message (JSON `message`), without dockerode's "(HTTP code 404) unexpected - " prefix. */
export function engineMessage(err: unknown): string {
  const failure = err as EngineFailure;
  const json = failure?.json;
  if (json && typeof json === 'object' && json.message) return json.message;
  if (typeof json === 'string' && json.trim()) return json.trim();
  return messageOf(err).replace(/^\(HTTP code \d+\)\s*[\w ]*-\s*/, '').trim();
}

export interface EngineErrorContext {
  address: EngineAddress;
  /** What the agent was doing: "create container", "start container"… */
  action: string;
  image?: string;
}

/** Turns whatever dockerode threw into an AgentError with a stable code (docs/executors.md#errors). */
export function engineError(err: unknown, ctx: EngineErrorContext): AgentError {
  if (err instanceof AgentError) return err;
  const failure = (err ?? {}) as EngineFailure;
  const where = describeAddress(ctx.address);
  if (failure.code && UNREACHABLE.has(failure.code)) {
    return new AgentError(
      'engine_unreachable',
      `container engine not reachable at ${where} (${failure.code}): is Docker, or 'podman system service', running there?`,
      503,
      { cause: err },
    );
  }
  const message = engineMessage(err);
  const status = failure.statusCode;
  if (ctx.image && status === 404 && /image/i.test(message)) {
    return new AgentError(
      'image_not_found',
      `image '${ctx.image}' is not on the container engine at ${where}; the agent never pulls: pull, load or import it first (${message})`,
      500,
      { cause: err },
    );
  }
  if (status === 409 || (status === 500 && /already in use|name is in use|conflict/i.test(message))) {
    return new AgentError('container_name_conflict', `${ctx.action}: container name conflict (${message})`, 500, { cause: err });
  }
  return new AgentError('container_engine_error', `${ctx.action} failed${status ? ` (HTTP ${status})` : ''}: ${message}`, 500, { cause: err });
}
