//! How fast Admin API requests go: how many may be in flight and how often one may start.
//!
//! Nothing tells tramontane the server's limit until the server refuses a request, so it
//! starts as fast as `--concurrency` allows, with no rate cap (unless `--rate-limit` sets a
//! ceiling), and lets 429s teach it the limit the way TCP finds a link's capacity: AIMD.
//! A 429 pauses every request (for `Retry-After`, else a jittered backoff), halves the
//! window of requests in flight and caps the start rate at half of what the server accepted
//! in the last second (multiplicative decrease); every accepted request widens the window by
//! about one request per round trip and raises the cap a little (additive increase). The
//! pace settles just under what the server allows, whether it limits requests in flight or
//! requests per second; the rate cap is what still works when one request at a time is too
//! many for it.
//!
//! [`Window`], [`RateCap`], [`Control`] and [`Pause`] are pure state taking the time as an
//! argument, so they are tested without a clock; [`Pacer`] drives them with the real one.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;

/// What a refusal leaves of the window and of the rate.
const DECREASE: f64 = 0.5;
/// The lowest rate cap, in requests per second: below it, the pause on each 429 (and the
/// server's `Retry-After`) does the spacing.
const RATE_FLOOR: f64 = 1.0;
/// How long steady successes take to bring the rate cap back to where the server refused.
const RECOVERY: Duration = Duration::from_secs(4);
/// How far back the accepted rate is measured.
const MEASURE: Duration = Duration::from_secs(1);
/// The shortest span a rate is measured over: a handful of answers within a few
/// milliseconds says little about a rate per second.
const MEASURE_AT_LEAST: Duration = Duration::from_millis(100);
/// Most acceptances remembered for the measure, whatever the rate.
const MEASURE_MEMORY: usize = 8192;

/// The congestion window: how many requests may be in flight, between one and the
/// concurrency limit. Fractional so that it can grow by less than one request per answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    size: f64,
    limit: usize,
}

impl Window {
    /// Starts wide open: the limit is the user's, and no server has refused anything yet.
    pub fn new(limit: usize) -> Window {
        let limit = limit.max(1);
        Window {
            size: limit as f64,
            limit,
        }
    }

    /// Requests that may be in flight now.
    pub fn allowed(&self) -> usize {
        (self.size.floor() as usize).clamp(1, self.limit)
    }

    /// One request accepted: `1/size` per answer is about one more request per round trip.
    pub fn widen(&mut self) {
        self.size = (self.size + 1.0 / self.size).min(self.limit as f64);
    }

    pub fn shrink(&mut self) {
        self.size = (self.size * DECREASE).max(1.0);
    }
}

/// A cap on how many requests start per second: none until the server first refuses one
/// (only the user's ceiling, if any), then set from what the server was seen to accept.
#[derive(Clone, Debug)]
pub struct RateCap {
    per_second: Option<f64>,
    ceiling: Option<f64>,
    /// How much the cap rises per second of requests accepted at the cap.
    step: f64,
    /// When requests were accepted, within the last [`MEASURE`] and since `since`.
    accepted: VecDeque<Instant>,
    /// Where the measure starts: the first request, or the end of the last pause, since
    /// time spent paused by our own choice says nothing of what the server accepts.
    since: Instant,
}

impl RateCap {
    pub fn new(ceiling: Option<NonZeroU32>, now: Instant) -> RateCap {
        RateCap {
            per_second: None,
            ceiling: ceiling.map(|ceiling| f64::from(ceiling.get())),
            step: 0.0,
            accepted: VecDeque::new(),
            since: now,
        }
    }

    /// Requests per second, `None` for no cap.
    pub fn per_second(&self) -> Option<f64> {
        self.per_second
    }

    /// The time between two starts, `None` for no cap.
    pub fn interval(&self) -> Option<Duration> {
        self.per_second
            .map(|rate| Duration::from_secs_f64(1.0 / rate))
    }

