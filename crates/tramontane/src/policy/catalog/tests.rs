use std::collections::BTreeMap;

use super::drift::{self, Realiased};
use super::*;
use crate::model::{DeclaredModel, DeclaredPrices, Money, PriceUnit};

fn day(text: &str) -> Date {
    text.parse().unwrap()
}

fn money(text: &str) -> Money {
    Money::parse(text).unwrap()
}

#[test]
fn every_id_of_every_record_resolves_to_its_record() {
    let records = records::bundled();
    let catalog = Catalog::bundled();
    assert_eq!(records.format_version, "1");
    let mut ids = 0;
    for record in &records.models {
        for id in &record.ids {
            ids += 1;
            assert!(catalog.resolve(id).is_some(), "{id} does not resolve");
            assert_eq!(
                catalog.dated_id(id),
                record.ids.first().map(String::as_str),
                "{id}"
            );
            assert!(catalog.same(id, &record.ids[0]));
        }
    }
    assert_eq!(catalog.len(), ids, "an id listed twice in the data");
    assert!(catalog.models() > 40);
}

#[test]
fn the_2026_models_and_their_aliases_are_known() {
    let catalog = Catalog::bundled();
    for (alias, dated) in [
        ("mistral-medium-latest", "mistral-medium-3-5"),
        ("mistral-medium-3", "mistral-medium-3-5"),
        ("mistral-small-latest", "mistral-small-2603"),
        ("ministral-3b-latest", "ministral-3b-2512"),
        ("ministral-8b-2512", "ministral-8b-2512"),
        ("ministral-14b-2512", "ministral-14b-2512"),
        ("mistral-ocr-latest", "mistral-ocr-4-1"),
        ("voxtral-mini-latest", "voxtral-mini-2602"),
        ("mistral-moderation-2603", "mistral-moderation-2603"),
        ("devstral-latest", "devstral-2512"),
        ("mistral-large-latest", "mistral-large-2512"),
        ("codestral-latest", "codestral-2508"),
        ("mistral-embed", "mistral-embed-2312"),
    ] {
        assert_eq!(catalog.dated_id(alias), Some(dated), "{alias}");
    }
    assert_eq!(
        catalog.context_tokens("mistral-medium-latest"),
        Some(262_144)
    );
    assert_eq!(catalog.context_tokens("mistral-embed"), Some(8_192));
}

#[test]
fn published_prices_read_exactly() {
    let catalog = Catalog::bundled();
    let usd = |name: &str| catalog.prices(name, Currency::Usd).unwrap();
    assert_eq!(
        usd("mistral-medium-latest").output_tokens,
        Some(money("7.5"))
    );
    assert_eq!(usd("mistral-medium-3-5").input_tokens, Some(money("1.5")));
    assert_eq!(
        catalog
            .prices("mistral-medium-3-5", Currency::Eur)
            .unwrap()
            .output_tokens,
        Some(money("6.4"))
    );
    assert_eq!(usd("voxtral-small-2507").output_tokens, Some(money("0.4")));
    assert_eq!(
        usd("voxtral-small-2507").audio_minutes,
        Some(money("0.004"))
    );
    assert_eq!(usd("mistral-ocr-4-1").pages, Some(money("4")));
    assert_eq!(usd("mistral-ocr-4-1").annotated_pages, Some(money("5")));
    assert_eq!(
        usd("mistral-ocr-4-1").cost(PriceUnit::Pages, 1),
        Some(money("0.004"))
    );
    assert_eq!(
        usd("voxtral-mini-tts-2603").output_characters,
        Some(money("16"))
    );
    assert_eq!(
        usd("voxtral-mini-tts-2603").input_characters,
        Some(Money::ZERO)
    );
    // Cached input: published where it is, a tenth of the input price elsewhere.
    assert_eq!(usd("zai-glm-5-2").cached_input_tokens, Some(money("0.14")));
    assert_eq!(
        usd("mistral-medium-3-5").cached_input_tokens,
        Some(money("0.15"))
    );
    // Free models cost zero, not "unknown".
    assert_eq!(
        usd("mistral-moderation-2603").input_tokens,
        Some(Money::ZERO)
    );
    // A rounding up: 1 token of Medium 3.5's output is 0.0000075, billed as 8 micro-units.
    assert_eq!(
        usd("mistral-medium-3-5").cost(PriceUnit::OutputTokens, 1),
        Some(Money::from_micros(8))
    );
    // No EUR price published: none, never the USD amount.
    assert_eq!(catalog.prices("mistral-medium-2508", Currency::Eur), None);
    assert_eq!(catalog.prices("open-mistral-7b", Currency::Usd), None);
    assert_eq!(catalog.prices("no-such-model", Currency::Usd), None);
    assert_eq!(catalog.priority_percent(), 175);
    assert_eq!(
        catalog
            .tiers()
            .priority(usd("mistral-medium-3-5").output_tokens.unwrap()),
        money("13.125")
    );
    let priced = catalog.priced_ids();
    assert!(priced.contains(&"mistral-medium-3-5"));
    assert!(!priced.contains(&"open-mistral-7b"));
}

