import { loadApp, type LoadedApp } from './app.js';

/**
 * Parsed apps of unpacked trees, by tree path. A tree (`trees/<sha256>`) never changes once it exists, so a burst
 * of creates from one archive reads and parses its Procfile and .env once. Failures are not kept: the next
 * create reports the error afresh. Least recently used trees are forgotten beyond `capacity`.
 */
export class AppCache {
  private readonly apps = new Map<string, Promise<LoadedApp>>();

  constructor(private readonly capacity = 64) {}

  load(tree: string): Promise<LoadedApp> {
    let app = this.apps.get(tree);
    if (app) {
      this.apps.delete(tree);
    } else {
      app = loadApp(tree);
      app.catch(() => this.apps.get(tree) === app && this.apps.delete(tree));
    }
    this.apps.set(tree, app);
    if (this.apps.size > this.capacity) this.apps.delete(this.apps.keys().next().value!);
    return app;
  }
}