    /// The rate the server accepted requests at over the last second, or since the last
    /// pause ended when that is shorter (but over no less than [`MEASURE_AT_LEAST`]).
    pub fn measured(&mut self, now: Instant) -> Option<f64> {
        self.forget_before(now);
        let span = now
            .saturating_duration_since(self.since)
            .clamp(MEASURE_AT_LEAST, MEASURE);
        if self.accepted.is_empty() {
            return None;
        }
        Some(self.accepted.len() as f64 / span.as_secs_f64())
    }

    /// Measures from `resumed` on: a pause ends then.
    pub fn resume_at(&mut self, resumed: Instant) {
        self.since = self.since.max(resumed);
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some(&oldest) = self.accepted.front() {
            if now.saturating_duration_since(oldest) > MEASURE
                || oldest < self.since
                || self.accepted.len() > MEASURE_MEMORY
            {
                self.accepted.pop_front();
            } else {
                break;
            }
        }
    }

    pub fn accept(&mut self, now: Instant) {
        self.accepted.push_back(now);
        self.forget_before(now);
        if let Some(rate) = self.per_second {
            // At the cap, `rate` answers come each second, so this is `step` per second.
            self.per_second = Some(self.clamp(rate + self.step / rate));
        }
    }

    /// Half of what the server just proved it accepts, or of the cap if that was lower.
    /// With nothing measured and no cap yet, the window and the pause do the work.
    pub fn refuse(&mut self, now: Instant) {
        let base = match (self.per_second, self.measured(now)) {
            (Some(cap), Some(measured)) => cap.min(measured),
            (Some(cap), None) => cap,
            (None, Some(measured)) => measured,
            (None, None) => return,
        };
        let lowered = self.clamp(base * DECREASE);
        self.step = ((base - lowered) / RECOVERY.as_secs_f64()).max(RATE_FLOOR / 4.0);
        self.per_second = Some(lowered);
    }

    fn clamp(&self, rate: f64) -> f64 {
        let rate = rate.max(RATE_FLOOR);
        self.ceiling.map_or(rate, |ceiling| rate.min(ceiling))
    }
}

/// What came of one request, as far as pacing goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The server let it through (whatever it then said).
    Accepted,
    /// 429: the server refused it for going too fast; every request waits `wait`.
    Throttled { wait: Duration },
    /// No answer, or a server error: says nothing about the limit.
    Unanswered,
}

/// A place in the window: when the request may start, and which decrease it was sent after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub at: Instant,
    pub generation: u64,
}

/// The window, the rate cap and the pause together, with the requests in flight.
#[derive(Debug)]
pub struct Control {
    window: Window,
    rate: RateCap,
    pause: Pause,
    in_flight: usize,
    next_start: Option<Instant>,
    /// Bumped at each decrease. Requests sent before one that are refused after it were
    /// sent too fast for the old pace, not the new one: the decrease already counted them,
    /// as TCP cuts its window once per round trip however many packets it lost.
    generation: u64,
}

impl Control {
    pub fn new(concurrency: usize, ceiling: Option<NonZeroU32>, now: Instant) -> Control {
        Control {
            window: Window::new(concurrency),
            rate: RateCap::new(ceiling, now),
            pause: Pause::default(),
            in_flight: 0,
            next_start: None,
            generation: 0,
        }
    }

    pub fn window(&self) -> &Window {
        &self.window
    }

    pub fn rate(&self) -> &RateCap {
        &self.rate
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// When requests may go again, if that is later than `now`.
    pub fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.pause.until(now)
    }

    /// A slot if the window has room (its start may lie ahead, to keep to the rate cap);
    /// `None` while it is full.
    pub fn start(&mut self, now: Instant) -> Option<Slot> {
        if self.in_flight >= self.window.allowed() {
            return None;
        }
        self.in_flight += 1;
        let at = match self.rate.interval() {
            Some(interval) => {
                let at = self.next_start.map_or(now, |next| next.max(now));
                self.next_start = Some(at + interval);
                at
            }
            None => now,
        };
        Some(Slot {
            at,
            generation: self.generation,
        })
    }

