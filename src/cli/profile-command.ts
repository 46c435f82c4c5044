import type { Command } from 'commander';
import { action, CliExit } from './client-options.js';
import { checkAgentUrl, checkProfileName, readConfig, writeConfig } from './config.js';
import { styleFor, table } from './format.js';

/** `profile add|use|list|remove`: named agents in $XDG_CONFIG_HOME/procfile-agent/config.json (0600). */
export function registerProfileCommand(program: Command): void {
  const profile = program
    .command('profile')
    .description('named agents (URL and token) kept in $XDG_CONFIG_HOME/procfile-agent/config.json');

  profile
    .command('add')
    .description('add (or replace) a profile; the first profile becomes the current one')
    .argument('<name>', 'profile name')
    .argument('<url>', 'the agent root URL, e.g. http://10.0.0.5:8080')
    .option('--token <token>', 'bearer token sent to this agent')
    .option('--use', 'make it the current profile')
    .action(
      action(async (name: string, url: string, flags: { token?: string; use?: boolean }) => {
        checkProfileName(name);
        checkAgentUrl(url);
        const config = await readConfig();
        const replaced = name in config.profiles;
        config.profiles[name] = { url, ...(flags.token ? { token: flags.token } : {}) };
        if (flags.use || !config.current || !config.profiles[config.current]) config.current = name;
        await writeConfig(config);
        process.stdout.write(`${replaced ? 'updated' : 'added'} profile ${name} → ${url}${config.current === name ? ' (current)' : ''}\n`);
      }),
    );

  profile
    .command('use')
    .description('make a profile the current one')
    .argument('<name>', 'profile name')
    .action(
      action(async (name: string) => {
        const config = await readConfig();
        if (!config.profiles[name]) throw new CliExit(1, `no profile '${name}' (see: procfile-agent profile list)`);
        config.current = name;
        await writeConfig(config);
        process.stdout.write(`using profile ${name} → ${config.profiles[name]!.url}\n`);
      }),
    );

  profile
    .command('list')
    .alias('ls')
    .description('list profiles; * marks the current one')
    .option('--json', 'print as JSON (tokens masked)')
    .action(
      action(async (flags: { json?: boolean }) => {
        const config = await readConfig();
        const entries = Object.entries(config.profiles);
        if (flags.json) {
          const profiles = entries.map(([name, p]) => ({ name, url: p.url, token: Boolean(p.token), current: name === config.current }));
          process.stdout.write(JSON.stringify(profiles, null, 2) + '\n');
          return;
        }
        const style = styleFor(process.stdout);
        const rows = entries.map(([name, p]) => [name === config.current ? '*' : '', name, p.url, p.token ? 'yes' : 'no']);
        process.stdout.write(table(['', 'NAME', 'URL', 'TOKEN'], rows, style));
        if (process.env.PROCFILE_AGENT_URL) {
          process.stderr.write(`note: PROCFILE_AGENT_URL=${process.env.PROCFILE_AGENT_URL} overrides the current profile\n`);
        }
      }),
    );

  profile
    .command('remove')
    .alias('rm')
    .description('remove a profile')
    .argument('<name>', 'profile name')
    .action(
      action(async (name: string) => {
        const config = await readConfig();
        if (!config.profiles[name]) throw new CliExit(1, `no profile '${name}'`);
        delete config.profiles[name];
        if (config.current === name) delete config.current;
        await writeConfig(config);
        process.stdout.write(`removed profile ${name}\n`);
      }),
    );
}
