//! How a live `GET /v1/models` answer differs from the bundled records: what `tramontane
//! models diff` reports, so that someone knows when the bundled data needs regenerating (or a
//! model declaring in the policy).

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use serde::Serialize;

use super::{Catalog, ModelId, Stage};

/// Everything that differs, each list sorted by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// Served live, unknown to the records.
    pub new: Vec<NewModel>,
    /// Retired in the records, yet still served.
    pub retired_but_served: Vec<RetiredButServed>,
    /// Current (or only deprecated) in the records, but its dated id is not served.
    pub not_served: Vec<NotServed>,
    /// Names that point at another model live than in the records.
    pub realiased: Vec<Realiased>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewModel {
    /// The names the records do not know, of one live model.
    pub ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetiredButServed {
    /// The records' dated id.
    pub id: String,
    /// Its names that are served.
    pub served_as: Vec<String>,
    pub retired: Option<String>,
    pub replacement: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotServed {
    pub id: String,
    /// `current` or `deprecated`.
    pub stage: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Realiased {
    pub alias: String,
    /// The dated id the records point it at.
    pub records: String,
    /// The dated id it points at live.
    pub live: String,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        *self == Drift::default()
    }
}

/// Compares the bundled records (`records`, a catalog built from them) with a live answer,
/// judging lifecycles on `today`.
pub fn compare(records: &Catalog, live: &Catalog, today: Date) -> Drift {
    let mut drift = Drift::default();
    let groups = |catalog: &Catalog| {
        let mut groups: BTreeMap<ModelId, Vec<String>> = BTreeMap::new();
        for name in catalog.names() {
            if let Some(id) = catalog.resolve(name) {
                groups.entry(id).or_default().push(name.to_owned());
            }
        }
        groups
    };

    for names in groups(live).values() {
        let unknown: Vec<String> = names
            .iter()
            .filter(|name| records.resolve(name).is_none())
            .cloned()
            .collect();
        if !unknown.is_empty() {
            drift.new.push(NewModel {
                ids: unknown.clone(),
            });
        }
        // The live model's dated id: a name the records know as one, else a new name that is
        // not a `-latest` alias.
        let live_dated = names
            .iter()
            .find(|name| records.dated_id(name) == Some(name.as_str()))
            .or_else(|| unknown.iter().find(|name| !name.ends_with("-latest")));
        let Some(live_dated) = live_dated else {
            continue;
        };
        for name in names {
            if let Some(dated) = records.dated_id(name)
                && dated != live_dated
                && name != live_dated
            {
                drift.realiased.push(Realiased {
                    alias: name.clone(),
                    records: dated.to_owned(),
                    live: live_dated.clone(),
                });
            }
        }
    }

    for names in groups(records).into_values() {
        let Some(first) = names.first() else { continue };
        let dated = records.dated_id(first).unwrap_or(first).to_owned();
        let served: Vec<String> = names
            .iter()
            .filter(|name| live.resolve(name).is_some())
            .cloned()
            .collect();
        let stage = records.stage(first, today).unwrap_or(Stage::Current);
        match (stage, served.is_empty()) {
            (Stage::Retired, false) => {
                let lifecycle = records.lifecycle(first);
                drift.retired_but_served.push(RetiredButServed {
                    id: dated,
                    served_as: served,
                    retired: lifecycle
                        .and_then(|lifecycle| lifecycle.retirement)
                        .map(|day| day.to_string()),
                    replacement: lifecycle.and_then(|lifecycle| lifecycle.replacement.clone()),
                });
            }
            // Served only through an alias that now points elsewhere is not served: that
            // alias shows under `realiased`.
            (Stage::Current | Stage::Deprecated, _) if live.resolve(&dated).is_none() => {
                drift.not_served.push(NotServed {
                    id: dated,
                    stage: if stage == Stage::Current {
                        "current"
                    } else {
                        "deprecated"
                    },
                })
            }
            _ => {}
        }
    }

    drift.new.sort_by(|a, b| a.ids.cmp(&b.ids));
    drift.retired_but_served.sort_by(|a, b| a.id.cmp(&b.id));
    drift.not_served.sort_by(|a, b| a.id.cmp(&b.id));
    let unique: BTreeSet<_> = drift
        .realiased
        .drain(..)
        .map(|r| (r.alias, r.records, r.live))
        .collect();
    drift.realiased = unique
        .into_iter()
        .map(|(alias, records, live)| Realiased {
            alias,
            records,
            live,
        })
        .collect();
    drift
}
