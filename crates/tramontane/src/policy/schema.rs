//! The first pass: each file against `schema/policy.schema.json`, every error mapped from its
//! JSON pointer back to the YAML node it is about.

use std::borrow::Cow;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{JsonType, ValidationError, Validator};
use serde_json::Value as Json;

use super::diagnostic::{Code, Diagnostic, closest};
use super::yaml::{Node, Value};

/// The policy format, draft 2020-12. `tramontane schema` prints it.
pub const SCHEMA: &str = include_str!("../../../../schema/policy.schema.json");

pub struct PolicySchema {
    validator: Validator,
    document: Json,
}

/// One segment of an instance path, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A schema error, mapped: the diagnostic and the path of the value it condemns.
pub struct SchemaProblem {
    pub diagnostic: Diagnostic,
    pub path: Vec<Segment>,
    /// An unknown property condemns only itself: dropping it leaves a value the later checks
    /// can still use, so one typo does not hide every other problem of its workspace.
    pub droppable: bool,
}

impl PolicySchema {
    pub fn bundled() -> &'static PolicySchema {
        static SCHEMA_CELL: std::sync::OnceLock<PolicySchema> = std::sync::OnceLock::new();
        SCHEMA_CELL.get_or_init(|| {
            let document: Json =
                serde_json::from_str(SCHEMA).expect("the bundled schema is valid JSON");
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&document)
                .expect("the bundled schema compiles");
            PolicySchema {
                validator,
                document,
            }
        })
    }

    /// Every schema error of one file, in document order.
    pub fn check(&self, root: &Node, json: &Json) -> Vec<SchemaProblem> {
        let mut problems: Vec<SchemaProblem> = self
            .validator
            .iter_errors(json)
            .flat_map(|error| self.map_error(root, &error))
            .collect();
        problems.sort_by_key(|problem| problem.diagnostic.span.map(|span| span.start));
        problems
    }

    /// The properties a mapping at `path` accepts, read from the schema itself.
    fn allowed_properties(&self, context: &Context) -> Vec<&str> {
        let definition = match context {
            Context::File => &self.document,
            Context::Organization => &self.document["properties"]["organization"],
            Context::Prune => &self.document["properties"]["organization"]["properties"]["prune"],
            Context::Member(_) => &self.document["$defs"]["member"],
            Context::Role(_) => &self.document["$defs"]["role"],
            Context::Team(_) => &self.document["$defs"]["team"],
            Context::Workspace(_) => &self.document["$defs"]["workspace"],
            Context::Key(..) => &self.document["$defs"]["key"],
            Context::Secret(..) => &self.document["$defs"]["key"]["properties"]["secret"],
            Context::GatewayKey(_) => &self.document["$defs"]["gatewayKey"],
            Context::Issuer(_) => &self.document["$defs"]["issuer"],
            Context::Workload(_) => &self.document["$defs"]["workload"],
            Context::WorkspaceGateway(_) => &self.document["$defs"]["workspaceGateway"],
            Context::SpendGuard(_) => &self.document["$defs"]["spendGuard"],
            Context::Other => return Vec::new(),
        };
        definition["properties"]
            .as_object()
            .map(|properties| properties.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn description_of(&self, context: &Context, property: &str) -> Option<&str> {
        let definition = match context {
            Context::Member(_) => &self.document["$defs"]["member"],
            Context::Role(_) => &self.document["$defs"]["role"],
            Context::Key(..) => &self.document["$defs"]["key"],
            Context::Workspace(_) => &self.document["$defs"]["workspace"],
            Context::GatewayKey(_) => &self.document["$defs"]["gatewayKey"],
            Context::Issuer(_) => &self.document["$defs"]["issuer"],
            Context::Workload(_) => &self.document["$defs"]["workload"],
            _ => return None,
        };
        definition["properties"][property]["description"].as_str()
    }

    fn map_error(&self, root: &Node, error: &ValidationError<'_>) -> Vec<SchemaProblem> {
        let path: Vec<Segment> = error
            .instance_path()
            .iter()
            .map(|segment| match segment {
                LocationSegment::Property(name) => Segment::Key(name.into_owned()),
                LocationSegment::Index(i) => Segment::Index(i),
            })
            .collect();
        let Some(node) = node_at(root, &path) else {
            return Vec::new();
        };
        let context = Context::of(&path);
        let subject = subject(&path);
        let problem = |diagnostic: Diagnostic, path: Vec<Segment>| SchemaProblem {
            diagnostic,
            path,
            droppable: false,
        };
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
                .iter()
                .filter_map(|name| {
                    let entry = node.entries().iter().find(|entry| &entry.key == name)?;
                    let allowed = self.allowed_properties(&context);
                    let mut diagnostic = Diagnostic::new(
                        Code::UnknownProperty,
                        format!("unknown property `{name}` in {}", context.describe()),
                    )
                    .at(entry.key_span)
                    .label("not a property here");
                    diagnostic = match closest(name, allowed.iter().copied()) {
                        Some(suggestion) => diagnostic
                            .label(format!("did you mean `{suggestion}`?"))
                            .help(format!("rename it to `{suggestion}`")),
                        None => diagnostic.help(format!(
                            "{} accepts: {}",
                            context.describe(),
                            allowed.join(", ")
                        )),
                    };
                    let mut entry_path = path.clone();
                    entry_path.push(Segment::Key(name.clone()));
                    Some(SchemaProblem {
                        droppable: true,
                        ..problem(diagnostic, entry_path)
                    })
                })
                .collect(),
            ValidationErrorKind::Required { property } => {
                let property = property.as_str().unwrap_or_default();
                let mut diagnostic = Diagnostic::new(
                    Code::MissingProperty,
                    format!(
                        "{} is missing the required property `{property}`",
                        context.describe()
                    ),
                )
                .at(key_span_of(root, &path).unwrap_or(node.span))
                .label(format!("`{property}` is required"));
                if let Some(description) = self.description_of(&context, property) {
                    diagnostic = diagnostic.help(format!("add `{property}`: {description}"));
                }
                vec![problem(diagnostic, path)]
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(single) => type_name(*single).to_owned(),
                    TypeKind::Multiple(set) => {
                        let names: Vec<&str> = [
                            JsonType::Object,
                            JsonType::Array,
                            JsonType::String,
                            JsonType::Integer,
                            JsonType::Number,
                            JsonType::Boolean,
                            JsonType::Null,
                        ]
                        .into_iter()
                        .filter(|ty| set.contains(*ty))
                        .map(type_name)
                        .collect();
                        names.join(" or ")
                    }
                };
                let found = found_name(node);
                let message = if path.is_empty() {
                    format!("a policy file must be a mapping of sections, found {found}")
                } else {
                    format!("{subject} must be {expected}, found {found}")
                };
                let mut diagnostic = Diagnostic::new(Code::WrongType, message)
                    .at(node.span)
                    .label(format!("expected {expected}"));
                let help = if path.is_empty() {
                    "start the file with sections such as `members:` or `workspaces:`"
                } else if matches!(node.value, Value::Str(_))
                    && (expected.contains("integer") || expected.contains("number"))
                {
                    "write the number without quotes"
                } else if expected.contains("integer") || expected.contains("number") {
                    "write a plain number, such as `60`"
                } else if expected == "text" {
                    "put the value in quotes to make it text"
                } else if expected == "a list" {
                    "write a list: `[a, b]`, or one `- item` per line"
                } else if expected == "a mapping" {
                    "write `key: value` pairs, indented under this key"
                } else {
                    "change the value to the expected type"
                };
                diagnostic = diagnostic.help(help);
                vec![problem(diagnostic, path)]
            }
            ValidationErrorKind::PropertyNames { error: inner } => {
                let name = inner.instance().as_str().unwrap_or_default().to_owned();
                let span = node
                    .entries()
                    .iter()
                    .find(|entry| entry.key == name)
                    .map_or(node.span, |entry| entry.key_span);
                let (message, help) = invalid_text(inner.kind(), &name, &context, &path);
                let mut entry_path = path.clone();
                entry_path.push(Segment::Key(name));
                vec![problem(
                    Diagnostic::new(Code::InvalidValue, message)
                        .at(span)
                        .label("not allowed here")
                        .help(help),
                    entry_path,
                )]
            }
            ValidationErrorKind::AnyOf { .. } if is_spend_limit(&path) => vec![problem(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!(
                        "{subject} must be a non-negative amount or `unlimited`, found {}",
                        found_name(node)
                    ),
                )
                .at(node.span)
                .help("write a monthly amount such as `500`, or `unlimited`"),
                path,
            )],
            ValidationErrorKind::UniqueItems => {
                let items = node.items();
                let duplicate = items.iter().enumerate().find_map(|(i, item)| {
                    items[..i]
                        .iter()
                        .find(|earlier| earlier.to_json() == item.to_json())
                        .map(|earlier| (earlier, item))
                });
                let mut diagnostic = Diagnostic::new(
                    Code::InvalidValue,
                    format!("{subject} lists the same item twice"),
                )
                .help("remove the repeated item");
                diagnostic = match duplicate {
                    Some((earlier, again)) => diagnostic
                        .at(again.span)
                        .label("listed again here")
                        .note(earlier.span, "first listed here"),
                    None => diagnostic.at(node.span),
                };
                vec![problem(diagnostic, path)]
            }
            kind => {
                let text = match &node.value {
                    Value::Str(text) => text.clone(),
                    _ => node.to_json().to_string(),
                };
                let (message, help) = invalid_text(kind, &text, &context, &path);
                vec![problem(
                    Diagnostic::new(Code::InvalidValue, message)
                        .at(node.span)
                        .help(help),
                    path,
                )]
            }
        }
    }
}

