//! `catalog/mistral-models.json`: Mistral's published model records, as the generator in
//! `catalog/generate/` writes them, read into a [`Catalog`] and served back as a
//! `GET /v1/models` answer.

use jiff::civil::Date;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Catalog, Lifecycle, Model, Stage, Status};
use crate::model::{Currency, ModelPrices, Money, PriceUnit};

const BUNDLED: &str = include_str!("../../../../../catalog/mistral-models.json");

/// What the priority tier costs when the data does not say (Mistral's Priority Tier docs).
pub const PRIORITY_PERCENT: u64 = 175;
/// What a cached prompt token costs, as a share of an input token, when the data does not say
/// (Mistral's Prompt caching docs).
pub const CACHED_INPUT_PERCENT: u64 = 10;

/// The whole data file.
#[derive(Debug, Deserialize)]
pub struct Records {
    pub format_version: String,
    pub source: Source,
    pricing_rules: PricingRules,
    pub models: Vec<Record>,
}

/// Where the records were read: repository, commit, path and the commit's date.
#[derive(Debug, Deserialize)]
pub struct Source {
    pub repository: String,
    pub commit: String,
    pub path: String,
    pub date: Date,
}

#[derive(Debug, Deserialize)]
struct PricingRules {
    tiers: Vec<Tier>,
    cached_input: CachedInput,
}

#[derive(Debug, Deserialize)]
struct Tier {
    name: String,
    percent: u64,
}

#[derive(Debug, Deserialize)]
struct CachedInput {
    percent_of_input: u64,
}

/// One model record.
#[derive(Debug, Deserialize)]
pub struct Record {
    pub name: String,
    /// API ids: the dated id first, then its aliases. Empty for models the API never served.
    pub ids: Vec<String>,
    pub status: String,
    pub release_date: Option<Date>,
    pub deprecation_date: Option<Date>,
    pub retirement_date: Option<Date>,
    /// The replacement's dated id.
    pub replacement: Option<String>,
    pub description: Option<String>,
    pub context_tokens: Option<u64>,
    pub capabilities: Capabilities,
    pub prices: Vec<PriceLine>,
}

#[derive(Debug, Deserialize)]
pub struct Capabilities {
    pub input: Vec<String>,
    pub output: Vec<String>,
    pub features: Vec<String>,
}

/// One published price: an amount per `per` units of something sent or returned.
#[derive(Debug, Deserialize)]
pub struct PriceLine {
    pub direction: String,
    pub unit: String,
    pub per: u64,
    pub usd: String,
    pub eur: Option<String>,
    pub label: Option<String>,
}

/// Why the data file cannot be read: only a broken generator or a hand edit gets here.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("the model data is not the generator's JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("model `{model}`: {problem}")]
    Record { model: String, problem: String },
}

impl RecordsError {
    pub fn help(&self) -> &'static str {
        "regenerate catalog/mistral-models.json as catalog/README.md says, instead of editing it"
    }
}

/// The records compiled into this binary; a unit test proves they read.
pub fn bundled() -> &'static Records {
    static RECORDS: std::sync::OnceLock<Records> = std::sync::OnceLock::new();
    RECORDS.get_or_init(|| {
        Records::parse(BUNDLED).expect("the bundled records are checked by a unit test")
    })
}

impl Record {
    fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            status: match self.status.as_str() {
                "GA" => Status::Ga,
                "Deprecated" => Status::Deprecated,
                "Retired" => Status::Retired,
                // PublicPreview, Labs and whatever Mistral adds next: served, not promised.
                _ => Status::Preview,
            },
            deprecation: self.deprecation_date,
            retirement: self.retirement_date,
            replacement: self.replacement.clone(),
        }
    }

    /// The record's prices in `currency`; `None` where it publishes none in that currency.
    fn prices(
        &self,
        currency: Currency,
        cached_percent: u64,
    ) -> Result<Option<ModelPrices>, String> {
        let mut prices = ModelPrices::default();
        for line in &self.prices {
            let amount = match currency {
                Currency::Usd => Some(&line.usd),
                Currency::Eur => line.eur.as_ref(),
            };
            let Some(amount) = amount else { continue };
            let amount = Money::parse(amount).map_err(|error| error.to_string())?;
            let unit = line.price_unit()?;
            if line.per != unit.per() {
                return Err(format!(
                    "a price per {} {}, not per {}",
                    line.per,
                    line.unit,
                    unit.per()
                ));
            }
            prices.set(unit, amount);
        }
        Ok((!prices.is_empty()).then(|| prices.with_cached_input(cached_percent)))
    }
}

