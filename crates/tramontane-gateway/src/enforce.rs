//! The policy's runtime lines applied to one request, in order, before anything is sent
//! upstream: the model or agent, max tokens and choices, the request rates, then the token
//! budgets and spend guards, reserved at the request's worst case.

use std::sync::Arc;

use bytes::Bytes;
use jiff::Timestamp;

use crate::access::Grant;
use crate::models::ModelDirectory;
use crate::prices::{PRIORITY_PERCENT, PriceTable, STANDARD_PERCENT, TokenCounts, TokenPrices};
use crate::refusal::Refusal;
use crate::request::{InferenceRequest, RequestedTier};
use crate::store::{
    Admission, BudgetLine, Leases, LimitStore, RateHit, Reservation, ReservationId, StoreError,
};
use tramontane::runtime::{Measure, Window};

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
    pub worst: Worst,
}

/// A request's worst case: what it is reserved at, and the prices and tier that priced it,
/// which settle it when its answer does not say better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Worst {
    pub tokens: TokenCounts,
    /// Micro-units; 0 when the model has no price (then no spend guard applies).
    pub cost: u64,
    /// The asked model's prices (the dearest of the table for an agent); `None` unpriced.
    pub prices: Option<TokenPrices>,
    /// The tier asked for, in percent of the list price: priority unless `standard_only`.
    pub tier_percent: u64,
}

/// The one model check, whatever the path named it (an inference body, a model card's
/// path, an opened path's body): refused with the names the caller may use.
pub fn check_model(grant: &Grant, model: &str, models: &ModelDirectory) -> Result<(), Refusal> {
    if grant.allows_model(model, models) {
        return Ok(());
    }
    Err(Refusal::ModelNotAllowed {
        model: model.to_owned(),
        allowed: grant.allowed_models(models).unwrap_or_default(),
    })
}

/// The one agent check.
pub fn check_agent(grant: &Grant, agent: &str) -> Result<(), Refusal> {
    if grant.agents.contains(agent) {
        return Ok(());
    }
    Err(Refusal::AgentNotAllowed {
        agent: agent.to_owned(),
    })
}