/// The message and help for a value the schema rejects for its content, not its type.
fn invalid_text(
    kind: &ValidationErrorKind,
    text: &str,
    context: &Context,
    path: &[Segment],
) -> (String, String) {
    let subject = subject(path);
    match kind {
        ValidationErrorKind::Format { format } if format == "email" => (
            format!("`{text}` is not a valid email address"),
            "write the member's full address, such as `alice@acme.example`".into(),
        ),
        ValidationErrorKind::Format { format } if format == "date" => (
            format!("`{text}` is not a valid date"),
            "write the date as YYYY-MM-DD, such as `2027-03-01`".into(),
        ),
        ValidationErrorKind::Pattern { .. } if last_key(path) == Some("digest") => (
            format!("`{text}` is not a key digest"),
            "write `sha256:` and 64 lowercase hexadecimal digits, as `tramontane gateway issue` writes them; the policy holds the key's digest, never the key".into(),
        ),
        ValidationErrorKind::Pattern { .. } if last_key(path) == Some("gateway_keys") => (
            format!("`{text}` is not a gateway key id"),
            "ids are 4 to 40 lowercase letters, digits and inner hyphens; `tramontane gateway issue` mints them".into(),
        ),
        ValidationErrorKind::Pattern { .. } if last_key(path) == Some("agents") => (
            format!("`{text}` is not an agent id"),
            "write the agent's id as Mistral shows it, such as `ag_0195d3c4`".into(),
        ),
        ValidationErrorKind::Pattern { .. } if last_key(path) == Some("paths") => (
            format!("`{text}` is not an inference path"),
            "write a path under /v1/, such as `/v1/ocr`: lowercase letters, digits, `_` and `-` between single slashes".into(),
        ),
        ValidationErrorKind::AnyOf { .. } if last_key(path) == Some("holder") => (
            format!("`{text}` is not a holder"),
            "write a member's email, or a service key as `workspace.<workspace>.key.<key>`".into(),
        ),
        ValidationErrorKind::Pattern { .. } if last_key(path) == Some("models") || matches!(path.last(), Some(Segment::Index(_))) => (
            format!("`{text}` is not a model id"),
            "use a model id or alias from GET /v1/models, such as `mistral-small-latest`, or `*` for every model".into(),
        ),
        ValidationErrorKind::Pattern { .. } => (
            format!("`{text}` is not a valid name for {}", context.entity_kind()),
            "names are 1 to 100 characters, without dots, control characters or leading or trailing spaces".into(),
        ),
        ValidationErrorKind::Enum { options } => {
            let choices: Vec<&str> = options
                .as_array()
                .map(|options| options.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            let kind = if choices.contains(&"workspace_admin") {
                "a workspace role"
            } else {
                "an organization role"
            };
            let help = match closest(text, choices.iter().copied()) {
                Some(suggestion) => format!("did you mean `{suggestion}`?"),
                None => format!("expected one of: {}", choices.join(", ")),
            };
            (format!("`{text}` is not {kind}"), help)
        }
        ValidationErrorKind::Minimum { limit } => (
            format!("{subject} must be at least {limit}, found {text}"),
            format!("use a value of {limit} or more"),
        ),
        ValidationErrorKind::Maximum { limit } => (
            format!("{subject} must be at most {limit}, found {text}"),
            format!("use a value of {limit} or less"),
        ),
        ValidationErrorKind::MinItems { .. } => (
            format!("{subject} must list at least one item"),
            "add an item, or remove the property".into(),
        ),
        ValidationErrorKind::MinLength { .. } => (
            format!("{subject} must not be empty"),
            "write a value, or remove the property".into(),
        ),
        ValidationErrorKind::MaxLength { limit } => (
            format!("{subject} is longer than {limit} characters"),
            "shorten it".into(),
        ),
        ValidationErrorKind::MinProperties { .. } if last_key(path) == Some("spend_guard") => (
            format!("{subject} sets no window"),
            "set at least one of `hour`, `day` or `month`, or remove `spend_guard`".into(),
        ),
        ValidationErrorKind::MinProperties { .. } | ValidationErrorKind::MaxProperties { .. }
            if last_key(path) == Some("secret") =>
        (
            format!("{subject} must set exactly one of `file` or `command`"),
            "deliver the secret to a file (`file: secrets/name.key`) or to a command's stdin (`command: [vault, kv, put, ...]`)".into(),
        ),
        other => (
            format!("{subject}: {}", describe_kind(other)),
            "see `tramontane schema` for the accepted values".into(),
        ),
    }
}

fn describe_kind(kind: &ValidationErrorKind) -> Cow<'static, str> {
    match kind {
        ValidationErrorKind::Constant { expected_value } => {
            format!("must be {expected_value}").into()
        }
        ValidationErrorKind::MaxProperties { limit } => {
            format!("must have at most {limit} properties").into()
        }
        ValidationErrorKind::MinProperties { limit } => {
            format!("must have at least {limit} properties").into()
        }
        _ => "is not an accepted value".into(),
    }
}

