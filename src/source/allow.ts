import { AgentError } from '../errors.js';
import { redactUrl } from './url.js';

/** Decides whether a source URL (or a redirect target) may be fetched. */
export type SourceAllowList = (url: URL) => boolean;

interface Pattern {
  scheme: RegExp | null;
  host: RegExp;
  port: RegExp | null;
}

function glob(text: string): RegExp {
  const body = text
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'i');
}

/**
 * One `--allow-source` pattern: `[scheme://]host[:port]`, where `*` matches any run of characters (dots
 * included, so `*.example.com` covers every subdomain) and `?` one character. No port means any port; no scheme
 * means http and https. IPv6 hosts are written in brackets: `[::1]:*`.
 */
export function parseAllowPattern(raw: string): Pattern {
  let rest = raw.trim();
  if (rest === '') throw new AgentError('invalid_config', 'an --allow-source pattern is empty', 500);
  let scheme: RegExp | null = null;
  const schemeMatch = /^([a-z*?]+):\/\//i.exec(rest);
  if (schemeMatch) {
    scheme = glob(schemeMatch[1]!);
    rest = rest.slice(schemeMatch[0].length);
  }
  rest = rest.replace(/\/$/, '');
  if (rest.includes('/') || rest.includes('@')) {
    throw new AgentError('invalid_config', `--allow-source pattern ${JSON.stringify(raw)}: only [scheme://]host[:port] is allowed`, 500);
  }
  let host = rest;
  let port: RegExp | null = null;
  const v6 = /^(\[[^\]]*\])(?::([0-9*?]+))?$/.exec(rest);
  const named = /^([^:[\]]+)(?::([0-9*?]+))?$/.exec(rest);
  const match = v6 ?? named;
  if (!match) throw new AgentError('invalid_config', `--allow-source pattern ${JSON.stringify(raw)} is not [scheme://]host[:port]`, 500);
  host = match[1]!;
  if (match[2] !== undefined) port = glob(match[2]);
  return { scheme, host: glob(host.toLowerCase()), port };
}

/** The allow list of `--allow-source`, or undefined (everything http/https is allowed) when no pattern is given. */
export function compileAllowList(patterns: readonly string[] | undefined): SourceAllowList | undefined {
  if (!patterns || patterns.length === 0) return undefined;
  const compiled = patterns.map(parseAllowPattern);
  return (url: URL) => {
    const scheme = url.protocol.replace(/:$/, '');
    const port = url.port || (scheme === 'https' ? '443' : '80');
    const host = url.hostname.toLowerCase();
    return compiled.some((p) => (p.scheme ? p.scheme.test(scheme) : true) && p.host.test(host) && (p.port ? p.port.test(port) : true));
  };
}

/** Thrown when a URL the agent was about to fetch (the source_url itself, or where it redirects) is not allowed. */
export function notAllowedError(url: URL, redirectedFrom?: URL): AgentError {
  const via = redirectedFrom ? ` (redirected from ${redactUrl(redirectedFrom)})` : '';
  return new AgentError('download_not_allowed', `GET ${redactUrl(url)}${via}: host ${url.host} is not allowed by --allow-source`, 403);
}
