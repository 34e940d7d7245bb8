//! An upstream answer on its way to the caller: passed through frame by frame (no buffering,
//! so a stream streams), read as it passes for what it used, cut if the upstream stalls, and
//! closed exactly once however it ends — completed, cut by the upstream, or abandoned by the
//! caller. Closing settles or releases the request's reservation and writes its audit line.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use crate::audit::AuditRecord;
use crate::enforce::{LineKind, Worst};
use crate::prices::{PRIORITY_PERCENT, PriceTable, STANDARD_PERCENT, TokenCounts};
use crate::state::Gateway;
use crate::store::{MeterEntry, Reservation};
use crate::upstream::{BodyError, UpstreamBody};
use crate::usage::{JsonScanner, Observed, ServedTier, StreamScanner, Usage};

/// What a metered request holds and what its worst case was.
pub struct Accounting {
    pub reservation: Option<Reservation>,
    pub lines: Vec<LineKind>,
    pub worst: Worst,
    /// The prices the request was admitted under (the policy's, at the time).
    pub prices: Arc<PriceTable>,
}

/// What one answer is charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
    pub counts: TokenCounts,
    /// Tokens counted against token budgets.
    pub tokens: u64,
    pub cost: u64,
    pub tier_percent: u64,
    /// The answer proved nothing, so its whole reservation was charged.
    pub whole_reservation: bool,
}

impl Charge {
    /// What an answer is charged: from its `usage` at the tier it names and the price of the
    /// model that answered; without `usage` — a stream cut or left before its last chunk and
    /// not read to its end, an answer that never says — or for a model without a price, the
    /// whole reservation. Never less than Mistral bills for what it reported.
    pub fn of(
        usage: Option<Usage>,
        answered_by: Option<TokenPricesLookup>,
        worst: Worst,
    ) -> Charge {
        let Some(usage) = usage else {
            return Charge::reservation(worst);
        };
        let counts = TokenCounts {
            prompt: usage.prompt_tokens,
            cached: usage.cached_tokens(),
            completion: usage.completion_tokens,
        };
        let tier_percent = match usage.service_tier {
            Some(ServedTier::Standard) => STANDARD_PERCENT,
            Some(ServedTier::Priority) => PRIORITY_PERCENT,
            Some(ServedTier::Other) => worst.tier_percent.max(PRIORITY_PERCENT),
            None => worst.tier_percent,
        };
        let prices = match answered_by {
            Some(TokenPricesLookup::Priced(prices)) => Some(prices),
            Some(TokenPricesLookup::Unpriced) => None,
            None => worst.prices,
        };
        let tokens = usage.tokens();
        match prices.and_then(|prices| prices.cost(counts, tier_percent)) {
            Some(cost) => Charge {
                counts,
                tokens,
                cost,
                tier_percent,
                whole_reservation: false,
            },
            // Tokens are proven, the price is not: the reserved cost stands.
            None => Charge {
                counts,
                tokens,
                cost: worst.cost,
                tier_percent,
                whole_reservation: true,
            },
        }
    }

    fn reservation(worst: Worst) -> Charge {
        Charge {
            counts: worst.tokens,
            tokens: worst.tokens.total(),
            cost: worst.cost,
            tier_percent: worst.tier_percent,
            whole_reservation: true,
        }
    }
}

/// The prices of the model an answer names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPricesLookup {
    Priced(crate::prices::TokenPrices),
    Unpriced,
}

/// How an answer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Complete,
    /// The caller went away before the last byte.
    ClientGone,
    /// The upstream's body failed mid-way.
    UpstreamBroke,
    /// The upstream sent nothing for longer than the idle timeout.
    Stalled,
}

impl Ending {
    fn reason(self, upstream_ok: bool) -> &'static str {
        match self {
            Ending::Complete if upstream_ok => "completed",
            Ending::Complete => "upstream_error",
            Ending::ClientGone => "client_disconnected",
            Ending::UpstreamBroke => "upstream_broken",
            Ending::Stalled => "upstream_stalled",
        }
    }
}

/// An upstream answer on its way back, before it is metered: what [`MeteredBody`] needs
/// besides the request's audit record.
pub struct Answer {
    pub head: http::response::Parts,
    pub body: UpstreamBody,
    /// What the request holds; `None` for an answer that settles nothing (an error, a model
    /// list).
    pub accounting: Option<Accounting>,
    /// Whether to read the answer for what it used (a metered success).
    pub scan: bool,
    /// Whether it is a server-sent event stream.
    pub stream: bool,
    pub upstream_ok: bool,
}