    pub fn finish(&mut self, slot: Slot, answer: Answer, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match answer {
            Answer::Accepted => {
                self.window.widen();
                self.rate.accept(now);
            }
            Answer::Throttled { wait } => {
                if slot.generation == self.generation {
                    self.window.shrink();
                    self.rate.refuse(now);
                    self.generation += 1;
                }
                self.pause.extend(now, wait);
                if let Some(until) = self.pause.until(now) {
                    self.rate.resume_at(until);
                }
            }
            Answer::Unanswered => {}
        }
    }
}

/// A pause every request waits out: the server said (or a 429 implied) to stop for a while.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pause {
    until: Option<Instant>,
}

impl Pause {
    /// Never shortens a pause already running.
    pub fn extend(&mut self, now: Instant, wait: Duration) {
        let until = now + wait;
        self.until = Some(self.until.map_or(until, |current| current.max(until)));
    }

    /// When requests may go again, if that is later than `now`.
    pub fn until(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|until| *until > now)
    }
}

/// The pacing of one client's requests, shared by all of them.
pub struct Pacer {
    control: Mutex<Control>,
    /// Signalled when a place in the window may have opened.
    opened: Notify,
    /// `--rate-limit`: requests spaced at least this far apart, whatever the server allows.
    ceiling: Option<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("control", &*self.control())
            .finish_non_exhaustive()
    }
}

impl Pacer {
    pub fn new(concurrency: usize, ceiling: Option<NonZeroU32>) -> Pacer {
        // One request every 1/n s, without a burst: a ceiling is a promise to the server.
        let limiter = ceiling
            .and_then(|rate| Quota::with_period(Duration::from_secs(1) / rate.get()))
            .map(RateLimiter::direct);
        Pacer {
            control: Mutex::new(Control::new(concurrency, ceiling, Instant::now())),
            opened: Notify::new(),
            ceiling: limiter,
        }
    }

    /// A lock that survives a panic elsewhere: the state is a few numbers, always valid.
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Requests that may be in flight now.
    pub fn window(&self) -> usize {
        self.control().window().allowed()
    }

    async fn wait_out_pause(&self) {
        loop {
            let until = self.control().paused_until(Instant::now());
            match until {
                Some(until) => tokio::time::sleep_until(until.into()).await,
                None => return,
            }
        }
    }

    /// Waits for a turn: the pause over, the ceiling kept, a place in the window, and the
    /// rate cap's next start. The ticket holds the place until it is answered or dropped.
    pub async fn start(&self) -> Ticket<'_> {
        self.wait_out_pause().await;
        if let Some(ceiling) = &self.ceiling {
            ceiling.until_ready().await;
        }
        let slot = loop {
            let opened = self.opened.notified();
            tokio::pin!(opened);
            // Registered before looking, so a place freed in between is not missed.
            opened.as_mut().enable();
            if let Some(slot) = self.control().start(Instant::now()) {
                break slot;
            }
            opened.await;
        };
        let ticket = Ticket {
            pacer: self,
            slot,
            answered: false,
        };
        tokio::time::sleep_until(slot.at.into()).await;
        // A 429 may have come while this one waited for its start.
        self.wait_out_pause().await;
        ticket
    }

    fn finish(&self, slot: Slot, answer: Answer) {
        let (before, after) = {
            let mut control = self.control();
            let before = control.window().allowed();
            control.finish(slot, answer, Instant::now());
            (before, control.window().allowed())
        };
        // The place this request held, and any the window grew by.
        for _ in 0..=after.saturating_sub(before) {
            self.opened.notify_one();
        }
    }
}

/// One request's place in the window. Dropping it unanswered frees the place and teaches
/// the pacer nothing.
pub struct Ticket<'a> {
    pacer: &'a Pacer,
    slot: Slot,
    answered: bool,
}