#[test]
fn lifecycles_are_judged_on_the_day() {
    let catalog = Catalog::bundled();
    let small = catalog.lifecycle("mistral-small-2506").unwrap();
    assert_eq!(small.retirement, Some(day("2026-07-31")));
    assert_eq!(small.replacement.as_deref(), Some("mistral-small-2603"));
    assert_eq!(
        catalog.stage("mistral-small-2506", day("2026-05-01")),
        Some(Stage::Deprecated)
    );
    assert_eq!(
        catalog.stage("mistral-small-2506", day("2026-07-31")),
        Some(Stage::Retired)
    );
    assert_eq!(
        catalog.stage("mistral-small-latest", day("2026-12-07")),
        Some(Stage::Current)
    );
    assert_eq!(catalog.stage("unknown", day("2026-12-07")), None);
}

#[test]
fn suggestions_are_current_names_only() {
    let catalog = Catalog::bundled();
    let today = day("2026-12-07");
    assert_eq!(
        catalog.suggest("mistral-smal-latest", today),
        Some("mistral-small-latest")
    );
    // `mistral-small-2506` is one edit away but retired.
    let suggestion = catalog.suggest("mistral-small-2505", today);
    assert_ne!(suggestion, Some("mistral-small-2506"));
    for name in catalog.names() {
        if let Some(suggestion) = catalog.suggest(&format!("{name}x"), today) {
            assert_eq!(catalog.stage(suggestion, today), Some(Stage::Current));
        }
    }
}

#[test]
fn the_bundled_model_list_is_a_get_models_answer_of_the_served_records() {
    let text = Catalog::bundled_json();
    let list: serde_json::Value = serde_json::from_str(text).unwrap();
    let cards = list["data"].as_array().unwrap();
    let card = |id: &str| {
        cards
            .iter()
            .find(|card| card["id"] == id)
            .unwrap_or_else(|| panic!("no card {id}"))
    };
    let medium = card("mistral-medium-latest");
    assert_eq!(
        medium["aliases"],
        serde_json::json!(["mistral-medium-3-5", "mistral-medium-3"])
    );
    assert_eq!(medium["max_context_length"], 262_144);
    assert_eq!(medium["capabilities"]["vision"], true);
    assert_eq!(medium["type"], "base");
    assert_eq!(medium["deprecation"], serde_json::Value::Null);
    let deprecated = card("mistral-medium-2508");
    assert_eq!(deprecated["deprecation"], "2026-08-31T00:00:00Z");
    assert_eq!(
        deprecated["deprecation_replacement_model"],
        "mistral-medium-3-5"
    );
    // Retired on the data's date: not served.
    assert!(!cards.iter().any(|card| card["id"] == "mistral-small-2506"));
    // Read back, it is the same catalog for every served name.
    let live = Catalog::from_json(text).unwrap();
    let bundled = Catalog::bundled();
    for name in live.names() {
        for other in live.names() {
            assert_eq!(live.same(name, other), bundled.same(name, other));
        }
    }
}

#[test]
fn aliases_are_one_model() {
    let catalog = Catalog::from_json(
        r#"{"object": "list", "data": [
            {"id": "small-2506", "aliases": ["small-latest"]},
            {"id": "small-latest", "aliases": ["small-2506"]},
            {"id": "large-2411", "aliases": [], "deprecation": "2026-01-01T00:00:00Z"}]}"#,
    )
    .unwrap();
    assert_eq!(
        catalog.resolve("small-2506"),
        catalog.resolve("small-latest")
    );
    assert_ne!(catalog.resolve("small-2506"), catalog.resolve("large-2411"));
    let lifecycle = catalog.lifecycle("large-2411").unwrap();
    assert_eq!(lifecycle.retirement, Some(day("2026-01-01")));
    assert_eq!(
        catalog.stage("large-2411", day("2025-12-01")),
        Some(Stage::Deprecated)
    );
    assert_eq!(catalog.resolve("unknown"), None);
    assert_eq!(catalog.models(), 2);
}