impl Answer {
    /// The answer as the caller gets it: its body metered and closed once, however it ends,
    /// which writes the request's audit line.
    pub fn into_response(
        self,
        gateway: Arc<Gateway>,
        record: AuditRecord,
        started: Instant,
    ) -> http::Response<axum::body::Body> {
        let idle_timeout = gateway.config.limits.stream_idle_timeout;
        let closing = Closing {
            gateway,
            record,
            accounting: self.accounting,
            started,
            upstream_ok: self.upstream_ok,
        };
        let body = MeteredBody::new(self.body, self.scan, self.stream, idle_timeout, closing);
        http::Response::from_parts(self.head, axum::body::Body::new(body))
    }
}

/// The one place a request's audit line is written and its decision counted, whether it
/// was refused or answered: once per request, when nothing about it can change any more.
pub fn conclude(gateway: &Gateway, record: AuditRecord) {
    gateway.metrics.decision(record.decision, record.reason);
    gateway.audit.write(record);
}

/// Everything needed to close one exchange.
pub struct Closing {
    pub gateway: Arc<Gateway>,
    pub record: AuditRecord,
    pub accounting: Option<Accounting>,
    pub started: Instant,
    pub upstream_ok: bool,
}

impl Closing {
    fn close(self, ending: Ending, observed: Observed) {
        let Closing {
            gateway,
            mut record,
            accounting,
            started,
            upstream_ok,
        } = self;
        // The time to the last byte, not to the settle after it.
        record.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        record.reason = ending.reason(upstream_ok);
        if observed.model.is_some() {
            record.model_resolved = observed.model.clone();
        }
        // Nothing to settle: the line is written now, without a task.
        let Some(accounting) = accounting else {
            conclude(&gateway, record);
            return;
        };
        let tasks = gateway.tasks.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("an exchange ended outside the runtime; its audit line is lost");
            return;
        };
        let mut task = Box::pin(async move {
            settle(&gateway, &mut record, accounting, observed).await;
            conclude(&gateway, record);
        });
        // The in-process store settles without waiting: then it is done here, with no task
        // spawned and no thread woken for it. A store that waits (Redis) has sent its script
        // by now; the task waits for the answer, off the response's path (a future polled
        // again registers the new task's waker, not this one's).
        let mut first = Context::from_waker(std::task::Waker::noop());
        if task.as_mut().poll(&mut first).is_pending() {
            tasks.spawn_on(task, &runtime);
        }
    }
}

/// Charges an answer: settles its reservation, adds it to its workspace's meter, counts it,
/// and fills in the record's tokens and cost.
async fn settle(
    gateway: &Arc<Gateway>,
    record: &mut AuditRecord,
    accounting: Accounting,
    observed: Observed,
) {
    let answered_by = observed.model.as_ref().map(|model| {
        let models = gateway.models.load();
        match accounting.prices.price(model, &models) {
            Some(prices) => TokenPricesLookup::Priced(prices),
            None => TokenPricesLookup::Unpriced,
        }
    });
    let charge = Charge::of(observed.usage, answered_by, accounting.worst);
    let used: Vec<u64> = accounting
        .lines
        .iter()
        .map(|kind| match kind {
            LineKind::Tokens => charge.tokens,
            LineKind::Spend => charge.cost,
        })
        .collect();
    // What the workspace was metered, for `tramontane audit` to set against its bill.
    let entry = record.workspace.as_ref().map(|workspace| {
        let model = record
            .model_resolved
            .as_ref()
            .or(record.model_asked.as_ref());
        MeterEntry::settled(
            workspace,
            model.map_or("", String::as_str),
            charge.counts.prompt,
            charge.counts.completion,
            charge.cost,
            jiff::Timestamp::now(),
        )
    });
    // One operation when the reservation is in the shared store (one round trip to Redis);
    // a reservation in the fallback store settles there, and the meter goes to the shared
    // one. A failure costs the request nothing.
    let (settled, metered) = match (accounting.reservation, &entry) {
        (Some(reservation), Some(entry)) if reservation.is_in(&gateway.store) => {
            (reservation.settle_and_meter(used, entry).await, Ok(()))
        }
        (reservation, entry) => {
            let settled = match reservation {
                Some(reservation) => reservation.settle(used).await,
                None => Ok(()),
            };
            let metered = match entry {
                Some(entry) => gateway.store.meter(entry).await,
                None => Ok(()),
            };
            (settled, metered)
        }
    };
    if let Err(error) = settled {
        gateway.metrics.store_failed("settle", &error);
    }
    if let Err(error) = metered {
        gateway.metrics.store_failed("meter", &error);
    }
    gateway.alerts.settled(gateway, &record.request_id);
    gateway
        .metrics
        .usage(charge.counts.prompt, charge.counts.completion, charge.cost);
    gateway.metrics.settled(
        record.meter_name().as_deref(),
        record.workspace.as_deref(),
        charge.tokens,
        charge.cost,
    );
    record.prompt_tokens = Some(charge.counts.prompt);
    record.completion_tokens = Some(charge.counts.completion);
    record.cached_tokens = Some(charge.counts.cached).filter(|&cached| cached > 0);
    record.tier = Some(if charge.tier_percent > STANDARD_PERCENT {
        "priority"
    } else {
        "standard"
    });
    record.charged_reservation = charge.whole_reservation;
    record.cost_micros = Some(charge.cost);
}

