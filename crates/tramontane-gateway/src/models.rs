//! The upstream's models, as `GET /v1/models` lists them, read into the library's
//! [`Catalog`]: every name (id or alias) resolves to one model, so a policy naming
//! `mistral-small-latest` allows the dated id it points to and the other way round. Read at
//! start and refreshed; until the first read succeeds the catalog bundled with tramontane
//! stands in. What this adds to the catalog is the gateway's reading of a missing context
//! length.

use tramontane::policy::catalog::{Catalog, CatalogError, ModelId};

/// When a model's context length is unknown, the longest any Mistral model has: a
/// completion's worst case can be no longer.
pub const UNKNOWN_CONTEXT_TOKENS: u64 = 262_144;

/// The models the gateway resolves names against.
#[derive(Clone, Debug, Default)]
pub struct ModelDirectory {
    catalog: Catalog,
}

impl ModelDirectory {
    pub fn bundled() -> ModelDirectory {
        ModelDirectory {
            catalog: Catalog::bundled().clone(),
        }
    }

    pub fn bundled_json() -> &'static str {
        Catalog::bundled_json()
    }

    pub fn from_json(bytes: &[u8]) -> Result<ModelDirectory, CatalogError> {
        Ok(ModelDirectory {
            catalog: Catalog::from_slice(bytes)?,
        })
    }

    /// Names resolved the way policies name models.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The model a name stands for.
    pub fn group(&self, name: &str) -> Option<ModelId> {
        self.catalog.resolve(name)
    }

    /// Whether two names are the same model.
    pub fn same(&self, a: &str, b: &str) -> bool {
        self.catalog.same(a, b)
    }

    /// The most tokens a completion of `model` can have.
    pub fn max_context_tokens(&self, model: &str) -> u64 {
        self.catalog
            .context_tokens(model)
            .filter(|&tokens| tokens > 0)
            .unwrap_or(UNKNOWN_CONTEXT_TOKENS)
    }

    /// How many models (not names) the directory has.
    pub fn len(&self) -> usize {
        self.catalog.models()
    }

    pub fn is_empty(&self) -> bool {
        self.catalog.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_catalog_resolves_aliases_both_ways() {
        let models = ModelDirectory::bundled();
        assert!(models.same("mistral-small-latest", "mistral-small-2603"));
        assert!(models.same("mistral-embed", "mistral-embed-2312"));
        assert!(!models.same("mistral-small-latest", "mistral-large-latest"));
        assert!(!models.same("nope", "mistral-small-latest"));
        assert_eq!(models.max_context_tokens("codestral-latest"), 131_072);
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
