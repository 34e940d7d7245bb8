//! The rules, and what each secret looks like.
//!
//! Two kinds of secret are searched for in file contents:
//!
//! - **Mistral API keys**: 32 letters and digits with nothing that says what they are. A
//!   string of that shape alone is as likely a hash, an id or a token of another service,
//!   so one counts only next to a Mistral context ([`find_secrets`] says which).
//! - **Gateway keys**: `tmt_<public id>_<secret>`, which announce themselves: matched by
//!   their format anywhere.
//!
//! Matching is written by hand: the shapes are fixed-length runs of letters and digits, and
//! a hand-written scan reads each line once with no backtracking on hostile input.

use secrecy::SecretString;

/// What a finding is about. The ids are a stable contract: baselines, SARIF consumers and
/// scripts key on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    MistralApiKey,
    GatewayKey,
    EnvFileTracked,
    SinkNotIgnored,
    EnvNotIgnored,
}

/// How serious a finding is: a leaked secret is an error, a file one commit away from being
/// leaked a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::MistralApiKey,
        Rule::GatewayKey,
        Rule::EnvFileTracked,
        Rule::SinkNotIgnored,
        Rule::EnvNotIgnored,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::MistralApiKey => "mistral-api-key",
            Rule::GatewayKey => "gateway-key",
            Rule::EnvFileTracked => "env-file-tracked",
            Rule::SinkNotIgnored => "sink-not-ignored",
            Rule::EnvNotIgnored => "env-not-ignored",
        }
    }

    /// A short title, for SARIF's `shortDescription` and the docs.
    pub fn title(self) -> &'static str {
        match self {
            Rule::MistralApiKey => "Mistral API key",
            Rule::GatewayKey => "tramontane gateway key",
            Rule::EnvFileTracked => ".env file tracked by git",
            Rule::SinkNotIgnored => "secret file sink not ignored by git",
            Rule::EnvNotIgnored => ".env file not ignored by git",
        }
    }

    /// What the rule finds and why it matters.
    pub fn description(self) -> &'static str {
        match self {
            Rule::MistralApiKey => {
                "32 letters and digits next to a Mistral context (a variable or key named for \
                 Mistral, a Mistral SDK constructor, or an API key field or bearer header near \
                 a mention of Mistral). Anyone who reads the repository can call Mistral with \
                 it and spend the workspace's budget."
            }
            Rule::GatewayKey => {
                "A tramontane gateway key, `tmt_<public id>_<secret>`. It lets its holder call \
                 models through the gateway with the access its policy entry grants."
            }
            Rule::EnvFileTracked => {
                "A `.env` file is committed. Such files hold local secrets by convention; once \
                 committed, every clone has them."
            }
            Rule::SinkNotIgnored => {
                "A policy delivers a new key's secret to a file that `.gitignore` does not \
                 cover: the next `git add -A` commits a live key."
            }
            Rule::EnvNotIgnored => {
                "A `.env` file exists in the working tree and `.gitignore` does not cover it: \
                 the next `git add -A` commits it."
            }
        }
    }

    /// What to do about a finding.
    pub fn help(self) -> &'static str {
        match self {
            Rule::MistralApiKey => {
                "revoke the key first (`tramontane revoke ADDRESS` for a key a policy manages, \
                 otherwise the Mistral console), then remove it from the file; rewriting \
                 history does not un-leak a key that was pushed"
            }
            Rule::GatewayKey => {
                "revoke it by removing its entry from the policy (and merging that), issue a \
                 new one with `tramontane gateway issue`, then remove the secret from the file"
            }
            Rule::EnvFileTracked => {
                "run `git rm --cached` on it, add `.env*` (and `!.env.example`) to .gitignore, \
                 and rotate every secret it held"
            }
            Rule::SinkNotIgnored => {
                "add the line shown to .gitignore so the file apply writes is never committed"
            }
            Rule::EnvNotIgnored => "add `.env*` (and `!.env.example`) to .gitignore",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::MistralApiKey | Rule::GatewayKey => Severity::Error,
            Rule::EnvFileTracked | Rule::SinkNotIgnored | Rule::EnvNotIgnored => Severity::Warning,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// Length of a Mistral API key: 32 ASCII letters and digits.
pub const MISTRAL_KEY_LEN: usize = 32;

/// A gateway key's shape, `tmt_<public id>_<secret>`, in one place.
///
/// - prefix: `tmt_`, case-sensitive;
/// - public id: 4 to 40 ASCII letters, digits and `-`, not starting or ending with `-` (not
///   secret: it names the policy entry; minted ones are 12 lowercase letters and digits, and
///   people may choose their own such as `ci-deploy`);
/// - secret: 43 to 128 ASCII letters and digits. Keys are minted with 43 base-62 characters,
///   256 bits; the range also takes any longer secret a later format may use.
///
/// The key must not continue into more letters, digits or `_` on either side.
pub mod gateway_format {
    use std::ops::RangeInclusive;

    pub const PREFIX: &str = "tmt_";
    pub const PUBLIC_ID_LEN: RangeInclusive<usize> = 4..=40;
    pub const SECRET_LEN: RangeInclusive<usize> = 43..=128;

    /// Whether `byte` may be in a public id (`-` only inside it).
    pub fn is_public_id_byte(byte: u8) -> bool {
        byte.is_ascii_alphanumeric() || byte == b'-'
    }
}

/// How many lines either side of a candidate a mention of Mistral may be, for a candidate
/// whose own line names only a generic field (`api_key:`, `apiKey`, `Bearer`). Enough for a
/// YAML or TOML section header, a multi-line SDK call or a curl command's URL line.
pub const CONTEXT_LINES: usize = 5;

/// Fewest distinct characters a secret has. 32 random characters from 62 have about 25;
/// placeholders (`aAaAaA…`, `XxXx…`) have few.
const MIN_DISTINCT: usize = 10;

/// Field names that hold a secret of some service; next to a mention of Mistral they hold
/// a Mistral key. Compared lowercased, with `-` read as `_`.
const GENERIC_SECRET_NAMES: &[&str] = &[
    "api_key",
    "apikey",
    "x_api_key",
    "api_token",
    "apitoken",
    "key",
    "token",
    "secret",
    "secret_key",
    "secretkey",
    "access_token",
    "accesstoken",
    "auth_token",
    "authtoken",
    "bearer",
];

/// Parts of a name that, with `mistral` in the same name, make it a Mistral key's name
/// (`MISTRAL_API_KEY`, `mistralApiKey`) or a Mistral client's constructor
/// (`MistralClient`, `NewMistralClientDefault`).
const MISTRAL_NAME_PARTS: &[&str] = &["key", "token", "secret", "client", "auth"];

/// What is known about a file before its contents are read.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileContext {
    /// A policy delivers key secrets to this path: its contents are a bare key, with no
    /// context of their own.
    pub is_secret_sink: bool,
}

