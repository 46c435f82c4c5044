import { sourceError } from './errors.js';

/** Parses a source URL, accepting only http and https (got would also refuse others, but less clearly). */
export function parseSourceUrl(raw: unknown): URL {
  if (typeof raw !== 'string' || raw.trim() === '') {
    throw sourceError('source_url_invalid', 'source_url must be a non-empty http or https URL');
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw sourceError('source_url_invalid', `source_url is not a valid URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw sourceError('source_url_invalid', `source_url must use http or https, not ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.hostname === '') {
    throw sourceError('source_url_invalid', `source_url has no host: ${JSON.stringify(raw)}`);
  }
  return url;
}

/** URL for messages: credentials in userinfo must not end up in status documents or logs. */
export function redactUrl(url: URL | string): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    return String(url);
  }
  if (u.username === '' && u.password === '') return u.href;
  u.username = '***';
  u.password = '';
  return u.href;
}
