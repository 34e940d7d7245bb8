//! The policy's runtime lines applied to one request, in order, before anything is sent
//! upstream: the model or agent, max tokens and choices, the request rates, then the token
//! budgets and spend guards, reserved at the request's worst case.

use std::sync::Arc;

use bytes::Bytes;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::access::{Grant, Period};
use crate::models::ModelDirectory;
use crate::prices::{PriceSource, PriceTable};
use crate::refusal::Refusal;
use crate::request::InferenceRequest;
use crate::store::{Admission, BudgetLine, LimitStore, RateHit, Reservation, ReservationId};

/// What a reserved line counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    Tokens,
    Spend,
}

/// A request that passed every check: what to forward and, once admitted, what it holds.
pub struct Admitted {
    pub body: Bytes,
    pub reservation: Option<Reservation>,
    pub lines: Vec<LineKind>,
    pub price: PriceSource,
    pub prompt_estimate: u64,
    pub worst_tokens: u64,
    pub worst_cost: u64,
}

/// Checks what the body asks for against the grant, and puts the cap on `max_tokens`.
pub fn check_request(
    grant: &Grant,
    request: &InferenceRequest,
    body: &Bytes,
    models: &ModelDirectory,
    max_choices: u64,
) -> Result<Bytes, Refusal> {
    if let Some(model) = &request.model
        && !grant.allows_model(model, models)
    {
        return Err(Refusal::ModelNotAllowed {
            model: model.clone(),
            allowed: grant.allowed_models(models).unwrap_or_default(),
        });
    }
    if let Some(agent) = &request.agent_id
        && request.endpoint == crate::request::Endpoint::Agents
        && !grant.agents.contains(agent)
    {
        return Err(Refusal::AgentNotAllowed {
            agent: agent.clone(),
        });
    }
    if request.choices > max_choices {
        return Err(Refusal::TooManyChoices {
            asked: request.choices,
            limit: max_choices,
        });
    }
    let Some(cap) = grant.max_tokens_per_request else {
        return Ok(body.clone());
    };
    if let Some(asked) = request.max_tokens
        && asked > cap
    {
        return Err(Refusal::MaxTokensExceeded { asked, limit: cap });
    }
    Ok(request
        .inject_max_tokens(body, cap)
        .unwrap_or_else(|| body.clone()))
}

/// The rate keys of a grant, in the order a refusal names them.
pub fn rate_hits(grant: &Grant) -> Vec<RateHit> {
    grant
        .rates
        .iter()
        .map(|rule| RateHit {
            key: format!("rpm:{}:{}", rule.scope.kind, rule.scope.name),
            per_minute: rule.rpm,
        })
        .collect()
}

/// Counts the request against the grant's rates and reserves `lines` (its worst case, from
/// [`worst_case`]) under `request_id`, in one store operation: a request refused for a
/// budget takes no rate slot. The reservation, when there are lines, is the caller's to
/// settle. `Err(None)`: the store failed (the caller decides between failing open and
/// closed).
pub async fn admit(
    store: &Arc<dyn LimitStore>,
    grant: &Grant,
    request_id: &str,
    lines: &[BudgetLine],
    now: Timestamp,
) -> Result<Option<Reservation>, Option<Refusal>> {
    let hits = rate_hits(grant);
    let id = ReservationId(request_id.to_owned());
    match store.admit_and_reserve(&hits, &id, lines, now).await {
        Ok(Admission::Admitted) => {
            Ok((!lines.is_empty()).then(|| Reservation::new(store.clone(), id, lines.len())))
        }
        Ok(Admission::RateLimited { index, retry_after }) => {
            let rule = &grant.rates[index];
            Err(Some(Refusal::RateLimited {
                scope: rule.scope.clone(),
                rpm: rule.rpm,
                retry_after,
            }))
        }
        Ok(Admission::BudgetRefused { index, retry_after }) => {
            // The lines are the token budgets, then the spend guards (`budget_lines`).
            let refusal = match index.checked_sub(grant.token_budgets.len()) {
                None => {
                    let budget = &grant.token_budgets[index];
                    Refusal::TokenBudgetExhausted {
                        scope: budget.scope.clone(),
                        budget: budget.daily,
                        retry_after,
                    }
                }
                Some(guard) => {
                    let guard = &grant.spend_guards[guard];
                    Refusal::SpendGuardReached {
                        scope: guard.scope.clone(),
                        period: guard.period.as_str(),
                        limit_micros: guard.limit_micros,
                        retry_after,
                    }
                }
            };
            Err(Some(refusal))
        }
        Err(error) => {
            crate::store::failure_log::STORE_FAILURES.warn("admit and reserve", &error);
            Err(None)
        }
    }
}

