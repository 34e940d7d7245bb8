//! What validation reports: one [`Diagnostic`] per problem, each with a stable [`Code`].

use super::source::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $severity:ident, $title:literal, $explanation:literal;)*) => {
        /// Every problem tramontane reports has a code, stable across releases, which
        /// `tramontane explain` describes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant),* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity),* }
            }

            /// A one-line summary, for the error-code table in docs/policy.md and `explain`.
            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title),* }
            }

            pub fn explanation(self) -> &'static str {
                match self { $(Code::$variant => $explanation),* }
            }
        }
    };
}

codes! {
    Io = "E001", Error, "a policy file or directory cannot be read",
        "The policy directory must exist and every *.yaml / *.yml file under it must be readable. \
         Check the path given to --policies (default: policies/) and the file permissions. \
         An empty directory is an error too: there is nothing to validate.";
    Encoding = "E002", Error, "a policy file is not UTF-8",
        "Policy files are YAML 1.2 and must be encoded as UTF-8. The error points at the first byte \
         that is not valid UTF-8; re-save the file as UTF-8 (most editors: \"Save with encoding\").";
    Syntax = "E003", Error, "the YAML does not parse",
        "The file is not well-formed YAML 1.2. Common causes: a tab used for indentation (YAML \
         indents with spaces only), an unclosed quote or bracket, a missing space after `:`, or \
         mis-aligned indentation.";
    DuplicateKey = "E004", Error, "a key appears twice in one mapping",
        "YAML forbids the same key twice in one mapping, and most tools silently keep the last one. \
         tramontane refuses instead, pointing at both: remove or rename one of them.";
    Limit = "E005", Error, "a policy file, or all of them together, exceeds a safety limit",
        "To stay fast and bounded on hostile input, tramontane limits what it reads: at most \
         2,000 policy files of at most 16 MiB together; each file at most 4 MiB, nesting at most \
         64 levels deep, at most 1,000,000 nodes after anchors and aliases are expanded, and one \
         YAML document. Split large files, flatten deep structures, avoid aliases that expand \
         exponentially, and keep generated data out of the policy directory.";
    Symlink = "E006", Error, "a symbolic link under the policy directory",
        "tramontane reads only regular files under the policy directory and never follows a \
         symbolic link: a policy comes from a pull request, and a link could point at any file \
         on the machine that runs the check (its text would be quoted in a diagnostic). A link \
         named *.yaml / *.yml, or one pointing at a directory, is an error rather than skipped, \
         so that a plan is never made from part of the policy. Replace the link with a copy of \
         what it points to, or point --policies at the real directory.";
    UnknownProperty = "E010", Error, "a property the policy format does not have",
        "The policy format is closed: every mapping accepts a fixed set of properties (see \
         `tramontane schema`). A misspelt property is reported with the closest valid one.";
    MissingProperty = "E011", Error, "a required property is missing",
        "Some properties are required: a member's `name`, a role's `models`, a key's `owner` and \
         `secret`. Add the property named in the message.";
    WrongType = "E012", Error, "a value has the wrong type",
        "The value's type does not match the format: for example a list where a mapping is \
         expected, or text where a number is expected. Quoting turns a number into text.";
    InvalidValue = "E013", Error, "a value is not allowed",
        "The value has the right type but is not accepted: a role name outside the known roles, \
         a malformed email or date, a number out of range, a duplicated list item or a name with \
         characters that are not allowed.";
    DuplicateName = "E020", Error, "a name is defined in two places",
        "Members, roles, teams and workspaces are merged across all policy files, and a name may \
         be defined only once; the `organization` section may appear in only one file. Keep one \
         of the two definitions.";
    UnsupportedVersion = "E021", Error, "the policy format version is not supported",
        "This tramontane reads policy format version 1. A file with another `version` was written \
         for another release: upgrade tramontane, or set `version: 1`.";
    UnknownMember = "E030", Error, "a reference to a member that is not defined",
        "Workspace admins and members, team members, key owners and the holders of gateway keys \
         must be organization members defined under `members`. Add the person under `members`, \
         or fix the email.";
    UnknownWorkspace = "E031", Error, "a reference to a workspace that is not defined",
        "Team workspace assignments and the `workspace` of a gateway key must name workspaces \
         defined under `workspaces`.";
    UnknownRole = "E032", Error, "a reference to a runtime role that is not defined",
        "A team's `role` must name an access profile defined under `roles`.";
    UnknownModel = "E033", Error, "a model the Mistral catalog does not know",
        "Model ids and aliases are checked against the catalog bundled with tramontane, made from \
         Mistral's published model records (catalog/mistral-models.json, dated), and the models \
         the policy declares under `models`. Use an id or alias listed there, or `*` for every \
         model; the suggestion is always a current model. A model newer than the bundled data, \
         or a fine-tune, can be declared under `models` without waiting for a release.";
    KeyModelsNotSubset = "E034", Error, "a key allows a model its workspace does not",
        "A key's `models` must be a subset of its workspace's `models`: a key can narrow what \
         the workspace allows, never widen it. Aliases count as the model they point to.";
    KeyRpmAboveWorkspace = "E035", Error, "a key's rpm is above its workspace's",
        "A key's `rpm` must not exceed its workspace's `rpm`: the workspace limit caps every key \
         in it.";
    ExpiryInPast = "E036", Error, "a key expires in the past",
        "A key's `expires` date must be in the future (UTC), or the key would be created already \
         expired. Move the date, or use `expires_after_days`.";
    ExpiryConflict = "E037", Error, "a key sets both `expires` and `expires_after_days`",
        "A key expires either on a date (`expires`) or a number of days after its creation \
         (`expires_after_days`), not both. Keep one.";
    RotationWindow = "E038", Error, "a key's rotation window does not fit its lifetime",
        "`rotate_before_days` starts a rotation that many days before expiry. It needs an expiry \
         to count from, and must be shorter than `expires_after_days`, or every apply would \
         rotate the key again.";
    WorkspaceWithoutAdmin = "E039", Error, "a workspace has no admin",
        "Creating a workspace needs an admin (the Admin API's `admin_user_id`). Set `admin:` to a \
         member's email; that member is given `workspace_admin`.";
    AdminRoleConflict = "E040", Error, "a workspace admin is listed without `workspace_admin`",
        "A workspace's `admin` is one of its members with the `workspace_admin` role. Listing \
         the admin again under `members` is allowed, but then with `workspace_admin`.";
    TooFewAdmins = "E041", Error, "fewer organization admins than `min_admins`",
        "`organization.min_admins` guards against locking the organization out: the policy must \
         give at least that many members the `organization_admin` role.";
    SharedSecretFile = "E042", Error, "two keys deliver their secret to the same file",
        "Each key's `secret: { file: … }` must be a file of its own: a second key written to the \
         same path would overwrite the first key's secret, and its consumers would break. Give \
         each key its own path.";
    SecretFileOutside = "E043", Error, "a secret file path does not name a file in the repository",
        "A key's `secret: { file: … }` is written relative to the directory tramontane runs in \
         (the repository root) and must stay inside it: an absolute path, or a `..` that climbs \
         above the root, would let a policy change choose where on the applying machine a \
         secret lands. Use a path inside the repository (and list it in .gitignore), or deliver \
         the secret elsewhere with `secret: { command: [...] }`.";
    UnknownKey = "E044", Error, "a reference to an API key that is not defined",
        "A gateway key held by a service names it as `workspace.<workspace>.key.<key>`, and a \
         workspace's `gateway.upstream_key` names one of its own keys: the key must be defined \
         under that workspace's `keys`, because the gateway forwards requests with its secret. \
         Define the key, or fix the name.";
    HolderOutsideWorkspace = "E045", Error, "a gateway key's holder cannot use its workspace",
        "A gateway key lets its holder call models in one workspace, so the holder must belong \
         there: a member must be the workspace's admin, listed under its `members`, or in a \
         team assigned to it; a service key must be a key of that same workspace. Give the \
         member access to the workspace (usually through a team), or issue the key for a \
         workspace the holder belongs to.";
    GatewayKeyExpired = "E046", Error, "a gateway key has expired",
        "A gateway key's `expires` is the day (UTC) it stops working. An entry past it grants \
         nothing and only misleads a reader: remove it, or issue a new key with `tramontane \
         gateway issue`. A key is never extended by editing the date, since whoever held it \
         would keep it.";
    NoUpstreamKey = "E047", Error, "a member holds a gateway key in a workspace without an upstream key",
        "The gateway forwards a member's requests with a real Mistral key of the workspace, \
         named by `gateway.upstream_key`; a service's requests go out with the service's own \
         key. Add `gateway: { upstream_key: <key> }` to the workspace, naming one of its keys.";
    AmountTooPrecise = "E048", Error, "a currency amount is not exact to a millionth",
        "Spend guards and the prices of declared models are counted in millionths of the \
         currency, as integers, so that thousands of small request costs add up exactly. An \
         amount with more than 6 decimals cannot be held exactly: round it to 6 decimals or \
         fewer.";
    DuplicateDigest = "E049", Error, "two gateway keys have the same digest",
        "A digest covers the whole key, public id included, so two entries can share one only \
         if one was copied from the other: the copy can never match a key. Remove the copy, \
         and issue a new key for whoever should have one.";
    DeclaredAliasTaken = "E050", Error, "a declared model's alias already names another model",
        "An alias listed under `models.<id>.aliases` must be a name of that model or a new name: \
         taking over a name Mistral's catalog gives to another model would silently change what \
         every policy line naming it allows. Pick a name of your own; to set negotiated prices \
         for a model the catalog knows, declare them under that model's id.";
    SecretFileThroughLink = "E051", Error, "a secret file path crosses a symbolic link",
        "tramontane writes a key's secret to the path the policy names and follows no symbolic \
         link on the way: a committed link (`secrets -> ../elsewhere`, `secrets -> public`) \
         would send the secret where neither the policy, its review nor `.gitignore` see it, \
         or let two keys' paths name one file. Replace the link with a real directory, or \
         point the key's `file` at the link's target.";
    AlertThresholdOrder = "E052", Error, "alert thresholds are not in ascending order",
        "`alerts.thresholds` lists the percentages of a limit at which an alert fires, each \
         from 1 to 100 and each once. Write them in ascending order (`[50, 80, 95]`), as the \
         alerts will fire: a list out of order is usually a typo.";
    SecretInPolicy = "E053", Error, "a secret is written in the policy",
        "A webhook URL carries its own credential: whoever reads it can post to the channel. \
         Policies live in git and are read in pull requests, so an alert destination's `url` \
         names where the gateway reads the URL instead: `url: { env: VARIABLE }` (an \
         environment variable of the gateway) or `url: { file: /path/to/file }` (a file on \
         the gateway's machine). Move the URL there, and treat the one committed as leaked: \
         rotate it.";
    UnknownIssuer = "E054", Error, "a workload names an issuer that is not defined",
        "A workload is matched on tokens of one issuer, named under `issuers` with its `iss`, \
         its signing keys and the audiences accepted. Define the issuer, or fix the name.";
    IssuerKeySource = "E055", Error, "an issuer's signing keys cannot be read safely",
        "The gateway verifies a token's signature with its issuer's public keys, read from \
         exactly one of `jwks_url`, `discovery: true` (the issuer's \
         `/.well-known/openid-configuration`) or `jwks_file`. A URL must be `https://`: keys \
         read over plain HTTP could be replaced on the way, and anyone who can do that can \
         mint tokens. Plain `http://` is accepted only to a loopback address.";
    WorkloadUnmatchable = "E056", Error, "no token could match a workload",
        "A workload matches a token by its issuer's `iss`, its exact `subject` and its exact \
         `claims`. The registered claims (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`) are \
         checked by the gateway itself and are not strings a workload can require: write the \
         subject under `subject` and the audience under the issuer's `audiences`.";
    WorkloadsOverlap = "E057", Error, "one token could match two workloads",
        "Two workloads of one issuer with the same `subject` and no claim that tells them \
         apart would both match one token, and the gateway cannot pick whose limits apply: it \
         would refuse the token. Add a claim that differs (such as GitHub's `environment`), or \
         merge the two workloads.";
    DuplicateIssuer = "E058", Error, "two issuers have the same `iss`",
        "The gateway picks a token's issuer by its `iss`, so two entries of `issuers` with the \
         same `issuer` would leave it to guess whose keys, audiences and lifetime apply. Keep \
         one entry per `iss`: list every audience it accepts under that one entry's \
         `audiences`.";
    KeyNeverExpires = "W001", Warning, "a key never expires",
        "A key without `expires` or `expires_after_days` stays valid until someone deletes it. \
         Security teams usually want every key to expire and be rotated.";
    DeprecatedModel = "W002", Warning, "a model the catalog marks as deprecated",
        "Mistral retires deprecated models on the date the catalog gives; requests to them fail \
         after it. Move to the replacement the message names. The dates are judged against \
         today (UTC).";
    GatewayKeyExpiresSoon = "W003", Warning, "a gateway key expires within 14 days",
        "The key stops working on its `expires` day. Issue its holder a new one with \
         `tramontane gateway issue` and remove the old entry once they have moved.";
    RetiredModel = "W004", Warning, "a model Mistral has retired",
        "The catalog gives the model a retirement date that has passed (UTC): Mistral no longer \
         serves it and requests to it fail. The policy still loads, so that a plan can be made \
         while the move is reviewed; move to the replacement the message names. `plan` lists \
         the same warning.";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Code {
    type Err = ();

    fn from_str(text: &str) -> Result<Code, ()> {
        Code::ALL
            .iter()
            .copied()
            .find(|code| code.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or(())
    }
}

/// A secondary place that explains the primary one, such as the first of two duplicates.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub span: Span,
    pub label: String,
}

/// One problem found in a policy directory.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// Where the problem is; absent only for problems of the directory as a whole.
    pub span: Option<Span>,
    /// A short label under the offending text.
    pub label: Option<String>,
    pub help: Option<String>,
    pub notes: Vec<Note>,
    /// For files whose problem has no span: the file the problem is about.
    pub path: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            span: None,
            label: None,
            help: None,
            notes: Vec::new(),
            path: None,
        }
    }

    pub fn at(mut self, span: Span) -> Diagnostic {
        self.span = Some(span);
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn note(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.notes.push(Note {
            span,
            label: label.into(),
        });
        self
    }

    pub fn path(mut self, path: impl Into<String>) -> Diagnostic {
        self.path = Some(path.into());
        self
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }
}