fn is_spend_limit(path: &[Segment]) -> bool {
    last_key(path) == Some("spend_limit")
}

fn last_key(path: &[Segment]) -> Option<&str> {
    path.iter().rev().find_map(|segment| match segment {
        Segment::Key(key) => Some(key.as_str()),
        Segment::Index(_) => None,
    })
}

fn type_name(ty: JsonType) -> &'static str {
    match ty {
        JsonType::Object => "a mapping",
        JsonType::Array => "a list",
        JsonType::String => "text",
        JsonType::Integer => "an integer",
        JsonType::Number => "a number",
        JsonType::Boolean => "true or false",
        JsonType::Null => "empty",
    }
}

fn found_name(node: &Node) -> String {
    match &node.value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Int(i) => format!("the integer `{i}`"),
        Value::Float(f) => format!("the number `{f}`"),
        Value::Str(text) => {
            let shown: String = text.chars().take(40).collect();
            let ellipsis = if shown.len() < text.len() { "…" } else { "" };
            format!("the text `{shown}{ellipsis}`")
        }
        Value::Seq(_) => "a list".into(),
        Value::Map(_) => "a mapping".into(),
    }
}

/// How people would name the value at `path`: "`rpm` of workspace `dev`".
fn subject(path: &[Segment]) -> String {
    let property = match path.last() {
        Some(Segment::Key(key)) => format!("`{key}`"),
        Some(Segment::Index(i)) => format!("item {}", i + 1),
        None => return "the file".into(),
    };
    let owner = Context::of(&path[..path.len() - 1]);
    match owner {
        Context::File | Context::Other => property,
        owner => format!("{property} of {}", owner.describe()),
    }
}