enum Scanner {
    Json(JsonScanner),
    Stream(StreamScanner),
    Off,
}

impl Scanner {
    fn push(&mut self, bytes: &[u8]) {
        match self {
            Scanner::Json(scanner) => scanner.push(bytes),
            Scanner::Stream(scanner) => scanner.push(bytes),
            Scanner::Off => {}
        }
    }

    fn finish(&mut self) -> Observed {
        match self {
            Scanner::Json(scanner) => scanner.finish(),
            Scanner::Stream(scanner) => scanner.finish(),
            Scanner::Off => Observed::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the upstream sent nothing for {0:?}")]
pub struct StalledError(Duration);

pub struct MeteredBody {
    inner: UpstreamBody,
    scanner: Scanner,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    closing: Option<Closing>,
}

impl MeteredBody {
    /// `scan` says whether to read usage from the answer (a success); `stream` whether it
    /// is a server-sent event stream.
    pub fn new(
        inner: UpstreamBody,
        scan: bool,
        stream: bool,
        idle_timeout: Duration,
        closing: Closing,
    ) -> MeteredBody {
        let scanner = match (scan, stream) {
            (false, _) => Scanner::Off,
            (true, true) => Scanner::Stream(StreamScanner::default()),
            (true, false) => Scanner::Json(JsonScanner::default()),
        };
        MeteredBody {
            inner,
            scanner,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            closing: Some(closing),
        }
    }

    fn close(&mut self, ending: Ending) {
        if let Some(closing) = self.closing.take() {
            let observed = self.scanner.finish();
            closing.close(ending, observed);
        }
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.scanner.push(data);
                }
                let deadline = tokio::time::Instant::now() + this.idle_timeout;
                this.idle.as_mut().reset(deadline);
                // A server that knows the length stops polling after the last byte: the
                // answer is complete when the upstream body says it has ended.
                if this.inner.is_end_stream() {
                    this.close(Ending::Complete);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.close(Ending::UpstreamBroke);
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                this.close(Ending::Complete);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_ready() {
                    this.close(Ending::Stalled);
                    return Poll::Ready(Some(Err(BodyError::new(StalledError(this.idle_timeout)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Never claim the end early: the end is where the exchange is closed.
        false
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    /// The caller left before the end. Mistral bills what it generates whether or not anyone
    /// reads it, so a metered answer is read on to its end upstream (bounded by the upstream
    /// timeout, and cut if it stalls) and settled from the `usage` it ends with.
    fn drop(&mut self) {
        let Some(closing) = self.closing.take() else {
            return;
        };
        let metered = closing.accounting.is_some() && !matches!(self.scanner, Scanner::Off);
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(runtime) if metered => {
                let inner = std::mem::replace(&mut self.inner, empty_body());
                let scanner = std::mem::replace(&mut self.scanner, Scanner::Off);
                let limit = closing.gateway.config.limits.upstream_timeout;
                let tasks = closing.gateway.tasks.clone();
                tasks.spawn_on(
                    drain(inner, scanner, closing, limit, self.idle_timeout),
                    &runtime,
                );
            }
            _ => closing.close(Ending::ClientGone, self.scanner.finish()),
        }
    }
}

fn empty_body() -> UpstreamBody {
    use http_body_util::BodyExt;
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Reads what is left of an answer nobody is listening to, for its usage, then closes the
/// exchange as the caller's leaving.
async fn drain(
    mut inner: UpstreamBody,
    mut scanner: Scanner,
    closing: Closing,
    limit: Duration,
    idle: Duration,
) {
    use http_body_util::BodyExt;
    let read = async {
        // Until the end, a broken body, or a stall: what was read then is all there is.
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(idle, inner.frame()).await {
            if let Some(data) = frame.data_ref() {
                scanner.push(data);
            }
        }
    };
    let _ = tokio::time::timeout(limit, read).await;
    closing.close(Ending::ClientGone, scanner.finish());
}