/// "did you mean" for a misspelt name: the closest candidate, if it is close enough to be
/// a likely typo rather than a different word.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = strsim::levenshtein(&wrong_lower, &candidate.to_lowercase());
            (distance, candidate)
        })
        .filter(|(distance, candidate)| {
            let longest = wrong.chars().count().max(candidate.chars().count());
            *candidate != wrong && *distance <= (longest / 4).max(1)
        })
        .min_by_key(|(distance, candidate)| (*distance, *candidate))
        .map(|(_, candidate)| candidate)
}

/// `closest` for email addresses: within one domain only the local parts are compared, so
/// `zed@acme.example` is not "close" to `ada@acme.example` merely by sharing a long domain.
pub fn closest_email<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let Some((local, domain)) = wrong.rsplit_once('@') else {
        return closest(wrong, candidates);
    };
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let same_domain: Vec<(&str, &str)> = candidates
        .iter()
        .filter_map(|candidate| {
            let (candidate_local, candidate_domain) = candidate.rsplit_once('@')?;
            candidate_domain
                .eq_ignore_ascii_case(domain)
                .then_some((candidate_local, *candidate))
        })
        .collect();
    if same_domain.is_empty() {
        return closest(wrong, candidates);
    }
    let local_match = closest(local, same_domain.iter().map(|(local, _)| *local))?;
    same_domain
        .iter()
        .find(|(candidate_local, _)| *candidate_local == local_match)
        .map(|(_, email)| *email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(code.as_str().parse::<Code>(), Ok(*code));
        }
        assert_eq!("e010".parse::<Code>(), Ok(Code::UnknownProperty));
        assert!("E999".parse::<Code>().is_err());
    }

    #[test]
    fn closest_finds_typos_but_not_strangers() {
        let known = ["description", "admin", "members", "spend_limit"];
        assert_eq!(closest("descripton", known), Some("description"));
        assert_eq!(closest("spendlimit", known), Some("spend_limit"));
        assert_eq!(closest("colour", known), None);
        assert_eq!(closest("admin", known), None);
        assert_eq!(closest("Admin", known), Some("admin"));
    }

    #[test]
    fn email_suggestions_compare_the_person_not_the_domain() {
        let known = ["ada@acme.example", "bo@acme.example", "carol@acme.example"];
        assert_eq!(
            closest_email("bob@acme.example", known),
            Some("bo@acme.example")
        );
        assert_eq!(
            closest_email("caroll@acme.example", known),
            Some("carol@acme.example")
        );
        assert_eq!(closest_email("zed@acme.example", known), None);
        assert_eq!(
            closest_email("ada@acme.exmple", known),
            Some("ada@acme.example")
        );
    }
}
