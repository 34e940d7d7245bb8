//! Model names: known to the catalog (bundled or declared in `models:`), and not past their
//! deprecation or retirement day.

use jiff::civil::Date;

use super::Checker;
use crate::policy::Section;
use crate::policy::catalog::{Catalog, Stage};
use crate::policy::diagnostic::{Code, Diagnostic};

/// What is wrong with naming `model` on `today`, if anything.
pub(super) fn model_diagnostic(catalog: &Catalog, model: &str, today: Date) -> Option<Diagnostic> {
    let Some(stage) = catalog.stage(model, today) else {
        let help = match catalog.suggest(model, today) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None => "use a current id or alias of Mistral's models, declare the model under `models`, or `*` for every model".into(),
        };
        return Some(
            Diagnostic::new(
                Code::UnknownModel,
                format!("`{model}` is not a model in Mistral's catalog"),
            )
            .label("unknown model")
            .help(help),
        );
    };
    let lifecycle = catalog.lifecycle(model)?;
    let help = match &lifecycle.replacement {
        Some(replacement) => format!("move to `{replacement}`"),
        None => "move to a current model".into(),
    };
    match stage {
        Stage::Current => None,
        Stage::Deprecated => {
            let since = match lifecycle.deprecation {
                Some(day) if day <= today => format!(" since {day}"),
                _ => String::new(),
            };
            let until = match lifecycle.retirement {
                Some(day) => format!("; Mistral retires it on {day}"),
                None => String::new(),
            };
            Some(
                Diagnostic::new(
                    Code::DeprecatedModel,
                    format!("`{model}` is deprecated{since}{until}"),
                )
                .label("deprecated")
                .help(help),
            )
        }
        Stage::Retired => {
            let when = match lifecycle.retirement {
                Some(day) => format!(" on {day}"),
                None => String::new(),
            };
            Some(
                Diagnostic::new(
                    Code::RetiredModel,
                    format!("`{model}` was retired{when}: requests to it fail"),
                )
                .label("retired")
                .help(help),
            )
        }
    }
}

