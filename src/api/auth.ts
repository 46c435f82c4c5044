import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { Middleware } from 'koa';
import { AgentError } from '../errors.js';

/** The browser form of the WebSocket credential: `new WebSocket(url, ['bearer', token])` (see docs/security.md). */
export const BEARER_PROTOCOL = 'bearer';
const BEARER_PROTOCOL_PREFIX = 'bearer.';

/** A token travels in a header and (for browsers) as a WebSocket subprotocol: visible ASCII, no spaces or commas. */
const TOKEN_CHARS = /^[\x21-\x2b\x2d-\x7e]+$/;
/** Shorter tokens are accepted (tests, loopback use) but logged as a warning: 16 characters is ~96 bits at best. */
export const WEAK_TOKEN_LENGTH = 16;

/**
 * Constant-time comparison of a presented token with an expected one. Both are hashed first, so the comparison
 * always runs over two 32-byte digests: neither the content nor the length of the expected token leaks through
 * timing (timingSafeEqual itself throws on different lengths, which would leak the length).
 */
export function tokensEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** `Authorization: Bearer <token>` (scheme case-insensitive, RFC 7235); anything else is no credential. */
export function bearerFromAuthorization(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match?.[1];
}

/**
 * The browser form: browsers cannot set headers on a WebSocket, only subprotocols. Accepted as the pair
 * `bearer, <token>` (the server selects `bearer`) or as one `bearer.<token>` protocol (the server selects it as is).
 */
export function bearerFromProtocols(header: string | undefined): { token: string; select: string } | undefined {
  if (!header) return undefined;
  const offered = header
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const at = offered.findIndex((p) => p.toLowerCase() === BEARER_PROTOCOL);
  if (at !== -1 && offered[at + 1] !== undefined) return { token: offered[at + 1]!, select: offered[at]! };
  const dotted = offered.find((p) => p.toLowerCase().startsWith(BEARER_PROTOCOL_PREFIX) && p.length > BEARER_PROTOCOL_PREFIX.length);
  if (dotted) return { token: dotted.slice(BEARER_PROTOCOL_PREFIX.length), select: dotted };
  return undefined;
}

export type AuthResult = { ok: true; protocol?: string } | { ok: false; reason: 'missing' | 'invalid' };

/** The agent's bearer tokens (several, so one can be rotated without downtime); none means auth is off. */
export class TokenAuth {
  private readonly tokens: readonly string[];

  constructor(tokens: readonly string[] = []) {
    for (const token of tokens) checkTokenSyntax(token);
    this.tokens = [...tokens];
  }

  get enabled(): boolean {
    return this.tokens.length > 0;
  }

  /** Compares against every configured token without stopping early, so timing does not tell which one matched. */
  accepts(presented: string): boolean {
    let ok = false;
    for (const token of this.tokens) ok = tokensEqual(presented, token) || ok;
    return ok;
  }

  /** Authorization header first; for WebSocket upgrades also the subprotocol form. */
  check(headers: IncomingHttpHeaders, options: { websocket?: boolean } = {}): AuthResult {
    if (!this.enabled) return { ok: true };
    const header = bearerFromAuthorization(single(headers.authorization));
    if (header !== undefined) return this.accepts(header) ? { ok: true } : { ok: false, reason: 'invalid' };
    if (options.websocket) {
      const fromProtocol = bearerFromProtocols(single(headers['sec-websocket-protocol']));
      if (fromProtocol) {
        return this.accepts(fromProtocol.token) ? { ok: true, protocol: fromProtocol.select } : { ok: false, reason: 'invalid' };
      }
    }
    return { ok: false, reason: 'missing' };
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function checkTokenSyntax(token: string): void {
  if (token === '') throw new AgentError('invalid_token_config', 'the token is empty', 500);
  if (!TOKEN_CHARS.test(token)) {
    throw new AgentError(
      'invalid_token_config',
      'the token must be printable ASCII without spaces or commas (it travels in headers); e.g. `openssl rand -hex 32`',
      500,
    );
  }
}

/** `WWW-Authenticate` value of a 401 (RFC 6750 §3). */
export function challenge(reason: 'missing' | 'invalid'): string {
  return reason === 'invalid' ? 'Bearer realm="procfile-agent", error="invalid_token"' : 'Bearer realm="procfile-agent"';
}

export function unauthorized(reason: 'missing' | 'invalid'): AgentError {
  return new AgentError(
    'unauthorized',
    reason === 'invalid' ? 'the bearer token is not valid' : 'this agent requires "Authorization: Bearer <token>"',
    401,
  );
}

/** Paths answered without a token: liveness probes. /healthz then shows only `{"status"}` (see ops-routes.ts). */
const OPEN_PATHS = new Set(['/healthz']);

/**
 * Every route needs the token when one is configured, unknown paths included (so an unauthenticated client
 * cannot even map the routes). `ctx.state.authenticated` tells open routes whether to show details.
 */
export function requireAuth(auth: TokenAuth): Middleware {
  return async (ctx, next) => {
    const result = auth.check(ctx.req.headers);
    ctx.state.authenticated = result.ok;
    if (!result.ok && !OPEN_PATHS.has(ctx.path)) {
      ctx.set('WWW-Authenticate', challenge(result.reason));
      ctx.state.log?.warn({ reason: result.reason }, 'unauthorized request');
      throw unauthorized(result.reason);
    }
    await next();
  };
}

/** Tokens from `--token`, `--token-file` (one per line, `#` comments) and PROCFILE_AGENT_TOKEN, in that order. */
export function collectTokens(options: { token?: string | undefined; tokenFile?: string | undefined; env?: NodeJS.ProcessEnv }): string[] {
  const tokens: string[] = [];
  if (options.token !== undefined) tokens.push(options.token);
  if (options.tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.tokenFile, 'utf8');
    } catch (err) {
      throw new AgentError('invalid_token_config', `cannot read --token-file ${options.tokenFile}: ${(err as Error).message}`, 500);
    }
    const lines = text
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    if (lines.length === 0) throw new AgentError('invalid_token_config', `--token-file ${options.tokenFile} holds no token`, 500);
    tokens.push(...lines);
  }
  const fromEnv = options.env?.PROCFILE_AGENT_TOKEN;
  if (tokens.length === 0 && fromEnv !== undefined && fromEnv !== '') tokens.push(fromEnv.trim());
  for (const token of tokens) checkTokenSyntax(token);
  return tokens;
}

/** `localhost`, 127.0.0.0/8, ::1 and IPv4-mapped loopback; `0.0.0.0`, `::` and every other name are exposed. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    // The URL parser canonicalises IPv6 (`0:0::1` → `::1`, `::ffff:127.0.0.1` → `::ffff:7f00:1`).
    const canonical = new URL(`http://[${h}]/`).hostname.slice(1, -1);
    return canonical === '::1' || /^::ffff:7f[0-9a-f]{2}:/.test(canonical);
  }
  return false;
}

/** Binding beyond loopback without a token hands anyone on the network a remote shell: refused unless --insecure. */
export function checkBindSafety(host: string, auth: TokenAuth, insecure: boolean): void {
  if (auth.enabled || insecure || isLoopbackHost(host)) return;
  throw new AgentError(
    'insecure_bind',
    `refusing to listen on ${host} without a token: anyone who can reach it could run commands on this machine. ` +
      'Set --token-file FILE (or PROCFILE_AGENT_TOKEN, or --token), or pass --insecure if something else ' +
      '(a firewall, an authenticating proxy) protects this address.',
    500,
  );
}