/// The calendar window (UTC) `now` falls in: its name and when it ends.
pub fn window(period: Period, now: Timestamp) -> (String, Timestamp) {
    let zoned = now.to_zoned(TimeZone::UTC);
    let date = zoned.date();
    let end_of = |date: jiff::civil::Date| {
        date.to_zoned(TimeZone::UTC)
            .map(|zoned| zoned.timestamp())
            .unwrap_or(Timestamp::MAX)
    };
    match period {
        Period::Hour => {
            let start = date.at(zoned.hour(), 0, 0, 0);
            let end = start
                .checked_add(1.hour())
                .ok()
                .and_then(|end| end.to_zoned(TimeZone::UTC).ok())
                .map_or(Timestamp::MAX, |zoned| zoned.timestamp());
            (format!("{date}T{:02}", zoned.hour()), end)
        }
        Period::Day => (
            date.to_string(),
            date.tomorrow().map_or(Timestamp::MAX, end_of),
        ),
        Period::Month => {
            let first = date.first_of_month();
            let next = date.last_of_month().tomorrow();
            (
                first.strftime("%Y-%m").to_string(),
                next.map_or(Timestamp::MAX, end_of),
            )
        }
    }
}

/// The request's worst case: every prompt token the estimate allows plus every completion
/// token it may ask for.
pub fn worst_completion(request: &InferenceRequest, grant: &Grant, models: &ModelDirectory) -> u64 {
    if !request.endpoint.generates() {
        return 0;
    }
    let per_choice = request
        .max_tokens
        .or(grant.max_tokens_per_request)
        .unwrap_or_else(|| {
            request
                .model
                .as_deref()
                .map_or(crate::models::UNKNOWN_CONTEXT_TOKENS, |model| {
                    models.max_context_tokens(model)
                })
        });
    per_choice.saturating_mul(request.choices)
}

/// The budget lines a request reserves against, with what each may take at worst.
pub fn budget_lines(
    grant: &Grant,
    worst_tokens: u64,
    worst_cost: u64,
    now: Timestamp,
) -> (Vec<BudgetLine>, Vec<LineKind>) {
    let mut lines = Vec::new();
    let mut kinds = Vec::new();
    for budget in &grant.token_budgets {
        let (name, end) = window(Period::Day, now);
        lines.push(BudgetLine {
            counter: format!(
                "tokens:{}:{}:day:{name}",
                budget.scope.kind, budget.scope.name
            ),
            limit: budget.daily,
            amount: worst_tokens,
            window_end: end,
        });
        kinds.push(LineKind::Tokens);
    }
    for guard in &grant.spend_guards {
        let (name, end) = window(guard.period, now);
        lines.push(BudgetLine {
            counter: format!(
                "spend:{}:{}:{}:{name}",
                guard.scope.kind,
                guard.scope.name,
                guard.period.as_str()
            ),
            limit: guard.limit_micros,
            amount: worst_cost,
            window_end: end,
        });
        kinds.push(LineKind::Spend);
    }
    (lines, kinds)
}