impl Checker<'_> {
    /// A declared model's aliases must not take over a name the bundled catalog gives to
    /// another model: every policy line naming it would silently change meaning.
    pub(super) fn declared_models(&mut self) {
        let bundled = self.options.catalog;
        let mut found = Vec::new();
        for (id, model) in &self.desired.models {
            let own = bundled.resolve(id);
            for (i, alias) in model.aliases.iter().enumerate() {
                let Some(other) = bundled.resolve(alias) else {
                    continue;
                };
                if Some(other) == own {
                    continue;
                }
                let named = bundled.dated_id(alias).unwrap_or(alias);
                found.push((
                    self.origins.item_span(Section::Models, id, &["aliases"], i),
                    Diagnostic::new(
                        Code::DeclaredAliasTaken,
                        format!("`{alias}`, an alias of declared model `{id}`, already names `{named}`"),
                    )
                    .label("another model's name")
                    .help("choose an alias of your own, or declare the prices under the model's id instead"),
                ));
            }
        }
        for (span, diagnostic) in found {
            self.push(span, diagnostic);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::catalog::{Catalog, records};
    use crate::policy::diagnostic::{Code, Diagnostic};
    use crate::policy::{LoadOptions, LoadedPolicy, PolicyText, load_texts};

    fn load(yaml: &str, today: &str) -> LoadedPolicy {
        let options = LoadOptions::new(today.parse().unwrap());
        load_texts(
            "policies",
            vec![PolicyText {
                display: "policies/org.yaml".into(),
                bytes: yaml.as_bytes().to_vec(),
            }],
            &options,
        )
    }

    fn policy(models: &[&str], extra: &str) -> String {
        format!(
            "version: 1\nroles:\n  dev:\n    models: [{}]\n{extra}",
            models.join(", ")
        )
    }

    fn only(loaded: &LoadedPolicy, code: Code) -> Vec<&Diagnostic> {
        loaded
            .diagnostics
            .iter()
            .filter(|d| d.code == code)
            .collect()
    }

    #[test]
    fn every_id_and_alias_of_the_records_validates() {
        let names: Vec<&str> = records::bundled()
            .models
            .iter()
            .flat_map(|record| record.ids.iter().map(String::as_str))
            .collect();
        assert!(names.len() > 60);
        let loaded = load(&policy(&names, ""), "2026-12-07");
        assert_eq!(loaded.error_count(), 0, "{:#?}", loaded.diagnostics);
        // Every warning is about a model's lifecycle, never an unknown one.
        assert!(
            loaded
                .diagnostics
                .iter()
                .all(|d| matches!(d.code, Code::DeprecatedModel | Code::RetiredModel))
        );
    }

    #[test]
    fn a_retired_model_warns_with_its_date_and_replacement() {
        let loaded = load(&policy(&["mistral-small-2506"], ""), "2026-12-07");
        assert!(loaded.is_valid());
        let retired = only(&loaded, Code::RetiredModel);
        assert_eq!(retired.len(), 1);
        assert_eq!(
            retired[0].message,
            "`mistral-small-2506` was retired on 2026-07-31: requests to it fail"
        );
        assert_eq!(
            retired[0].help.as_deref(),
            Some("move to `mistral-small-2603`")
        );
        // Before its retirement day, the same model is deprecated.
        let loaded = load(&policy(&["mistral-small-2506"], ""), "2026-06-01");
        let deprecated = only(&loaded, Code::DeprecatedModel);
        assert_eq!(
            deprecated[0].message,
            "`mistral-small-2506` is deprecated since 2026-04-30; Mistral retires it on 2026-07-31"
        );
        assert!(only(&loaded, Code::RetiredModel).is_empty());
        let loaded = load(&policy(&["mistral-small-latest"], ""), "2026-12-07");
        assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    }

    #[test]
    fn an_unknown_model_is_an_error_suggesting_a_current_name() {
        let loaded = load(&policy(&["mistral-small-2505"], ""), "2026-12-07");
        let unknown = only(&loaded, Code::UnknownModel);
        assert_eq!(unknown.len(), 1);
        let help = unknown[0].help.as_deref().unwrap();
        assert!(!help.contains("2506"), "a retired suggestion: {help}");
        let loaded = load(&policy(&["mistral-smal-latest"], ""), "2026-12-07");
        assert_eq!(
            only(&loaded, Code::UnknownModel)[0].help.as_deref(),
            Some("did you mean `mistral-small-latest`?")
        );
    }

    #[test]
    fn declared_models_validate_and_may_not_take_another_model_s_name() {
        let declared = "models:\n  ft:mistral-small-2603:acme:1234:\n    aliases: [acme-support-latest]\n    context_tokens: 131072\n    prices: { currency: USD, input_tokens: \"0.30\", output_tokens: \"0.90\" }\n  mistral-medium-3-5:\n    prices: { currency: EUR, output_tokens: \"5.00\" }\n";
        let loaded = load(
            &policy(
                &["acme-support-latest", "ft:mistral-small-2603:acme:1234"],
                declared,
            ),
            "2026-12-07",
        );
        assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
        let ft = &loaded.desired.models["ft:mistral-small-2603:acme:1234"];
        assert_eq!(ft.aliases, vec!["acme-support-latest".to_owned()]);
        let catalog = Catalog::bundled().with_declared(&loaded.desired.models);
        assert_eq!(
            catalog
                .prices("mistral-medium-latest", crate::model::Currency::Eur)
                .unwrap()
                .output_tokens,
            Some(crate::model::Money::units(5))
        );

        let taken = "models:\n  acme-model:\n    aliases: [mistral-small-latest]\n";
        let loaded = load(&policy(&["acme-model"], taken), "2026-12-07");
        let errors = only(&loaded, Code::DeclaredAliasTaken);
        assert_eq!(errors.len(), 1, "{:#?}", loaded.diagnostics);
        assert!(errors[0].span.is_some());

        let bad =
            "models:\n  acme-model:\n    prices: { currency: GBP, input_tokens: \"0.1234567\" }\n";
        let loaded = load(&policy(&["mistral-small-latest"], bad), "2026-12-07");
        assert_eq!(loaded.error_count(), 2, "{:#?}", loaded.diagnostics);
    }
}
