//! The upstream's models, as `GET /v1/models` lists them: every name (id or alias) resolves
//! to one model, so a policy naming `mistral-small-latest` allows the dated id it points to
//! and the other way round. Read at start and refreshed; until the first read succeeds the
//! catalog bundled with tramontane stands in.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

const BUNDLED: &str = include_str!("../../../catalog/models.json");

/// When a model's context length is unknown, the longest any Mistral model has: a
/// completion's worst case can be no longer.
pub const UNKNOWN_CONTEXT_TOKENS: u64 = 262_144;

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelCard>,
}

#[derive(Deserialize)]
struct ModelCard {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    max_context_length: Option<u64>,
}

/// One model, with every name it answers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelGroup {
    pub names: BTreeSet<String>,
    pub max_context_tokens: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ModelDirectory {
    by_name: HashMap<String, usize>,
    groups: Vec<ModelGroup>,
}

#[derive(Debug, thiserror::Error)]
#[error("the model list is not a `GET /v1/models` response: {0}")]
pub struct ModelListError(#[from] serde_json::Error);

impl ModelDirectory {
    pub fn bundled() -> ModelDirectory {
        ModelDirectory::from_json(BUNDLED.as_bytes())
            .expect("the bundled catalog is checked by a unit test")
    }

    pub fn bundled_json() -> &'static str {
        BUNDLED
    }

    pub fn from_json(bytes: &[u8]) -> Result<ModelDirectory, ModelListError> {
        let list: ModelList = serde_json::from_slice(bytes)?;
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut parent: Vec<usize> = Vec::new();
        let mut context: Vec<u64> = Vec::new();
        fn find(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        let mut intern = |name: &str, parent: &mut Vec<usize>, context: &mut Vec<u64>| {
            *index.entry(name.to_owned()).or_insert_with(|| {
                parent.push(parent.len());
                context.push(0);
                parent.len() - 1
            })
        };
        for card in &list.data {
            let id = intern(&card.id, &mut parent, &mut context);
            context[id] = context[id].max(card.max_context_length.unwrap_or(0));
            for alias in &card.aliases {
                let other = intern(alias, &mut parent, &mut context);
                let (a, b) = (find(&mut parent, id), find(&mut parent, other));
                parent[a.max(b)] = a.min(b);
            }
        }
        let mut root_group: HashMap<usize, usize> = HashMap::new();
        let mut groups: Vec<ModelGroup> = Vec::new();
        let mut by_name = HashMap::new();
        let mut names: Vec<(&String, &usize)> = index.iter().collect();
        names.sort();
        for (name, &i) in names {
            let root = find(&mut parent, i);
            let group = *root_group.entry(root).or_insert_with(|| {
                groups.push(ModelGroup {
                    names: BTreeSet::new(),
                    max_context_tokens: 0,
                });
                groups.len() - 1
            });
            groups[group].names.insert(name.clone());
            groups[group].max_context_tokens = groups[group].max_context_tokens.max(context[i]);
            by_name.insert(name.clone(), group);
        }
        for group in &mut groups {
            if group.max_context_tokens == 0 {
                group.max_context_tokens = UNKNOWN_CONTEXT_TOKENS;
            }
        }
        Ok(ModelDirectory { by_name, groups })
    }

    /// The model a name stands for.
    pub fn group(&self, name: &str) -> Option<&ModelGroup> {
        self.by_name.get(name).map(|&i| &self.groups[i])
    }

    /// Whether two names are the same model.
    pub fn same(&self, a: &str, b: &str) -> bool {
        a == b || matches!((self.by_name.get(a), self.by_name.get(b)), (Some(x), Some(y)) if x == y)
    }

    /// The most tokens a completion of `model` can have.
    pub fn max_context_tokens(&self, model: &str) -> u64 {
        self.group(model)
            .map_or(UNKNOWN_CONTEXT_TOKENS, |group| group.max_context_tokens)
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_catalog_resolves_aliases_both_ways() {
        let models = ModelDirectory::bundled();
        assert!(models.same("mistral-small-latest", "mistral-small-2506"));
        assert!(models.same("mistral-embed", "mistral-embed-2312"));
        assert!(!models.same("mistral-small-latest", "mistral-large-latest"));
        assert!(!models.same("nope", "mistral-small-latest"));
        assert_eq!(models.max_context_tokens("codestral-latest"), 256_000);
        assert_eq!(
            models.max_context_tokens("not-a-model"),
            UNKNOWN_CONTEXT_TOKENS
        );
    }

    #[test]
    fn a_list_that_is_not_a_model_list_is_an_error() {
        assert!(ModelDirectory::from_json(b"{\"detail\": \"no\"}").is_err());
        assert!(ModelDirectory::from_json(b"<html>").is_err());
    }
}