/// Prices the request's worst case and names the budget lines it is reserved against; the
/// reservation itself is taken by [`admit`].
pub fn worst_case(
    grant: &Grant,
    request: &InferenceRequest,
    body: Bytes,
    models: &ModelDirectory,
    prices: &PriceTable,
    now: Timestamp,
) -> (Admitted, Vec<BudgetLine>) {
    let completion = worst_completion(request, grant, models);
    let price = match &request.model {
        Some(model) => prices.price(model, models),
        // An agent's model is known only from its answer: reserve at the dearest price.
        None => PriceSource::Fallback(prices.dearest()),
    };
    let worst_tokens = request.prompt_estimate.saturating_add(completion);
    let worst_cost = price.price().cost(request.prompt_estimate, completion);
    let (lines, kinds) = budget_lines(grant, worst_tokens, worst_cost, now);
    let admitted = Admitted {
        body,
        reservation: None,
        lines: kinds,
        price,
        prompt_estimate: request.prompt_estimate,
        worst_tokens,
        worst_cost,
    };
    (admitted, lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{RateRule, SpendRule, TokenBudget};
    use crate::refusal::LimitScope;
    use crate::request::Endpoint;
    use crate::store::memory::MemoryStore;
    use tramontane::runtime::Models;

    fn scope(kind: &'static str) -> LimitScope {
        LimitScope {
            kind,
            name: "x".into(),
        }
    }

    fn grant() -> Grant {
        Grant {
            model_rules: vec![Models::Only(["mistral-small-latest".to_owned()].into())],
            max_tokens_per_request: Some(100),
            rates: vec![RateRule {
                scope: scope("key"),
                rpm: 1,
            }],
            token_budgets: vec![TokenBudget {
                scope: scope("member"),
                daily: 1000,
            }],
            spend_guards: vec![SpendRule {
                scope: scope("team"),
                period: Period::Hour,
                limit_micros: 50,
            }],
            ..Grant::default()
        }
    }

    fn chat(body: &str) -> (InferenceRequest, Bytes) {
        let body = Bytes::from(body.to_owned());
        (
            InferenceRequest::parse(Endpoint::Chat, &body).unwrap(),
            body,
        )
    }

    #[test]
    fn windows_are_utc_calendar_periods() {
        let now: Timestamp = "2026-02-28T23:59:30Z".parse().unwrap();
        assert_eq!(
            window(Period::Hour, now),
            (
                "2026-02-28T23".into(),
                "2026-03-01T00:00:00Z".parse().unwrap()
            )
        );
        assert_eq!(
            window(Period::Day, now),
            ("2026-02-28".into(), "2026-03-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(
            window(Period::Month, now),
            ("2026-02".into(), "2026-03-01T00:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn the_model_and_max_tokens_are_checked_and_the_cap_injected() {
        let models = ModelDirectory::bundled();
        let (request, body) = chat(r#"{"model":"mistral-large-latest","messages":[]}"#);
        assert!(matches!(
            check_request(&grant(), &request, &body, &models, 8),
            Err(Refusal::ModelNotAllowed { allowed, .. }) if allowed == vec!["mistral-small-latest"]
        ));
        let (request, body) =
            chat(r#"{"model":"mistral-small-2603","messages":[],"max_tokens":101}"#);
        assert_eq!(
            check_request(&grant(), &request, &body, &models, 8),
            Err(Refusal::MaxTokensExceeded {
                asked: 101,
                limit: 100
            })
        );
        let (request, body) = chat(r#"{"model":"mistral-small-2603","messages":[],"n":9}"#);
        assert!(matches!(
            check_request(&grant(), &request, &body, &models, 8),
            Err(Refusal::TooManyChoices { .. })
        ));
        let (request, body) = chat(r#"{"model":"mistral-small-2603","messages":[]}"#);
        let forwarded = check_request(&grant(), &request, &body, &models, 8).unwrap();
        assert!(forwarded.starts_with(br#"{"max_tokens":100,"#));
    }

    /// Prices a chat completion asking for 100 tokens, at 10:30, and admits it under `id` as
    /// the proxy does: its prompt estimate plus 100 tokens at worst.
    async fn take(
        store: &Arc<dyn LimitStore>,
        grant: &Grant,
        id: &str,
    ) -> Result<Option<Reservation>, Option<Refusal>> {
        let now: Timestamp = "2026-11-26T10:30:00Z".parse().unwrap();
        let (request, _) =
            chat(r#"{"model":"mistral-small-latest","messages":[],"max_tokens":100}"#);
        let (models, prices) = (ModelDirectory::bundled(), PriceTable::bundled());
        let (_, lines) = worst_case(grant, &request, Bytes::new(), &models, &prices, now);
        admit(store, grant, id, &lines, now).await
    }

    #[tokio::test]
    async fn a_budget_that_cannot_take_the_worst_case_refuses_with_its_scope() {
        let store: Arc<dyn LimitStore> = Arc::new(MemoryStore::default());
        let mut grant = grant();
        grant.rates.clear();
        grant.spend_guards.clear();
        // Nine worst cases fit in 1000 tokens.
        let mut held = Vec::new();
        for i in 0..9 {
            let reservation = take(&store, &grant, &format!("r{i}"))
                .await
                .unwrap_or_else(|_| panic!("request {i} fits"));
            held.push(reservation.expect("a reservation for the budget"));
        }
        let Err(Some(Refusal::TokenBudgetExhausted {
            scope, retry_after, ..
        })) = take(&store, &grant, "r9").await
        else {
            panic!("the tenth is refused");
        };
        assert_eq!(scope.kind, "member");
        assert_eq!(retry_after.as_secs(), 13 * 3600 + 30 * 60);
        drop(held);
    }

    #[tokio::test]
    async fn a_spend_guard_refusal_names_the_guard_after_the_token_budgets() {
        let mut grant = grant();
        grant.rates.clear();
        // 10 micros cannot hold a worst case the token budget can.
        grant.spend_guards[0].limit_micros = 10;
        let store: Arc<dyn LimitStore> = Arc::new(MemoryStore::default());
        let Err(Some(Refusal::SpendGuardReached {
            scope, retry_after, ..
        })) = take(&store, &grant, "r1").await
        else {
            panic!("the spend guard refuses");
        };
        assert_eq!(scope.kind, "team");
        assert_eq!(retry_after.as_secs(), 30 * 60);
    }

    #[tokio::test]
    async fn the_rate_refusal_names_its_rule() {
        let store: Arc<dyn LimitStore> = Arc::new(MemoryStore::default());
        let now = Timestamp::now();
        assert!(matches!(
            admit(&store, &grant(), "r1", &[], now).await,
            Ok(None)
        ));
        let Err(Some(Refusal::RateLimited { rpm, .. })) =
            admit(&store, &grant(), "r2", &[], now).await
        else {
            panic!("the second request in a minute is refused");
        };
        assert_eq!(rpm, 1);
    }
}
