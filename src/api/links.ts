import { redactUrl } from '../source/url.js';
import type { ProcessSnapshot } from '../supervisor/index.js';

/** Every URL the agent hands out is absolute and built from the request (DESIGN §1). */
export interface BaseUrls {
  http: string;
  ws: string;
}

export function baseUrls(protocol: string, host: string): BaseUrls {
  const secure = protocol === 'https';
  return { http: `${secure ? 'https' : 'http'}://${host}`, ws: `${secure ? 'wss' : 'ws'}://${host}` };
}

export function indexDoc(base: BaseUrls): Record<string, string> {
  return {
    create: `${base.http}/create-process`,
    list: `${base.http}/list-processes`,
    healthz: `${base.http}/healthz`,
    metrics: `${base.http}/metrics`,
  };
}

/** The URL as given, unless it has userinfo: then `https://***@host/…`. */
function withoutCredentials(raw: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(raw) ? redactUrl(raw) : raw;
}

export type StatusDoc = ProcessSnapshot & { attach: string; details: string; status: string; delete: string; output: string };

export function statusDoc(snapshot: ProcessSnapshot, base: BaseUrls): StatusDoc {
  const slug = encodeURIComponent(snapshot.slug);
  const details = `${base.http}/process-status/${slug}`;
  return {
    ...snapshot,
    // Credentials in a source URL are used for the download but never shown (docs/security.md).
    source_url: withoutCredentials(snapshot.source_url),
    attach: `${base.ws}/attach-console/${slug}`,
    details,
    status: details,
    delete: `${base.http}/delete-process/${slug}`,
    output: `${base.http}/process-output/${slug}`,
  };
}
