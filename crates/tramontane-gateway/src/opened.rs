//! Paths a workspace opens beyond the inference endpoints (`gateway.paths`): which entry
//! opens a path for a method, what the body names (the model and the agent, from JSON or a
//! multipart form alike), and what a call there costs where Mistral prices it by a unit other
//! than tokens (OCR pages, speech characters).
//!
//! A body the gateway cannot read is refused: it could name a model or an agent the caller
//! may not use, and the gateway would not see it.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method};
use serde_json::{Map, Value};
use tramontane::model::{Currency, ModelPrices, OpenedPath, PriceUnit};
use tramontane::policy::catalog::Catalog;

use crate::refusal::Refusal;
use crate::request;

/// Longest value read from a multipart form's `model` or `agent_id` field.
const MAX_NAME_BYTES: usize = 1024;

/// The entry of `paths` that lets `method` through to `path`, or why none does.
pub fn entry<'a>(
    paths: &'a [OpenedPath],
    method: &Method,
    path: &str,
) -> Result<&'a OpenedPath, Refusal> {
    let mut opening = paths.iter().filter(|open| open.opens(path)).peekable();
    if opening.peek().is_none() {
        return Err(Refusal::PathNotFound {
            path: path.to_owned(),
        });
    }
    opening
        .find(|open| {
            open.methods()
                .iter()
                .any(|allowed| allowed.as_str() == method.as_str())
        })
        .ok_or_else(|| Refusal::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_owned(),
        })
}

/// What an opened path's body says, as far as the checks need.
#[derive(Debug, Default, PartialEq)]
pub struct Fields {
    pub model: Option<String>,
    pub agent_id: Option<String>,
    /// The top level of a JSON body (empty for a form or no body).
    pub json: Map<String, Value>,
}

/// Reads the model and agent a body names: a JSON object (a key given twice is refused, as on
/// the inference paths) or a `multipart/form-data` form; an empty body names nothing. Anything
/// else is refused.
pub async fn read(headers: &HeaderMap, body: &Bytes) -> Result<Fields, Refusal> {
    if body.is_empty() {
        return Ok(Fields::default());
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return form(content_type, body.clone()).await;
    }
    // Read as raw entries first only to refuse a key given twice, which a map would hide.
    request::top_level(body).map_err(|refusal| match refusal {
        Refusal::MalformedJson { detail } => Refusal::UnreadableBody { detail },
        other => other,
    })?;
    let json: Map<String, Value> =
        serde_json::from_slice(body).map_err(|error| Refusal::UnreadableBody {
            detail: error.to_string(),
        })?;
    let name = |field: &'static str| match json.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(Refusal::InvalidField {
            field,
            detail: "must be a string".into(),
        }),
    };
    let (model, agent_id) = (name("model")?, name("agent_id")?);
    Ok(Fields {
        model,
        agent_id,
        json,
    })
}

async fn form(content_type: &str, body: Bytes) -> Result<Fields, Refusal> {
    let unreadable = |error: multer::Error| Refusal::UnreadableBody {
        detail: format!("the multipart form cannot be read ({error})"),
    };
    let boundary = multer::parse_boundary(content_type).map_err(unreadable)?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = Fields::default();
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        let slot = match name.as_str() {
            "model" => &mut fields.model,
            "agent_id" => &mut fields.agent_id,
            // A file or another field: read past it.
            _ => {
                field.bytes().await.map_err(unreadable)?;
                continue;
            }
        };
        let field_name: &'static str = if name == "model" { "model" } else { "agent_id" };
        if slot.is_some() {
            return Err(Refusal::DuplicateField { field: name });
        }
        let value = field.bytes().await.map_err(unreadable)?;
        if value.len() > MAX_NAME_BYTES {
            return Err(Refusal::InvalidField {
                field: field_name,
                detail: format!("is longer than {MAX_NAME_BYTES} bytes"),
            });
        }
        let text = String::from_utf8(value.to_vec()).map_err(|_| Refusal::InvalidField {
            field: field_name,
            detail: "must be UTF-8 text".into(),
        })?;
        *slot = Some(text);
    }
    Ok(fields)
}

/// An opened path Mistral prices by a unit other than tokens, whose count the request bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitPath {
    /// `/v1/ocr`: per page read (per annotated page when an annotation is asked for).
    Ocr,
    /// `/v1/audio/speech`: per character of text spoken.
    Speech,
}

impl UnitPath {
    pub fn of(path: &str) -> Option<UnitPath> {
        match path {
            "/v1/ocr" => Some(UnitPath::Ocr),
            "/v1/audio/speech" => Some(UnitPath::Speech),
            _ => None,
        }
    }
}

