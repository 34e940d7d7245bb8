#!/usr/bin/env node
// Writes catalog/mistral-models.json from Mistral's published model records: the TypeScript
// files of `src/schema/models/models/` in the public repository mistralai/platform-docs-public.
//
//   node catalog/generate/mistral-models.mjs RECORDS_DIR --commit SHA --date YYYY-MM-DD \
//       [--repository mistralai/platform-docs-public] [--path src/schema/models/models/] \
//       [--out catalog/mistral-models.json]
//
// Each record is a TypeScript object literal (`export default { ... } as const satisfies
// StaticModel;`). Rather than parse TypeScript by hand, the generator removes the two pieces of
// TypeScript syntax the records use (the `import` line and the `as const satisfies` suffix) and
// evaluates what is left, a plain object expression, in an empty V8 context: the records are
// read exactly as the documentation site reads them. Node 18 or later; no dependencies.
//
// Conflicts (one API id listed by several records) are reported on stderr and resolved: the id
// belongs to the newest record not retired on the source's date; see `owner` below.

import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const FORMAT_VERSION = '1';

// Multipliers Mistral's documentation states beside the records, which the records do not
// carry. Read on the day named in `source`.
const PRICING_RULES = {
  tiers: [
    { name: 'standard', percent: 100 },
    {
      name: 'priority',
      percent: 175,
      source: "Mistral documentation, 'Priority Tier' (docs.mistral.ai), read 2026-12-07: priority requests are billed at 1.75 times the list price",
    },
  ],
  cached_input: {
    percent_of_input: 10,
    source: "Mistral documentation, 'Prompt caching' (docs.mistral.ai), read 2026-12-07: cached prompt tokens are billed at 10 % of the input price",
  },
};

const UNITS = {
  '/M Tokens': { unit: 'tokens', per: 1000000 },
  '/M Chars': { unit: 'characters', per: 1000000 },
  '/Min': { unit: 'minutes', per: 1 },
  '/1000 Pages': { unit: 'pages', per: 1000 },
  '/1000 Annotated Pages': { unit: 'annotated_pages', per: 1000 },
};

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const options = {
    repository: 'mistralai/platform-docs-public',
    path: 'src/schema/models/models/',
    out: resolve(dirname(fileURLToPath(import.meta.url)), '..', 'mistral-models.json'),
  };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith('--')) {
      const value = argv[++i];
      if (value === undefined) fail(`${arg} needs a value`);
      options[arg.slice(2)] = value;
    } else {
      rest.push(arg);
    }
  }
  if (rest.length !== 1) fail('usage: mistral-models.mjs RECORDS_DIR --commit SHA --date YYYY-MM-DD [--out FILE]');
  if (!/^[0-9a-f]{40}$/.test(options.commit ?? '')) fail('--commit takes the 40-digit commit the records were copied from');
  if (!/^\d{4}-\d{2}-\d{2}$/.test(options.date ?? '')) fail('--date takes the commit date, YYYY-MM-DD');
  options.records = rest[0];
  return options;
}

/** Evaluates one record file into its object. */
function readRecord(file) {
  const text = readFileSync(file, 'utf8');
  const expression = text
    .replace(/^\s*import\s[^;]*;\s*$/gm, '')
    .replace(/\}\s*as\s+const\s+satisfies\s+StaticModel\s*;?\s*$/, '}')
    .replace(/^\s*export\s+default\s+/m, '');
  if (/\bexport\b|\bsatisfies\b|^\s*import\s/m.test(expression)) {
    fail(`${file}: TypeScript this generator does not know how to strip`);
  }
  try {
    return vm.runInNewContext(`(${expression})`, Object.create(null), { filename: file, timeout: 1000 });
  } catch (error) {
    fail(`${file}: ${error.message}`);
  }
}

/**
 * An amount as the record publishes it, as decimal text. JavaScript prints a number as the
 * shortest text that reads back to it, which for the prices written in the records (`7.5`,
 * `0.00088`) is the text written; an exponent would mean a price no record has, so it stops.
 */