#[test]
fn declared_models_join_and_override_the_catalog() {
    let mut declared = BTreeMap::new();
    declared.insert(
        "ft:mistral-small-2603:acme:1234".to_owned(),
        DeclaredModel {
            aliases: vec!["acme-support-latest".into()],
            context_tokens: Some(131_072),
            prices: Some(DeclaredPrices {
                currency: Currency::Usd,
                per_unit: ModelPrices {
                    input_tokens: Some(money("0.3")),
                    output_tokens: Some(money("0.9")),
                    ..ModelPrices::default()
                },
            }),
        },
    );
    declared.insert(
        "mistral-medium-latest".to_owned(),
        DeclaredModel {
            prices: Some(DeclaredPrices {
                currency: Currency::Usd,
                per_unit: ModelPrices {
                    input_tokens: Some(money("1")),
                    ..ModelPrices::default()
                },
            }),
            ..DeclaredModel::default()
        },
    );
    let catalog = Catalog::bundled().with_declared(&declared);
    assert!(catalog.same("acme-support-latest", "ft:mistral-small-2603:acme:1234"));
    assert_eq!(
        catalog.dated_id("acme-support-latest"),
        Some("ft:mistral-small-2603:acme:1234")
    );
    assert_eq!(catalog.context_tokens("acme-support-latest"), Some(131_072));
    let ft = catalog
        .prices("acme-support-latest", Currency::Usd)
        .unwrap();
    assert_eq!(ft.output_tokens, Some(money("0.9")));
    assert_eq!(ft.cached_input_tokens, Some(money("0.03")));
    assert_eq!(catalog.prices("acme-support-latest", Currency::Eur), None);
    assert_eq!(
        catalog.stage("acme-support-latest", day("2026-12-07")),
        Some(Stage::Current)
    );
    // Negotiated: input replaced (and the cached price with it), output as listed.
    let medium = catalog.prices("mistral-medium-3-5", Currency::Usd).unwrap();
    assert_eq!(medium.input_tokens, Some(money("1")));
    assert_eq!(medium.cached_input_tokens, Some(money("0.1")));
    assert_eq!(medium.output_tokens, Some(money("7.5")));
    assert_eq!(
        catalog
            .prices("mistral-medium-3-5", Currency::Eur)
            .unwrap()
            .input_tokens,
        Some(money("1.25"))
    );
    assert!(Catalog::bundled().resolve("acme-support-latest").is_none());
}

#[test]
fn drift_names_new_retired_unserved_and_realiased_models() {
    let records = Catalog::bundled();
    let live = Catalog::from_json(
        r#"{"object": "list", "data": [
            {"id": "mistral-medium-3-6", "aliases": ["mistral-medium-latest"]},
            {"id": "mistral-medium-latest", "aliases": ["mistral-medium-3-6"]},
            {"id": "mistral-small-2603", "aliases": ["mistral-small-latest"]},
            {"id": "mistral-small-2506", "aliases": []}]}"#,
    )
    .unwrap();
    let drift = drift::compare(records, &live, day("2026-12-07"));
    assert_eq!(drift.new.len(), 1);
    assert_eq!(drift.new[0].ids, vec!["mistral-medium-3-6".to_owned()]);
    assert_eq!(drift.retired_but_served.len(), 1);
    assert_eq!(drift.retired_but_served[0].id, "mistral-small-2506");
    assert_eq!(
        drift.realiased,
        vec![Realiased {
            alias: "mistral-medium-latest".into(),
            records: "mistral-medium-3-5".into(),
            live: "mistral-medium-3-6".into(),
        }]
    );
    assert!(
        drift
            .not_served
            .iter()
            .any(|m| m.id == "mistral-medium-3-5")
    );
    assert!(
        !drift
            .not_served
            .iter()
            .any(|m| m.id == "mistral-small-2603")
    );
    assert!(
        !drift
            .not_served
            .iter()
            .any(|m| m.id == "mistral-small-2506")
    );
    let same = drift::compare(
        records,
        &Catalog::from_json(Catalog::bundled_json()).unwrap(),
        day("2026-08-21"),
    );
    assert!(same.new.is_empty() && same.realiased.is_empty() && same.retired_but_served.is_empty());
}