/// Checks what the body asks for against the grant, and puts the cap on `max_tokens`.
pub fn check_request(
    grant: &Grant,
    request: &InferenceRequest,
    body: &Bytes,
    models: &ModelDirectory,
    max_choices: u64,
) -> Result<Bytes, Refusal> {
    if let Some(model) = &request.model {
        check_model(grant, model, models)?;
    }
    if let Some(agent) = &request.agent_id
        && request.endpoint == crate::request::Endpoint::Agents
    {
        check_agent(grant, agent)?;
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

/// The request-rate rules of a grant, as the store counts them.
pub fn rate_hits(grant: &Grant) -> Vec<RateHit> {
    grant
        .rules
        .iter()
        .filter(|rule| rule.measure == Measure::Requests)
        .map(|rule| RateHit {
            rule: rule.id.clone(),
            key: rule.store_key("now"),
            per_minute: u32::try_from(rule.limit).unwrap_or(u32::MAX),
        })
        .collect()
}

/// Counts the request against the grant's rates and reserves `lines` (its worst case, from
/// [`worst_case`]) under `request_id`, in one store operation: a request refused for a
/// budget takes no rate slot. The reservation, when there are lines, is the caller's to
/// settle; a refusal names the rule the store says refused.
pub async fn admit(
    store: &Arc<dyn LimitStore>,
    grant: &Grant,
    request_id: &str,
    lines: &[BudgetLine],
    now: Timestamp,
    leases: &Leases,
) -> Result<Option<Reservation>, Admit> {
    let hits = rate_hits(grant);
    let id = ReservationId(request_id.to_owned());
    match store.admit_and_reserve(&hits, &id, lines, now).await {
        Ok(Admission::Admitted) => {
            Ok((!lines.is_empty())
                .then(|| Reservation::new(store.clone(), id, lines.len(), leases)))
        }
        Ok(refused) => {
            let (rule, retry_after) = refused.refused_by(&hits, lines).ok_or_else(|| {
                Admit::StoreFailed(StoreError(
                    "the store named a limit it was not asked about".into(),
                ))
            })?;
            let rule = grant.rule(rule).cloned().ok_or_else(|| {
                Admit::StoreFailed(StoreError(format!(
                    "the store named an unknown rule `{rule}`"
                )))
            })?;
            Err(Admit::Refused(Refusal::LimitReached { rule, retry_after }))
        }
        Err(error) => Err(Admit::StoreFailed(error)),
    }
}

/// Why a request was not admitted: a rule refused it, or the store failed (the caller
/// decides between failing open and closed).
#[derive(Debug)]
pub enum Admit {
    Refused(Refusal),
    StoreFailed(StoreError),
}

/// The calendar window (UTC) `now` falls in: its name and when it ends, as the library
/// names windows for everyone who reads the counters (`tramontane usage`).
pub fn window(window: Window, now: Timestamp) -> (String, Timestamp) {
    let period = tramontane::usage::Period::of(window, now);
    (period.name, period.end)
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

/// The budget lines a request reserves against — every token and spend rule of the grant,
/// in its current window — with what each may take at worst.
pub fn budget_lines(
    grant: &Grant,
    worst_tokens: u64,
    worst_cost: u64,
    now: Timestamp,
) -> (Vec<BudgetLine>, Vec<LineKind>) {
    let mut lines = Vec::new();
    let mut kinds = Vec::new();
    for rule in &grant.rules {
        let (amount, kind) = match rule.measure {
            Measure::Requests => continue,
            Measure::Tokens => (worst_tokens, LineKind::Tokens),
            Measure::Spend => (worst_cost, LineKind::Spend),
        };
        let (name, end) = window(rule.window, now);
        lines.push(BudgetLine {
            rule: rule.id.clone(),
            counter: rule.store_key(&name),
            limit: rule.limit,
            amount,
            window_end: end,
        });
        kinds.push(kind);
    }
    (lines, kinds)
}

/// Prices the request's worst case and names the budget lines it is reserved against; the
/// reservation itself is taken by [`admit`]. Refused when a budget applies and the worst
/// case has no bound: content the upstream fetches without a declared bound, or a spend
/// guard on a model without a price.
pub fn worst_case(
    grant: &Grant,
    request: &InferenceRequest,
    body: Bytes,
    models: &ModelDirectory,
    prices: &PriceTable,
    now: Timestamp,
) -> Result<(Admitted, Vec<BudgetLine>), Refusal> {
    let budgeted = grant.budgeted();
    let mut prompt = request.prompt_estimate;
    if request.fetched_items > 0 && budgeted {
        let per_item = grant
            .fetched_content_tokens
            .ok_or(Refusal::FetchedContentUnbounded {
                items: request.fetched_items,
            })?;
        prompt = prompt.saturating_add(request.fetched_items.saturating_mul(per_item));
    }
    let tokens = TokenCounts {
        prompt,
        cached: 0,
        completion: worst_completion(request, grant, models),
    };
    let model_prices = match &request.model {
        Some(model) => prices.price(model, models),
        // An agent's model is known only from its answer: reserve at the dearest price.
        None => prices.dearest(),
    };
    let tier_percent = match request.tier {
        RequestedTier::Auto => PRIORITY_PERCENT,
        RequestedTier::StandardOnly => STANDARD_PERCENT,
    };
    let cost = model_prices.and_then(|p| p.cost(tokens, tier_percent));
    let cost = match cost {
        Some(cost) => cost,
        None if !grant.spend_guarded() => 0,
        None => {
            return Err(Refusal::PriceUnknown {
                model: request
                    .model
                    .clone()
                    .unwrap_or_else(|| "the agent's model".into()),
            });
        }
    };
    let (lines, kinds) = budget_lines(grant, tokens.total(), cost, now);
    let admitted = Admitted {
        body,
        reservation: None,
        lines: kinds,
        worst: Worst {
            tokens,
            cost,
            prices: model_prices,
            tier_percent,
        },
    };
    Ok((admitted, lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Endpoint;
    use crate::store::memory::MemoryStore;
    use tramontane::runtime::{Models, Rule, RuleScope};

    fn no_leases() -> Leases {
        Leases::new(
            tokio_util::task::TaskTracker::new(),
            tokio_util::sync::CancellationToken::new(),
        )
    }

    fn grant() -> Grant {
        Grant {
            model_rules: vec![Models::Only(["mistral-small-latest".to_owned()].into())],
            max_tokens_per_request: Some(100),
            rules: vec![
                Rule::new(
                    RuleScope::Key("x".into()),
                    Measure::Requests,
                    Window::Minute,
                    1,
                ),
                Rule::new(
                    RuleScope::Member("x".into()),
                    Measure::Tokens,
                    Window::Day,
                    1000,
                ),
                Rule::new(
                    RuleScope::Team("x".into()),
                    Measure::Spend,
                    Window::Hour,
                    50,
                ),
            ],
            ..Grant::default()
        }
    }

    fn without(mut grant: Grant, measure: Measure) -> Grant {
        grant.rules.retain(|rule| rule.measure != measure);
        grant
    }

    /// The rule a refusal names, and its wait.
    fn refused(result: Result<Option<Reservation>, Admit>) -> (Rule, std::time::Duration) {
        match result {
            Err(Admit::Refused(Refusal::LimitReached { rule, retry_after })) => (rule, retry_after),
            Err(other) => panic!("not a limit: {other:?}"),
            Ok(_) => panic!("admitted"),
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
            window(Window::Hour, now),
            (
                "2026-02-28T23".into(),
                "2026-03-01T00:00:00Z".parse().unwrap()
            )
        );
        assert_eq!(
            window(Window::Day, now),
            ("2026-02-28".into(), "2026-03-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(
            window(Window::Month, now),
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

    #[test]
    fn one_model_check_resolves_aliases_and_names_what_is_allowed() {
        let models = ModelDirectory::bundled();
        assert_eq!(check_model(&grant(), "mistral-small-2603", &models), Ok(()));
        assert_eq!(
            check_model(&grant(), "mistral-large-latest", &models),
            Err(Refusal::ModelNotAllowed {
                model: "mistral-large-latest".into(),
                allowed: vec!["mistral-small-latest".into()],
            })
        );
        assert_eq!(
            check_agent(&grant(), "ag_1"),
            Err(Refusal::AgentNotAllowed {
                agent: "ag_1".into()
            })
        );
    }

    /// Prices a chat completion asking for 100 tokens, at 10:30, and admits it under `id` as
    /// the proxy does: its prompt estimate plus 100 tokens at worst.
    async fn take(
        store: &Arc<dyn LimitStore>,
        grant: &Grant,
        id: &str,
    ) -> Result<Option<Reservation>, Admit> {
        let now: Timestamp = "2026-11-26T10:30:00Z".parse().unwrap();
        let (request, _) =
            chat(r#"{"model":"mistral-small-latest","messages":[],"max_tokens":100}"#);
        let (models, prices) = (
            ModelDirectory::bundled(),
            PriceTable::bundled(tramontane::model::Currency::Usd),
        );
        let (_, lines) = worst_case(grant, &request, Bytes::new(), &models, &prices, now)
            .expect("a priced model with nothing fetched");
        admit(store, grant, id, &lines, now, &no_leases()).await
    }

    #[tokio::test]
    async fn a_budget_that_cannot_take_the_worst_case_refuses_with_its_scope() {
        let store: Arc<dyn LimitStore> = Arc::new(MemoryStore::default());
        let grant = without(without(grant(), Measure::Requests), Measure::Spend);
        // Eight worst cases (19 prompt tokens: two keys and a number; 100 completion) fit
        // in 1000 tokens.
        let mut held = Vec::new();
        for i in 0..8 {
            let reservation = take(&store, &grant, &format!("r{i}"))
                .await
                .unwrap_or_else(|_| panic!("request {i} fits"));
            held.push(reservation.expect("a reservation for the budget"));
        }
        let (rule, retry_after) = refused(take(&store, &grant, "r8").await);
        assert_eq!(rule.id, "member:x:tokens:day");
        assert_eq!(retry_after.as_secs(), 13 * 3600 + 30 * 60);
        drop(held);
    }

    #[tokio::test]
    async fn a_spend_guard_refusal_names_the_guard_after_the_token_budgets() {
        let mut grant = without(grant(), Measure::Requests);
        // 10 micros cannot hold a worst case the token budget can.
        grant.rules[1].limit = 10;
        let store: Arc<dyn LimitStore> = Arc::new(MemoryStore::default());
        let (rule, retry_after) = refused(take(&store, &grant, "r1").await);
        assert_eq!(rule.id, "team:x:spend:hour");
        assert_eq!(retry_after.as_secs(), 30 * 60);
    }

    #[tokio::test]
    async fn the_rate_refusal_names_its_rule() {
        let store: Arc<dyn LimitStore> = Arc::new(MemoryStore::default());
        let now = Timestamp::now();
        assert!(matches!(
            admit(&store, &grant(), "r1", &[], now, &no_leases()).await,
            Ok(None)
        ));
        let (rule, _) = refused(admit(&store, &grant(), "r2", &[], now, &no_leases()).await);
        assert_eq!(rule.id, "key:x:requests:minute");
        assert_eq!(rule.limit, 1);
    }
}