function amount(value, file) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(`${file}: price ${value} is not an amount`);
  const text = String(value);
  if (!/^\d+(\.\d+)?$/.test(text)) fail(`${file}: price ${value} does not print as a plain decimal`);
  return text;
}

function priceLine(direction, entry, file) {
  const unit = UNITS[entry.denominator];
  if (!unit) fail(`${file}: unknown denominator ${entry.denominator}`);
  const usd = amount(entry.price, file);
  // A zero price is zero in any currency; otherwise a missing EUR price is not published.
  const eur = entry.priceEur !== undefined ? amount(entry.priceEur, file) : Number(usd) === 0 ? '0' : null;
  return { direction, unit: unit.unit, per: unit.per, usd, eur, label: entry.label ?? null };
}

/** The record's prices, whichever of the three shapes it uses. */
function prices(pricing, file) {
  const lines = [];
  if (Array.isArray(pricing.input) || Array.isArray(pricing.output)) {
    for (const entry of pricing.input ?? []) lines.push(priceLine('input', entry, file));
    for (const entry of pricing.output ?? []) lines.push(priceLine('output', entry, file));
  } else if (typeof pricing.input === 'number') {
    lines.push(priceLine('input', { price: pricing.input, priceEur: pricing.inputEur, denominator: pricing.denominator }, file));
    lines.push(priceLine('output', { price: pricing.output, priceEur: pricing.outputEur, denominator: pricing.denominator }, file));
  } else if (typeof pricing.price === 'number') {
    // A flat price has one amount for what the model is sent.
    lines.push(priceLine('input', pricing, file));
  }
  if (pricing.free) {
    // Free: whatever direction the record leaves unpriced costs nothing either.
    for (const direction of ['input', 'output']) {
      if (!lines.some(line => line.direction === direction)) {
        const unit = lines[0] ? lines[0].unit : 'tokens';
        const per = lines[0] ? lines[0].per : 1000000;
        lines.push({ direction, unit, per, usd: '0', eur: '0', label: null });
      }
    }
    for (const line of lines) {
      if (Number(line.usd) !== 0) fail(`${file}: a free model with price ${line.usd}`);
    }
  }
  return lines;
}

/**
 * '256k' as tokens. Mistral's `GET /v1/models` states these models' `max_context_length` as
 * 262144 for '256k', 131072 for '128k' and 40960 for '40k': the records' k is 1024 (and M
 * 1024 × 1024), so that is how they are read here.
 */
function contextTokens(text, file) {
  if (text === null || text === undefined || text === '--') return null;
  const match = /^(\d+)([kM])$/.exec(text);
  if (!match) fail(`${file}: context length ${text} is not like '256k'`);
  return Number(match[1]) * (match[2] === 'k' ? 1024 : 1024 * 1024);
}

/**
 * A record's date as YYYY-MM-DD. The schema asks for ISO 8601, and nearly every record writes
 * one; a few write a date in words ('July 31, 2026') or an empty string (no date).
 */
