//! Model allow-lists: what a caller may call, with aliases resolved through the catalog so
//! that `mistral-small-latest` and the dated id it points to count as one model.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::ALL_MODELS;
use crate::policy::catalog::Catalog;

/// The models a caller or workspace may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub enum Models {
    /// No list, or `"*"`: every model (within whatever encloses it).
    Every,
    /// These models, by the names the policy gives them.
    Only(BTreeSet<String>),
}

impl Models {
    /// A list as a policy writes it: absent or naming `"*"` is every model.
    pub fn declared(list: Option<&[String]>) -> Models {
        match list {
            Some(list) if !list.iter().any(|model| model == ALL_MODELS) => {
                Models::Only(list.iter().cloned().collect())
            }
            _ => Models::Every,
        }
    }

    /// Whether `name`, or another name of the same model, is allowed.
    pub fn allows(&self, name: &str, catalog: &Catalog) -> bool {
        match self {
            Models::Every => true,
            Models::Only(names) => {
                names.contains(name) || names.iter().any(|allowed| catalog.same(allowed, name))
            }
        }
    }

    /// These models as far as `enclosing` allows them: `"*"` becomes the enclosing list,
    /// and a name the enclosing list does not allow (under any alias) is dropped.
    pub fn within(&self, enclosing: &Models, catalog: &Catalog) -> Models {
        match (self, enclosing) {
            (Models::Every, enclosing) => enclosing.clone(),
            (own, Models::Every) => own.clone(),
            (Models::Only(names), enclosing) => Models::Only(
                names
                    .iter()
                    .filter(|name| enclosing.allows(name, catalog))
                    .cloned()
                    .collect(),
            ),
        }
    }

    /// Every model either allows.
    pub fn union(&self, other: &Models) -> Models {
        match (self, other) {
            (Models::Only(a), Models::Only(b)) => Models::Only(a.union(b).cloned().collect()),
            _ => Models::Every,
        }
    }
}

impl From<Vec<String>> for Models {
    fn from(list: Vec<String>) -> Models {
        Models::declared(Some(&list))
    }
}

impl From<Models> for Vec<String> {
    fn from(models: Models) -> Vec<String> {
        match models {
            Models::Every => vec![ALL_MODELS.to_owned()],
            Models::Only(names) => names.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::tests::{catalog, only};

    #[test]
    fn a_star_is_what_encloses_it_and_aliases_are_one_model() {
        let catalog = catalog();
        let workspace = only(&["small-latest", "embed"]);
        assert_eq!(Models::Every.within(&workspace, &catalog), workspace);
        assert_eq!(
            only(&["small-2506", "large-latest"]).within(&workspace, &catalog),
            only(&["small-2506"])
        );
        assert_eq!(
            only(&["embed"]).within(&Models::Every, &catalog),
            only(&["embed"])
        );
        assert!(workspace.allows("small-2506", &catalog));
        assert!(!workspace.allows("large-2411", &catalog));
        assert!(!workspace.allows("unknown", &catalog));
        assert_eq!(Models::declared(Some(&["*".into()])), Models::Every);
        assert_eq!(Models::declared(None), Models::Every);
        assert_eq!(only(&["a"]).union(&only(&["b"])), only(&["a", "b"]));
        assert_eq!(only(&["a"]).union(&Models::Every), Models::Every);
    }

    #[test]
    fn a_list_reads_and_writes_as_the_policy_writes_it() {
        assert_eq!(
            serde_json::to_value(Models::Every).unwrap(),
            serde_json::json!(["*"])
        );
        let read: Models = serde_json::from_value(serde_json::json!(["b", "a"])).unwrap();
        assert_eq!(read, only(&["a", "b"]));
    }
}