impl Ticket<'_> {
    pub fn answered(mut self, answer: Answer) {
        self.answered = true;
        self.pacer.finish(self.slot, answer);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.pacer.finish(self.slot, Answer::Unanswered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// `count` requests started at `at` and accepted `latency` later, one after another.
    fn accept_many(control: &mut Control, mut at: Instant, count: usize, gap: Duration) -> Instant {
        for _ in 0..count {
            let slot = control.start(at).expect("room in the window");
            at = at.max(slot.at) + gap;
            control.finish(slot, Answer::Accepted, at);
        }
        at
    }

    #[test]
    fn the_window_opens_at_the_concurrency_limit_with_no_rate_cap() {
        let now = Instant::now();
        let mut control = Control::new(8, None, now);
        let slots: Vec<Slot> = (0..8).map(|_| control.start(now).unwrap()).collect();
        assert!(slots.iter().all(|slot| slot.at == now), "no rate cap");
        assert_eq!(control.start(now), None, "a ninth waits");
        assert_eq!(control.in_flight(), 8);
        control.finish(slots[0], Answer::Accepted, now + ms(50));
        assert!(
            control.start(now + ms(50)).is_some(),
            "an answer frees a place"
        );
    }

    #[test]
    fn a_throttle_halves_the_window_and_caps_the_rate_below_what_was_accepted() {
        let start = Instant::now();
        let mut control = Control::new(8, None, start);
        // 100 accepted over one second: the server allows at least 100/s.
        let now = accept_many(&mut control, start, 100, ms(10));
        assert_eq!(control.rate().per_second(), None);
        let slot = control.start(now).unwrap();
        control.finish(slot, Answer::Throttled { wait: ms(0) }, now);
        assert_eq!(control.window().allowed(), 4);
        let cap = control.rate().per_second().expect("a cap now");
        assert!((45.0..=55.0).contains(&cap), "{cap}");
        // Starts are now spaced by the cap.
        let first = control.start(now).unwrap();
        let second = control.start(now).unwrap();
        assert_eq!(first.at, now);
        let gap = second.at - first.at;
        assert!(gap >= ms(18) && gap <= ms(23), "{gap:?}");
    }

    #[test]
    fn successes_widen_the_window_and_raise_the_cap_again() {
        let start = Instant::now();
        let mut control = Control::new(8, None, start);
        let now = accept_many(&mut control, start, 50, ms(20));
        let slot = control.start(now).unwrap();
        control.finish(slot, Answer::Throttled { wait: ms(0) }, now);
        let (window, cap) = (
            control.window().allowed(),
            control.rate().per_second().unwrap(),
        );
        let now = accept_many(&mut control, now, 20, ms(20));
        assert!(control.window().allowed() > window);
        assert!(control.rate().per_second().unwrap() > cap);
        // Additive: about one more request in flight per round trip, not a doubling.
        let mut control = Control::new(16, None, now);
        let slot = control.start(now).unwrap();
        let now = accept_many(&mut control, now, 30, ms(1));
        control.finish(slot, Answer::Throttled { wait: ms(0) }, now);
        assert_eq!(control.window().allowed(), 8);
        // size² grows by about 2 per answer: 30 answers, about three round trips, take
        // 8 to 11, where doubling would have reached the limit.
        accept_many(&mut control, now, 30, ms(1));
        assert!((10..=11).contains(&control.window().allowed()));
    }

    #[test]
    fn a_burst_of_429s_from_one_round_counts_once() {
        let now = Instant::now();
        let mut control = Control::new(8, None, now);
        let slots: Vec<Slot> = (0..8).map(|_| control.start(now).unwrap()).collect();
        for slot in slots {
            control.finish(slot, Answer::Throttled { wait: ms(0) }, now + ms(50));
        }
        assert_eq!(control.window().allowed(), 4, "one decrease, not eight");
        let later = control.start(now + ms(60)).unwrap();
        control.finish(later, Answer::Throttled { wait: ms(0) }, now + ms(110));
        assert_eq!(
            control.window().allowed(),
            2,
            "sent after the decrease: counts"
        );
    }

    #[test]
    fn never_below_one_request_nor_the_rate_floor() {
        let start = Instant::now();
        let mut control = Control::new(8, None, start);
        let mut now = accept_many(&mut control, start, 10, ms(5));
        for _ in 0..50 {
            let slot = control.start(now).unwrap();
            now = now.max(slot.at) + ms(5);
            control.finish(slot, Answer::Throttled { wait: ms(0) }, now);
        }
        assert_eq!(control.window().allowed(), 1);
        assert_eq!(control.rate().per_second(), Some(RATE_FLOOR));
        assert!(control.start(now).is_some(), "one request may always go");
    }

    #[test]
    fn never_above_the_concurrency_limit() {
        let now = Instant::now();
        let mut control = Control::new(3, None, now);
        accept_many(&mut control, now, 1_000, ms(1));
        assert_eq!(control.window().allowed(), 3);
        let slots: Vec<Option<Slot>> = (0..4).map(|_| control.start(now)).collect();
        assert!(slots[..3].iter().all(Option::is_some));
        assert_eq!(slots[3], None);
        assert_eq!(
            Window::new(0).allowed(),
            1,
            "a limit of 0 still lets one through"
        );
    }

    #[test]
    fn the_ceiling_bounds_the_cap() {
        let start = Instant::now();
        let ceiling = NonZeroU32::new(10);
        let mut control = Control::new(8, ceiling, start);
        let now = accept_many(&mut control, start, 200, ms(1));
        let slot = control.start(now).unwrap();
        control.finish(slot, Answer::Throttled { wait: ms(0) }, now);
        assert!(control.rate().per_second().unwrap() <= 10.0);
        accept_many(&mut control, now, 5_000, ms(1));
        assert_eq!(control.rate().per_second(), Some(10.0));
    }

    #[test]
    fn no_answer_teaches_nothing() {
        let now = Instant::now();
        let mut control = Control::new(4, None, now);
        let slot = control.start(now).unwrap();
        control.finish(slot, Answer::Unanswered, now + ms(30));
        assert_eq!(control.window(), &Window::new(4));
        assert_eq!(control.rate().per_second(), None);
        assert_eq!(control.in_flight(), 0);
    }

    #[test]
    fn a_pause_is_only_ever_extended() {
        let now = Instant::now();
        let mut pause = Pause::default();
        assert_eq!(pause.until(now), None);
        pause.extend(now, ms(500));
        pause.extend(now, ms(100));
        assert_eq!(pause.until(now), Some(now + ms(500)));
        assert_eq!(pause.until(now + ms(500)), None, "over");
    }

    #[tokio::test]
    async fn a_ticket_dropped_unanswered_frees_its_place() {
        let pacer = Pacer::new(1, None);
        let ticket = pacer.start().await;
        drop(ticket);
        let ticket = tokio::time::timeout(ms(1_000), pacer.start())
            .await
            .expect("the place was freed");
        ticket.answered(Answer::Accepted);
        assert_eq!(pacer.window(), 1);
    }

    #[tokio::test]
    async fn a_throttle_pauses_every_request() {
        let pacer = Pacer::new(4, None);
        let ticket = pacer.start().await;
        let began = Instant::now();
        ticket.answered(Answer::Throttled { wait: ms(200) });
        pacer.start().await.answered(Answer::Accepted);
        assert!(began.elapsed() >= ms(200));
    }

    #[tokio::test]
    async fn the_ceiling_spaces_requests() {
        let pacer = Pacer::new(8, NonZeroU32::new(50));
        let began = Instant::now();
        for _ in 0..6 {
            pacer.start().await.answered(Answer::Accepted);
        }
        // Six starts at 50/s, without a burst: five gaps of 20 ms.
        assert!(began.elapsed() >= ms(95), "{:?}", began.elapsed());
    }
}
