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
  };
}

export type StatusDoc = ProcessSnapshot & { attach: string; details: string; status: string; delete: string; output: string };

export function statusDoc(snapshot: ProcessSnapshot, base: BaseUrls): StatusDoc {
  const slug = encodeURIComponent(snapshot.slug);
  const details = `${base.http}/process-status/${slug}`;
  return {
    ...snapshot,
    attach: `${base.ws}/attach-console/${slug}`,
    details,
    status: details,
    delete: `${base.http}/delete-process/${slug}`,
    output: `${base.http}/process-output/${slug}`,
  };
}