/// What a mapping at some path is, for messages and for the properties it accepts.
enum Context {
    File,
    Organization,
    Prune,
    Member(String),
    Role(String),
    Team(String),
    Workspace(String),
    Key(String, String),
    Secret(String, String),
    GatewayKey(String),
    Issuer(String),
    Workload(String),
    WorkspaceGateway(String),
    /// A spend guard, described by what it guards.
    SpendGuard(String),
    Other,
}

impl Context {
    fn of(path: &[Segment]) -> Context {
        let keys: Vec<&str> = path
            .iter()
            .map(|segment| match segment {
                Segment::Key(key) => key.as_str(),
                Segment::Index(_) => "#",
            })
            .collect();
        match keys.as_slice() {
            [] => Context::File,
            ["organization"] => Context::Organization,
            ["organization", "prune"] => Context::Prune,
            ["members", email] => Context::Member((*email).into()),
            ["roles", name] => Context::Role((*name).into()),
            ["teams", name] => Context::Team((*name).into()),
            ["workspaces", name] => Context::Workspace((*name).into()),
            ["workspaces", workspace, "keys", key] => {
                Context::Key((*workspace).into(), (*key).into())
            }
            ["workspaces", workspace, "keys", key, "secret"] => {
                Context::Secret((*workspace).into(), (*key).into())
            }
            ["gateway_keys", id] => Context::GatewayKey((*id).into()),
            ["issuers", name] => Context::Issuer((*name).into()),
            ["workloads", name] => Context::Workload((*name).into()),
            ["workspaces", workspace, "gateway"] => Context::WorkspaceGateway((*workspace).into()),
            [owner @ .., "spend_guard"] if !owner.is_empty() => {
                let owner_path: Vec<Segment> = path[..path.len() - 1].to_vec();
                Context::SpendGuard(Context::of(&owner_path).describe())
            }
            _ => Context::Other,
        }
    }

