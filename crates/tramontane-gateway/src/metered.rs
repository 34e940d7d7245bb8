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
use crate::enforce::LineKind;
use crate::prices::PriceSource;
use crate::state::Gateway;
use crate::store::{MeterEntry, Reservation};
use crate::upstream::{BodyError, UpstreamBody};
use crate::usage::{JsonScanner, Observed, StreamScanner};

/// What a metered request holds and what its worst case was.
pub struct Accounting {
    pub reservation: Option<Reservation>,
    pub lines: Vec<LineKind>,
    pub price: PriceSource,
    pub prompt_estimate: u64,
    pub worst_tokens: u64,
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

/// Everything needed to close one exchange.
pub struct Closing {
    pub gateway: Arc<Gateway>,
    pub record: AuditRecord,
    pub accounting: Option<Accounting>,
    pub started: Instant,
    pub upstream_ok: bool,
}

impl Closing {
    fn close(self, ending: Ending, observed: Observed, stream: bool) {
        let Closing {
            gateway,
            mut record,
            accounting,
            started,
            upstream_ok,
        } = self;
        record.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        record.reason = ending.reason(upstream_ok);
        if observed.model.is_some() {
            record.model_resolved = observed.model.clone();
        }
        let task = async move {
            if let Some(accounting) = accounting {
                let (prompt, completion, estimated) = match observed.usage {
                    Some(usage) => (usage.prompt_tokens, usage.completion_tokens, false),
                    // Cut short: a stream is charged what it was seen to send.
                    None if stream => (accounting.prompt_estimate, observed.chunks, true),
                    // A JSON answer is generated whole before it is sent: its worst case.
                    None => (
                        accounting.prompt_estimate,
                        accounting
                            .worst_tokens
                            .saturating_sub(accounting.prompt_estimate),
                        true,
                    ),
                };
                let models = gateway.models.load();
                let price = match &observed.model {
                    Some(model) => gateway.prices.price(model, &models),
                    None => accounting.price,
                };
                let cost = price.price().cost(prompt, completion);
                let used: Vec<u64> = accounting
                    .lines
                    .iter()
                    .map(|kind| match kind {
                        LineKind::Tokens => prompt.saturating_add(completion),
                        LineKind::Spend => cost,
                    })
                    .collect();
                if let Some(reservation) = accounting.reservation
                    && let Err(error) = reservation.settle(used).await
                {
                    gateway.metrics.store_error();
                    tracing::error!(%error, request_id = %record.request_id, "cannot settle a reservation");
                }
                // What the workspace was metered, for `tramontane audit` to set against its
                // bill; a failure costs the request nothing.
                if let Some(workspace) = &record.workspace {
                    let model = record
                        .model_resolved
                        .as_ref()
                        .or(record.model_asked.as_ref());
                    let entry = MeterEntry::settled(
                        workspace,
                        model.map_or("", String::as_str),
                        prompt,
                        completion,
                        cost,
                        jiff::Timestamp::now(),
                    );
                    if let Err(error) = gateway.store.meter(&entry).await {
                        gateway.metrics.store_error();
                        tracing::error!(%error, request_id = %record.request_id, "cannot meter a request");
                    }
                }
                gateway.metrics.usage(prompt, completion, cost);
                record.prompt_tokens = Some(prompt);
                record.completion_tokens = Some(completion);
                record.tokens_estimated = estimated;
                record.cost_micros = Some(cost);
                record.price_fallback = matches!(price, PriceSource::Fallback(_));
            }
            gateway.metrics.decision(record.decision, record.reason);
            gateway.audit.write(&record);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(task);
            }
            Err(_) => {
                tracing::error!("an exchange ended outside the runtime; its audit line is lost")
            }
        }
    }
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
    stream: bool,
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
            stream,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            closing: Some(closing),
        }
    }

    fn close(&mut self, ending: Ending) {
        if let Some(closing) = self.closing.take() {
            let observed = self.scanner.finish();
            closing.close(ending, observed, self.stream);
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
    fn drop(&mut self) {
        self.close(Ending::ClientGone);
    }
}
