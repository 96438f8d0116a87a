// Copies the built SDK into web/static/sdk, where the Go package embeds it
// (served at /sdk/earshot.js and /sdk/earshot.d.ts). The copy is committed so that
// `go build` works without npm.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(root, "..", "static", "sdk");
mkdirSync(out, { recursive: true });
copyFileSync(join(root, "dist", "index.js"), join(out, "earshot.js"));
copyFileSync(join(root, "dist", "index.d.ts"), join(out, "earshot.d.ts"));
console.log("copied dist/index.{js,d.ts} to web/static/sdk/earshot.{js,d.ts}");