    fn describe(&self) -> String {
        match self {
            Context::File => "a policy file".into(),
            Context::Organization => "`organization`".into(),
            Context::Prune => "`organization.prune`".into(),
            Context::Member(email) => format!("member `{email}`"),
            Context::Role(name) => format!("role `{name}`"),
            Context::Team(name) => format!("team `{name}`"),
            Context::Workspace(name) => format!("workspace `{name}`"),
            Context::Key(workspace, key) => format!("key `{key}` of workspace `{workspace}`"),
            Context::Secret(workspace, key) => {
                format!("the secret of key `{key}` in workspace `{workspace}`")
            }
            Context::GatewayKey(id) => format!("gateway key `{id}`"),
            Context::Issuer(name) => format!("issuer `{name}`"),
            Context::Workload(name) => format!("workload `{name}`"),
            Context::WorkspaceGateway(workspace) => {
                format!("the `gateway` of workspace `{workspace}`")
            }
            Context::SpendGuard(owner) => format!("the spend guard of {owner}"),
            Context::Other => "this mapping".into(),
        }
    }

    fn entity_kind(&self) -> &'static str {
        match self {
            Context::Other | Context::File => "an entry",
            _ => "this entry",
        }
    }
}

/// The node at a path, if the path leads anywhere.
pub fn node_at<'a>(root: &'a Node, path: &[Segment]) -> Option<&'a Node> {
    let mut node = root;
    for segment in path {
        node = match segment {
            Segment::Key(key) => &node.get(key)?.value,
            Segment::Index(i) => node.items().get(*i)?,
        };
    }
    Some(node)
}

/// Where the key that introduces the value at `path` is written.
pub fn key_span_of(root: &Node, path: &[Segment]) -> Option<super::source::Span> {
    let (last, parent) = path.split_last()?;
    let parent = node_at(root, parent)?;
    match last {
        Segment::Key(key) => Some(parent.get(key)?.key_span),
        Segment::Index(i) => Some(parent.items().get(*i)?.span),
    }
}
