import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/** Where the client commands keep their profiles: `$XDG_CONFIG_HOME/procfile-agent/config.json` (default ~/.config). */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.config');
  return path.join(base, 'procfile-agent');
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configDir(env), 'config.json');
}

const ProfileSchema = z.looseObject({
  url: z.string(),
  token: z.string().optional(),
});

const ConfigSchema = z.looseObject({
  current: z.string().optional(),
  profiles: z.record(z.string(), ProfileSchema).default({}),
});

export type Profile = z.infer<typeof ProfileSchema>;
export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {}

export async function readConfig(env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  const file = configPath(env);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new ConfigError(`${file} is not valid JSON`);
  }
  const parsed = ConfigSchema.safeParse(data);
  if (!parsed.success) throw new ConfigError(`${file} is not a procfile-agent config: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** Written atomically (temporary file + rename); the directory is 0700 and the file 0600 since it may hold tokens. */
export async function writeConfig(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const dir = configDir(env);
  const file = configPath(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  await chmod(temp, 0o600);
  await rename(temp, file);
  return file;
}

const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function checkProfileName(name: string): string {
  if (!PROFILE_NAME.test(name)) throw new ConfigError(`'${name}' is not a profile name (letters, digits, _ . -)`);
  return name;
}

export function checkAgentUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`'${value}' is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`'${value}' is not an http:// or https:// URL`);
  return value;
}

export const DEFAULT_AGENT_URL = 'http://127.0.0.1:8080';

export interface Target {
  url: string;
  token: string | undefined;
  /** Where the URL came from, for `-v` and error messages. */
  source: string;
}

/**
 * Which agent a client command talks to: `--agent` > `--profile` > `PROCFILE_AGENT_URL` > the current profile >
 * http://127.0.0.1:8080. The token: `--token` > `PROCFILE_AGENT_TOKEN` > the chosen profile's token (a profile's
 * token is never sent to a URL that did not come from that profile).
 */
export async function resolveTarget(
  flags: { agent?: string; profile?: string; token?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<Target> {
  const explicitToken = flags.token ?? (env.PROCFILE_AGENT_TOKEN || undefined);
  if (flags.agent) return { url: checkAgentUrl(flags.agent), token: explicitToken, source: '--agent' };
  const config = flags.profile || !env.PROCFILE_AGENT_URL ? await readConfig(env) : undefined;
  if (flags.profile) {
    const profile = config!.profiles[flags.profile];
    if (!profile) throw new ConfigError(`no profile '${flags.profile}' (see: procfile-agent profile list)`);
    return { url: profile.url, token: explicitToken ?? profile.token, source: `profile ${flags.profile}` };
  }
  if (env.PROCFILE_AGENT_URL) return { url: checkAgentUrl(env.PROCFILE_AGENT_URL), token: explicitToken, source: 'PROCFILE_AGENT_URL' };
  const current = config?.current ? config.profiles[config.current] : undefined;
  if (current) return { url: current.url, token: explicitToken ?? current.token, source: `profile ${config!.current}` };
  return { url: DEFAULT_AGENT_URL, token: explicitToken, source: 'default' };
}