/// One secret found in a text.
pub struct SecretMatch {
    pub rule: Rule,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    pub secret: SecretString,
}

impl std::fmt::Debug for SecretMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretMatch")
            .field("rule", &self.rule)
            .field("line", &self.line)
            .field("column", &self.column)
            .finish_non_exhaustive()
    }
}

/// Every secret in `text`, a file at `path` (relative to the repository, `/`-separated), in
/// reading order.
///
/// A Mistral key candidate is 32 letters and digits, with both upper- and lowercase letters
/// (hex digests, UUIDs and placeholders have one case), at least ten distinct characters,
/// and, when it holds no digit, no run of five lowercase letters (a camelCase identifier,
/// not a random key). It must stand alone: not inside a longer identifier, path or base64
/// string (`_`, `-`, `+`, `/` before it; those or `=` after it). It counts when one of:
///
/// 1. its line, before it, holds a name with `mistral` and `key`, `token`, `secret`,
///    `client` or `auth` in it: `MISTRAL_API_KEY=`, `"mistral_key":`,
///    `MistralClient(`, `mistral.NewMistralClientDefault(`;
/// 2. its line, before it, holds a generic secret field (`api_key`, `apiKey`, `token`,
///    `Bearer`, …) and `mistral` appears within [`CONTEXT_LINES`] lines or in the path:
///    `new Mistral({ apiKey: … })`, `[mistral]` then `api_key = …`, a curl command to
///    `api.mistral.ai` with `Authorization: Bearer …`;
/// 3. the file is a secret sink a policy names.
pub fn find_secrets(path: &str, text: &str, context: FileContext) -> Vec<SecretMatch> {
    let path_mentions_mistral = contains_ignore_case(path, "mistral");
    let lines: Vec<&str> = text.split('\n').collect();
    // Every question about a candidate's surroundings is answered from state carried along
    // the line, never by reading the line again: a hostile line with a candidate every 33
    // bytes would otherwise cost time quadratic in its length.
    let mut mentions = MistralMentions::new(&lines);
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let line_number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let mut names = NamesBefore::new(line);
        let mut columns = Columns::new(line);
        for (start, end) in alphanumeric_runs(line) {
            let candidate = &line[start..end];
            if !is_mistral_key_shape(line, start, end) {
                continue;
            }
            names.advance_to(start);
            let in_context = context.is_secret_sink
                || names.mistral_name
                || (names.generic_secret_name && (path_mentions_mistral || mentions.nearby(index)));
            if in_context {
                found.push(SecretMatch {
                    rule: Rule::MistralApiKey,
                    line: line_number,
                    column: columns.at(start),
                    secret: SecretString::from(candidate.to_owned()),
                });
            }
        }
        let mut columns = Columns::new(line);
        for (start, end) in gateway_keys(line) {
            found.push(SecretMatch {
                rule: Rule::GatewayKey,
                line: line_number,
                column: columns.at(start),
                secret: SecretString::from(line[start..end].to_owned()),
            });
        }
    }
    found.sort_by_key(|found| (found.line, found.column));
    found
}

