#!/usr/bin/env node
import { Command } from 'commander';
import { registerClientCommands } from './client-commands.js';
import { registerServe } from './serve.js';
import { VERSION } from './version.js';

const program = new Command();
program
  .name('procfile-agent')
  .description('Run Procfile process types as supervised children for a hypermedia REST client')
  .version(VERSION)
  .showHelpAfterError();
registerServe(program);
registerClientCommands(program);

await program.parseAsync(process.argv);