function isoDate(text, file) {
  if (text === undefined || text === null || text.trim() === '') return null;
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return text;
  const parsed = new Date(`${text} 12:00 UTC`);
  if (Number.isNaN(parsed.getTime())) fail(`${file}: \`${text}\` is not a date`);
  const iso = parsed.toISOString().slice(0, 10);
  process.stderr.write(`${file}: date \`${text}\` read as ${iso}\n`);
  return iso;
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const files = readdirSync(options.records)
    .filter(name => name.endsWith('.ts') && name !== 'index.ts')
    .sort();
  if (files.length === 0) fail(`no model records (*.ts) in ${options.records}`);
  const records = files.map(name => {
    const file = join(options.records, name);
    const record = readRecord(file);
    const description = record.describe?.({ text: s => s })?.description ?? null;
    const metadata = record.metadata ?? {};
    const dates = {
      release: isoDate(record.releaseDate, name),
      deprecation: isoDate(metadata.deprecationDate, name),
      retirement: isoDate(metadata.retirementDate, name),
    };
    return { file: name, record, description, dates };
  });

  const retiredOn = ({ record, dates }) =>
    record.status === 'Retired' || (dates.retirement !== null && dates.retirement <= options.date);
  const newestFirst = (a, b) =>
    Number(retiredOn(a)) - Number(retiredOn(b)) || (b.dates.release ?? '').localeCompare(a.dates.release ?? '');

  // Which record each API id belongs to: the newest record not retired on the source's date;
  // among equals, the one naming more ids (the fuller card), then the first by file name.
  const claims = new Map();
  for (const entry of records) {
    for (const id of entry.record.identifiers?.apiNames ?? []) {
      if (!claims.has(id)) claims.set(id, []);
      claims.get(id).push(entry);
    }
  }
  const owner = new Map();
  const conflicts = [];
  for (const [id, claimants] of claims) {
    const ranked = [...claimants].sort((a, b) =>
      newestFirst(a, b) ||
      b.record.identifiers.apiNames.length - a.record.identifiers.apiNames.length ||
      a.file.localeCompare(b.file));
    owner.set(id, ranked[0]);
    if (ranked.length > 1) {
      conflicts.push({ id, kept: ranked[0].record.slug, dropped: ranked.slice(1).map(entry => entry.record.slug) });
      process.stderr.write(`conflict: \`${id}\` is listed by ${ranked.map(e => e.record.slug).join(', ')}; kept in ${ranked[0].record.slug}\n`);
    }
  }
  const idsOf = entry => (entry.record.identifiers?.apiNames ?? []).filter(id => owner.get(id) === entry);

  const byName = new Map();
  for (const entry of records) {
    if (!byName.has(entry.record.name)) byName.set(entry.record.name, []);
    byName.get(entry.record.name).push(entry);
  }
  // A replacement is a model's name, which several generations may share (`Codestral`):
  // it means the newest of them that is not retired.
  const replacementId = (name, file) => {
    if (!name) return null;
    const candidates = (byName.get(name) ?? []).filter(entry => idsOf(entry).length > 0).sort(newestFirst);
    if (candidates.length === 0) {
      process.stderr.write(`${file}: replacement \`${name}\` names no record with an API id; left out\n`);
      return null;
    }
    return idsOf(candidates[0])[0];
  };

  const models = records.map(entry => {
    const { record, file, dates } = entry;
    const metadata = record.metadata ?? {};
    return {
      name: record.name,
      slug: record.slug,
      ids: idsOf(entry),
      status: record.status,
      legacy: record.legacy ?? false,
      release_date: dates.release,
      deprecation_date: dates.deprecation,
      retirement_date: dates.retirement,
      replacement: replacementId(metadata.replacement, file),
      description: entry.description,
      context_tokens: contextTokens(record.contextLength, file),
      capabilities: {
        input: [...(record.capabilities?.input ?? [])],
        output: [...(record.capabilities?.output ?? [])],
        features: [...(record.capabilities?.features ?? [])],
      },
      prices: prices(record.pricing ?? {}, file),
    };
  });
  models.sort((a, b) => (b.release_date ?? '').localeCompare(a.release_date ?? '') || a.slug.localeCompare(b.slug));
  conflicts.sort((a, b) => a.id.localeCompare(b.id));

  const out = {
    format_version: FORMAT_VERSION,
    source: {
      repository: options.repository,
      commit: options.commit,
      path: options.path,
      date: options.date,
    },
    generated_by: 'catalog/generate/mistral-models.mjs',
    notes: {
      ids: 'API ids, the dated id first, then its aliases. An id listed by several records belongs to the newest record not retired on the source date; `conflicts` lists where that was decided.',
      context_tokens: "'256k' in the records is 256 × 1024 tokens, as GET /v1/models states it.",
      prices: 'Amounts as the records publish them, per `per` units; `eur` is null where no EUR price is published.',
    },
    pricing_rules: PRICING_RULES,
    conflicts,
    models,
  };
  writeFileSync(options.out, JSON.stringify(out, null, 1) + '\n');
  process.stderr.write(`wrote ${models.length} records to ${options.out}\n`);
}

main();