/// 1-based character columns of byte offsets asked for in increasing order, each byte
/// counted once.
struct Columns<'a> {
    line: &'a str,
    byte: usize,
    column: usize,
}

impl<'a> Columns<'a> {
    fn new(line: &'a str) -> Columns<'a> {
        Columns {
            line,
            byte: 0,
            column: 1,
        }
    }

    fn at(&mut self, byte: usize) -> u32 {
        debug_assert!(byte >= self.byte, "columns are asked for in order");
        self.column += self.line[self.byte..byte].chars().count();
        self.byte = byte;
        u32::try_from(self.column).unwrap_or(u32::MAX)
    }
}

/// What the names on a line before some point say, read once from left to right: the
/// names before a candidate are those before the previous candidate and the ones between.
struct NamesBefore<'a> {
    bytes: &'a [u8],
    line: &'a str,
    at: usize,
    mistral_name: bool,
    generic_secret_name: bool,
}

impl<'a> NamesBefore<'a> {
    fn new(line: &'a str) -> NamesBefore<'a> {
        NamesBefore {
            bytes: line.as_bytes(),
            line,
            at: 0,
            mistral_name: false,
            generic_secret_name: false,
        }
    }

    /// Takes in every name that ends before `to`. A candidate of a key's shape never
    /// continues a name (`_` or `-` before it refuse it), so no name straddles `to`.
    fn advance_to(&mut self, to: usize) {
        let is_name_byte = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-';
        while self.at < to {
            if !is_name_byte(self.bytes[self.at]) {
                self.at += 1;
                continue;
            }
            let start = self.at;
            while self.at < self.bytes.len() && is_name_byte(self.bytes[self.at]) {
                self.at += 1;
            }
            let name = &self.line[start..self.at];
            self.mistral_name = self.mistral_name || is_mistral_name(name);
            self.generic_secret_name = self.generic_secret_name || is_generic_secret_name(name);
        }
    }
}

/// Which lines mention Mistral, worked out on first need and then looked up: a line is
/// read once however many candidates around it ask.
struct MistralMentions<'a> {
    lines: &'a [&'a str],
    mentions: Option<Vec<bool>>,
}

impl<'a> MistralMentions<'a> {
    fn new(lines: &'a [&'a str]) -> MistralMentions<'a> {
        MistralMentions {
            lines,
            mentions: None,
        }
    }

    /// Whether `mistral` is within [`CONTEXT_LINES`] lines of line `index`.
    fn nearby(&mut self, index: usize) -> bool {
        let lines = self.lines;
        let mentions = self.mentions.get_or_insert_with(|| {
            lines
                .iter()
                .map(|line| contains_ignore_case(line, "mistral"))
                .collect()
        });
        let first = index.saturating_sub(CONTEXT_LINES);
        let last = (index + CONTEXT_LINES).min(mentions.len() - 1);
        mentions[first..=last].iter().any(|&mention| mention)
    }
}

