// Small file and socket helpers the generator's tools and the tests share.
// Owns: replacing a file atomically, finding a free loopback port.
import { randomBytes } from "node:crypto";
import { rename, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { basename, dirname, join } from "node:path";

/**
 * Replaces `path` atomically: a temporary file in the same directory (a rename
 * is atomic only within one filesystem), then a rename over `path`. Envoy's
 * filesystem xDS reacts to the rename (inotify IN_MOVED_TO) and reads a whole
 * file; a file written in place gives it no event, or a torn read.
 */
export async function replaceFileAtomically(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await writeFile(tmp, text);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * A loopback port that was free a moment ago, for a configuration that must
 * name a port before the process that binds it starts (the admin port the
 * admin guard's cluster names). Another process could take it in between;
 * the bind then fails loudly.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
