/**
 * What a child inherits from the agent's own environment by default: enough for a shell and locale-aware
 * tools to work, nothing that could leak the agent's secrets (tokens, cloud credentials).
 * Mutable `string[]` so it can seed a config field directly; copy it before changing it.
 */
export const DEFAULT_INHERIT_ENV: string[] = ['PATH', 'HOME', 'LANG', 'LC_*', 'TZ', 'TMPDIR', 'USER', 'SHELL', 'TERM'];

/** Layers lowest precedence first; a later layer wins. Undefined layers are skipped. */
export function mergeEnv(...layers: Array<Record<string, string> | undefined>): Record<string, string> {
  const merged = new Map<string, string>();
  for (const layer of layers) {
    if (layer) for (const [key, value] of Object.entries(layer)) merged.set(key, value);
  }
  // fromEntries defines own properties, so a variable named __proto__ stays a variable.
  return Object.fromEntries(merged);
}

/** Keeps the variables whose name matches one pattern; `*` is any run of characters, `?` one. Case-sensitive. */
export function filterInheritedEnv(env: NodeJS.ProcessEnv, patterns: readonly string[]): Record<string, string> {
  const matchers = patterns.map(globToRegExp);
  const kept: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && matchers.some((m) => m.test(key))) kept.push([key, value]);
  }
  return Object.fromEntries(kept);
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}