/// The most a unit-priced call can cost, in micro-units: the pages it names, the characters
/// it speaks. Refused when the request does not bound it or the model has no such price.
pub fn unit_cost(
    kind: UnitPath,
    fields: &Fields,
    catalog: &Catalog,
    currency: Currency,
) -> Result<u64, Refusal> {
    let model = fields.model.clone().unwrap_or_default();
    let prices: &ModelPrices =
        catalog
            .prices(&model, currency)
            .ok_or_else(|| Refusal::PriceUnknown {
                model: model.clone(),
            })?;
    let priced = |unit: PriceUnit, count: u64| prices.cost(unit, count).map(|m| m.micros());
    let cost = match kind {
        UnitPath::Ocr => {
            let pages = match fields.json.get("pages") {
                Some(Value::Array(pages)) if !pages.is_empty() => pages.len() as u64,
                _ => {
                    return Err(Refusal::CostUnbounded {
                        why: "an OCR request without `pages` may read a document of any length: name the pages to read",
                    });
                }
            };
            let annotated = ["bbox_annotation_format", "document_annotation_format"]
                .iter()
                .any(|key| fields.json.get(*key).is_some_and(|value| !value.is_null()));
            let unit = if annotated {
                PriceUnit::AnnotatedPages
            } else {
                PriceUnit::Pages
            };
            priced(unit, pages)
        }
        UnitPath::Speech => {
            let characters = match fields.json.get("input") {
                Some(Value::String(text)) => text.chars().count() as u64,
                _ => {
                    return Err(Refusal::CostUnbounded {
                        why: "a speech request must give its text as a string `input`",
                    });
                }
            };
            match (
                priced(PriceUnit::InputCharacters, characters),
                priced(PriceUnit::OutputCharacters, characters),
            ) {
                (None, None) => None,
                (input, output) => Some(input.unwrap_or(0).saturating_add(output.unwrap_or(0))),
            }
        }
    };
    cost.ok_or(Refusal::PriceUnknown { model })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tramontane::model::OpenedMethod;

    fn json(body: &str) -> Fields {
        let headers = HeaderMap::new();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(read(&headers, &Bytes::from(body.to_owned())))
            .unwrap()
    }

    fn form_of(parts: &[(&str, &str)]) -> Result<Fields, Refusal> {
        let mut body = String::new();
        for (name, value) in parts {
            body.push_str(&format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str("--XyZ--\r\n");
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            "multipart/form-data; boundary=XyZ".parse().unwrap(),
        );
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(read(&headers, &Bytes::from(body)))
    }

    #[test]
    fn an_entry_opens_its_path_for_its_methods() {
        let paths = vec![
            OpenedPath::Post("/v1/ocr".into()),
            OpenedPath::With {
                path: "/v1/files/*".into(),
                methods: vec![OpenedMethod::Get],
                unmetered: true,
            },
        ];
        assert!(entry(&paths, &Method::POST, "/v1/ocr").is_ok());
        assert!(matches!(
            entry(&paths, &Method::GET, "/v1/ocr"),
            Err(Refusal::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            entry(&paths, &Method::DELETE, "/v1/files/f-1"),
            Err(Refusal::MethodNotAllowed { .. })
        ));
        assert!(
            entry(&paths, &Method::GET, "/v1/files/f-1")
                .unwrap()
                .unmetered()
        );
        assert!(matches!(
            entry(&paths, &Method::POST, "/v1/ocr/x"),
            Err(Refusal::PathNotFound { .. })
        ));
    }

    #[test]
    fn the_model_is_read_from_json_and_forms_alike() {
        assert_eq!(
            json(r#"{"model":"mistral-ocr-latest","pages":[0]}"#)
                .model
                .as_deref(),
            Some("mistral-ocr-latest")
        );
        let fields = form_of(&[("file", "RIFF...."), ("model", "voxtral-mini-latest")]).unwrap();
        assert_eq!(fields.model.as_deref(), Some("voxtral-mini-latest"));
        assert_eq!(
            form_of(&[("model", "a"), ("model", "b")]),
            Err(Refusal::DuplicateField {
                field: "model".into()
            })
        );
        let headers = HeaderMap::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // `NaN` is not JSON: the model cannot be read, so the body is refused.
        assert!(matches!(
            runtime.block_on(read(
                &headers,
                &Bytes::from_static(br#"{"model":"x","temperature":NaN}"#)
            )),
            Err(Refusal::UnreadableBody { .. })
        ));
        assert!(matches!(
            runtime.block_on(read(
                &headers,
                &Bytes::from_static(br#"{"model":"a","model":"b"}"#)
            )),
            Err(Refusal::DuplicateField { .. })
        ));
        assert_eq!(
            runtime.block_on(read(&headers, &Bytes::new())).unwrap(),
            Fields::default()
        );
    }

    #[test]
    fn ocr_and_speech_are_priced_by_their_units() {
        let catalog = Catalog::bundled();
        // OCR 4.1: 4.00 per 1,000 pages, 5.00 annotated.
        let three = json(r#"{"model":"mistral-ocr-latest","pages":[0,1,2],"document":{}}"#);
        assert_eq!(
            unit_cost(UnitPath::Ocr, &three, catalog, Currency::Usd),
            Ok(12_000)
        );
        let annotated = json(
            r#"{"model":"mistral-ocr-latest","pages":[0],"document_annotation_format":{"type":"json_schema"}}"#,
        );
        assert_eq!(
            unit_cost(UnitPath::Ocr, &annotated, catalog, Currency::Usd),
            Ok(5_000)
        );
        assert!(matches!(
            unit_cost(
                UnitPath::Ocr,
                &json(r#"{"model":"mistral-ocr-latest","document":{}}"#),
                catalog,
                Currency::Usd
            ),
            Err(Refusal::CostUnbounded { .. })
        ));
        // Voxtral TTS: 16.00 per million characters spoken.
        let speech = json(r#"{"model":"voxtral-mini-tts-latest","input":"héllo"}"#);
        assert_eq!(
            unit_cost(UnitPath::Speech, &speech, catalog, Currency::Usd),
            Ok(80)
        );
        assert!(matches!(
            unit_cost(
                UnitPath::Ocr,
                &json(r#"{"model":"ft:unknown","pages":[0]}"#),
                catalog,
                Currency::Usd
            ),
            Err(Refusal::PriceUnknown { .. })
        ));
    }
}