/// Whether the bytes look like a binary file rather than text: a NUL in the first 8000
/// bytes, as git decides it.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8000)].contains(&0)
}

/// Byte ranges of the maximal runs of ASCII letters and digits in `line`.
fn alphanumeric_runs(line: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = line.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() && !bytes[at].is_ascii_alphanumeric() {
            at += 1;
        }
        if at >= bytes.len() {
            return None;
        }
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
            at += 1;
        }
        Some((start, at))
    })
}

fn is_mistral_key_shape(line: &str, start: usize, end: usize) -> bool {
    if end - start != MISTRAL_KEY_LEN {
        return false;
    }
    let bytes = line.as_bytes();
    if start > 0 && matches!(bytes[start - 1], b'_' | b'-' | b'+' | b'/') {
        return false;
    }
    if end < bytes.len() && matches!(bytes[end], b'_' | b'-' | b'+' | b'/' | b'=') {
        return false;
    }
    looks_random(&bytes[start..end])
}

/// Mixed case, enough distinct characters, and not a digit-free camelCase word.
fn looks_random(candidate: &[u8]) -> bool {
    let upper = candidate.iter().any(u8::is_ascii_uppercase);
    let lower = candidate.iter().any(u8::is_ascii_lowercase);
    if !(upper && lower) || distinct(candidate) < MIN_DISTINCT {
        return false;
    }
    if candidate.iter().any(u8::is_ascii_digit) {
        return true;
    }
    let mut lowercase_run = 0;
    for byte in candidate {
        lowercase_run = if byte.is_ascii_lowercase() {
            lowercase_run + 1
        } else {
            0
        };
        if lowercase_run >= 5 {
            return false;
        }
    }
    true
}

fn distinct(bytes: &[u8]) -> usize {
    let mut seen = [false; 256];
    bytes
        .iter()
        .filter(|&&byte| !std::mem::replace(&mut seen[usize::from(byte)], true))
        .count()
}

fn is_mistral_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("mistral") && MISTRAL_NAME_PARTS.iter().any(|part| lower.contains(part))
}

fn is_generic_secret_name(name: &str) -> bool {
    let normalized = name.to_ascii_lowercase().replace('-', "_");
    GENERIC_SECRET_NAMES.contains(&normalized.trim_matches('_'))
}

fn contains_ignore_case(haystack: &str, lowercase_needle: &str) -> bool {
    let needle = lowercase_needle.as_bytes();
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Byte ranges of the gateway keys in `line`, by [`gateway_format`].
fn gateway_keys(line: &str) -> Vec<(usize, usize)> {
    let bytes = line.as_bytes();
    let is_word = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
    let run_end = |from: usize| {
        let mut at = from;
        while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
            at += 1;
        }
        at
    };
    let mut found = Vec::new();
    for (start, _) in line.match_indices(gateway_format::PREFIX) {
        if start > 0 && is_word(bytes[start - 1]) {
            continue;
        }
        let id_start = start + gateway_format::PREFIX.len();
        let mut id_end = id_start;
        while id_end < bytes.len() && gateway_format::is_public_id_byte(bytes[id_end]) {
            id_end += 1;
        }
        let id = &bytes[id_start..id_end];
        if !gateway_format::PUBLIC_ID_LEN.contains(&id.len())
            || id.first() == Some(&b'-')
            || id.last() == Some(&b'-')
            || bytes.get(id_end) != Some(&b'_')
        {
            continue;
        }
        let secret_start = id_end + 1;
        let secret_end = run_end(secret_start);
        if !gateway_format::SECRET_LEN.contains(&(secret_end - secret_start))
            || bytes.get(secret_end).is_some_and(|&byte| is_word(byte))
            || distinct(&bytes[secret_start..secret_end]) < MIN_DISTINCT
        {
            continue;
        }
        found.push((start, secret_end));
    }
    found
}

#[cfg(test)]
mod tests;