impl PriceLine {
    fn price_unit(&self) -> Result<PriceUnit, String> {
        let cached = self
            .label
            .as_deref()
            .is_some_and(|label| label.to_lowercase().contains("cached"));
        Ok(match (self.direction.as_str(), self.unit.as_str()) {
            ("input", "tokens") if cached => PriceUnit::CachedInputTokens,
            ("input", "tokens") => PriceUnit::InputTokens,
            ("output", "tokens") => PriceUnit::OutputTokens,
            ("input", "characters") => PriceUnit::InputCharacters,
            ("output", "characters") => PriceUnit::OutputCharacters,
            ("input", "minutes") => PriceUnit::AudioMinutes,
            ("input", "pages") => PriceUnit::Pages,
            ("input", "annotated_pages") => PriceUnit::AnnotatedPages,
            (direction, unit) => return Err(format!("no price unit for {direction} {unit}")),
        })
    }
}

impl Records {
    pub fn parse(text: &str) -> Result<Records, RecordsError> {
        let records: Records = serde_json::from_str(text)?;
        // Every price must read, so that a price the gateway needs never fails at request time.
        for record in &records.models {
            for currency in Currency::ALL {
                record
                    .prices(currency, CACHED_INPUT_PERCENT)
                    .map_err(|problem| RecordsError::Record {
                        model: record.name.clone(),
                        problem,
                    })?;
            }
        }
        Ok(records)
    }

    pub fn priority_percent(&self) -> u64 {
        self.pricing_rules
            .tiers
            .iter()
            .find(|tier| tier.name == "priority")
            .map_or(PRIORITY_PERCENT, |tier| tier.percent)
    }

    /// The records as a catalog: one model per record that has API ids.
    pub fn catalog(&self) -> Catalog {
        let mut catalog = Catalog {
            priority_percent: self.priority_percent(),
            cached_input_percent: self.pricing_rules.cached_input.percent_of_input,
            ..Catalog::default()
        };
        let cached = catalog.cached_input_percent;
        for record in self.models.iter().filter(|record| !record.ids.is_empty()) {
            let model = Model {
                dated_id: record.ids.first().cloned(),
                lifecycle: Some(record.lifecycle()),
                context_tokens: record.context_tokens,
                // Checked in `parse`.
                usd: record.prices(Currency::Usd, cached).unwrap_or_default(),
                eur: record.prices(Currency::Eur, cached).unwrap_or_default(),
            };
            catalog.insert(&record.ids, model);
        }
        catalog
    }

    /// Records a `GET /v1/models` answer would list: those not retired on the data's date.
    pub fn served(&self) -> impl Iterator<Item = &Record> {
        self.models.iter().filter(|record| {
            !record.ids.is_empty() && record.lifecycle().stage(self.source.date) != Stage::Retired
        })
    }

    /// A `GET /v1/models` answer (`ModelList` of `BaseModelCard`s) made from the records: one
    /// card per API id, each listing the model's other ids as its aliases, as Mistral does.
    pub fn model_list_json(&self) -> String {
        let mut data = Vec::new();
        for record in self.served() {
            for id in &record.ids {
                data.push(card(record, id));
            }
        }
        let list = json!({"object": "list", "data": data});
        serde_json::to_string_pretty(&list).expect("a JSON value always serializes")
    }
}

fn card(record: &Record, id: &str) -> Value {
    let has = |list: &[String], what: &str| list.iter().any(|item| item == what);
    let features = &record.capabilities.features;
    let created = record
        .release_date
        .and_then(|day| day.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map_or(0, |zoned| zoned.timestamp().as_second());
    let lifecycle = record.lifecycle();
    // The API's `deprecation` is when a deprecated model stops being served: set for every
    // model that will ever be deprecated (its stage at the end of time), from its retirement.
    let deprecation = match lifecycle.stage(Date::MAX) {
        Stage::Current => None,
        _ => lifecycle.retirement.map(|day| format!("{day}T00:00:00Z")),
    };
    let mut card = json!({
        "id": id,
        "object": "model",
        "created": created,
        "owned_by": "mistralai",
        "capabilities": {
            "completion_chat": has(features, "chat-completions"),
            "function_calling": has(features, "function-calling"),
            "reasoning": has(&record.capabilities.output, "reasoning"),
            "completion_fim": has(features, "fim"),
            "fine_tuning": false,
            "vision": has(&record.capabilities.input, "image"),
            "ocr": has(features, "ocr"),
            "classification": false,
            "moderation": has(features, "moderations") || has(features, "chat-moderations"),
            "audio": has(&record.capabilities.input, "audio"),
            "audio_transcription": has(features, "transcriptions"),
            // The records' features do not tell realtime transcription apart; its ids do.
            "audio_transcription_realtime": has(features, "transcriptions") && id.contains("realtime"),
            "audio_speech": has(features, "tts"),
            "unified_resources": false,
        },
        "name": record.name,
        "description": record.description,
        "max_context_length": record.context_tokens,
        "aliases": record.ids.iter().filter(|other| *other != id).collect::<Vec<_>>(),
        "deprecation": deprecation,
        "deprecation_replacement_model": deprecation.as_ref().and(record.replacement.as_ref()),
        "type": "base",
    });
    // Absent rather than invented: the API's default (32768) would be wrong for most models.
    if let (None, Value::Object(fields)) = (record.context_tokens, &mut card) {
        fields.shift_remove("max_context_length");
    }
    card
}
