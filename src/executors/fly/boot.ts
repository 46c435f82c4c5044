/** Single-quotes a string for POSIX sh. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Where the machine unpacks the source; the Procfile command runs there (or in the archive's one top directory). */
export const MACHINE_APP_DIR = '/app';
const MACHINE_SOURCE_FILE = '/tmp/procfile-agent-source';

/**
 * The machine's boot script, run as `/bin/sh -c <script>`: the machine fetches `source_url` itself (wget, else curl),
 * unpacks it into /app (tar.gz, tar or zip), enters the directory holding the Procfile and execs the Procfile command
 * through `/bin/sh -c`. Needs `sh`, `tar` (or `unzip`) and `wget` or `curl` in the image.
 */
export function bootScript(sourceUrl: string, command: string): string {
  const url = shellQuote(sourceUrl);
  return [
    'set -e',
    `mkdir -p ${MACHINE_APP_DIR} /tmp`,
    `cd ${MACHINE_APP_DIR}`,
    `src=${MACHINE_SOURCE_FILE}`,
    `if command -v wget >/dev/null 2>&1; then wget -q -O "$src" ${url}; else curl -fsSL -o "$src" ${url}; fi`,
    'tar -xzf "$src" 2>/dev/null || tar -xf "$src" 2>/dev/null || unzip -qo "$src" >/dev/null',
    'rm -f "$src"',
    'if [ ! -f Procfile ]; then for d in */; do if [ -f "$d/Procfile" ]; then cd "$d"; break; fi; done; fi',
    'unset src',
    `exec /bin/sh -c ${shellQuote(command)}`,
  ].join('\n');
}
