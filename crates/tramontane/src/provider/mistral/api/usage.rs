//! `GET /v1/admin/usage`: `UsageOUTJSON` and what it references, field for field.
//!
//! The spec types a usage record only as an object of any fields
//! (`additionalProperties: true`); [`UsageRecord`] keeps it whole and the reader of spend
//! ([`crate::provider::mistral::usage`]) says which fields it needs and refuses a record
//! without them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `UsageOUTJSON`: every field is required by the spec, nullable ones included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageOutJson {
    pub completion: BasicModelUsageDataJson,
    pub ocr: BasicModelUsageDataJson,
    pub connectors: BasicModelUsageDataJson,
    pub libraries_api: LibrariesApiUsageDataJson,
    pub fine_tuning: FineTuningDataJson,
    pub audio: BasicModelUsageDataJson,
    pub audio_characters: BasicModelUsageDataJson,
    /// Always 0, says the spec: Vibe usage has its own API.
    pub vibe_usage: f64,
    pub vibe_code: VibeCodeUsageDataJson,
    pub chat: BasicModelUsageDataJson,
    pub date: String,
    pub previous_month: Option<String>,
    pub next_month: Option<String>,
    pub start_date: String,
    pub end_date: String,
    pub currency: Option<String>,
    pub currency_symbol: Option<String>,
    pub prices: Option<Vec<PriceData>>,
}

/// One usage record: any fields (the spec's `additionalProperties: true`).
pub type UsageRecord = Map<String, Value>;

/// `BasicModelUsageDataJSON`: records by model, then by usage kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BasicModelUsageDataJson {
    pub models: BTreeMap<String, BTreeMap<String, Vec<UsageRecord>>>,
}

/// `LibrariesAPIUsageDataJSON`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LibrariesApiUsageDataJson {
    pub pages: BasicModelUsageDataJson,
    pub tokens: BasicModelUsageDataJson,
    pub audio_seconds: BasicModelUsageDataJson,
}

/// `FineTuningDataJSON`: training records by model and kind; storage as whole units by
/// model, without a billing metric to price them by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FineTuningDataJson {
    pub training: BTreeMap<String, BTreeMap<String, Vec<UsageRecord>>>,
    pub storage: BTreeMap<String, i64>,
}

/// `VibeCodeUsageDataJSON`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VibeCodeUsageDataJson {
    pub completion: BasicModelUsageDataJson,
    pub ocr: BasicModelUsageDataJson,
    pub connectors: BasicModelUsageDataJson,
    pub audio: BasicModelUsageDataJson,
    pub audio_characters: BasicModelUsageDataJson,
}

/// `PriceData`: the unit price of one billing metric and group, in one zone and tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceData {
    pub event_type: Option<LagoEventType>,
    pub billing_metric: String,
    pub billing_group: String,
    pub api_zone: ApiZone,
    pub service_tier: ServiceTier,
    pub price: PriceValue,
}

/// `PriceData.price`: a number or a decimal string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PriceValue {
    Number(f64),
    Text(String),
}

impl PriceValue {
    /// The price as a number; `None` for a string that is not a decimal.
    pub fn amount(&self) -> Option<f64> {
        match self {
            PriceValue::Number(number) => Some(*number).filter(|n| n.is_finite()),
            PriceValue::Text(text) => text.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        }
    }
}

/// `ApiZone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiZone {
    Global,
    Us,
    Eu,
}

impl ApiZone {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiZone::Global => "global",
            ApiZone::Us => "us",
            ApiZone::Eu => "eu",
        }
    }
}

/// `ServiceTier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceTier {
    Standard,
    Priority,
}

impl ServiceTier {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceTier::Standard => "standard",
            ServiceTier::Priority => "priority",
        }
    }
}

/// `LagoEventType`, every value the spec lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LagoEventType {
    #[serde(rename = "api_tokens")]
    ApiTokens,
    #[serde(rename = "api_pages")]
    ApiPages,
    #[serde(rename = "api_audio_seconds")]
    ApiAudioSeconds,
    #[serde(rename = "api_audio_characters")]
    ApiAudioCharacters,
    #[serde(rename = "api_connectors")]
    ApiConnectors,
    #[serde(rename = "api_libraries_tokens")]
    ApiLibrariesTokens,
    #[serde(rename = "api_libraries_pages")]
    ApiLibrariesPages,
    #[serde(rename = "api_libraries_audio")]
    ApiLibrariesAudio,
    #[serde(rename = "deployment_tokens")]
    DeploymentTokens,
    #[serde(rename = "gpu_hour")]
    GpuHour,
    #[serde(rename = "reserved_instance")]
    ReservedInstance,
    #[serde(rename = "vibe_tokens")]
    VibeTokens,
    #[serde(rename = "vibe_connectors")]
    VibeConnectors,
    #[serde(rename = "vibe_pages")]
    VibePages,
    #[serde(rename = "vibe_audio_seconds")]
    VibeAudioSeconds,
    #[serde(rename = "vibe_audio_characters")]
    VibeAudioCharacters,
}
