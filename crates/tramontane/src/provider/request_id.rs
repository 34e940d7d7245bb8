//! The ids the Admin API gives its answers, gathered per applied change so the audit log
//! can point support at the exact requests.

use std::cell::RefCell;

tokio::task_local! {
    static GATHERED: RefCell<Vec<String>>;
}

/// Headers that carry a request id, the first present wins.
pub const HEADERS: [&str; 3] = [
    "x-request-id",
    "mistral-correlation-id",
    "x-kong-request-id",
];

/// Runs `future`, returning its output with the request ids of every answer received
/// while it ran.
pub async fn gather<F: Future>(future: F) -> (F::Output, Vec<String>) {
    GATHERED
        .scope(RefCell::new(Vec::new()), async move {
            let output = future.await;
            let ids = GATHERED.with(|ids| ids.take());
            (output, ids)
        })
        .await
}

/// Notes one answer's request id; outside [`gather`] it goes nowhere.
pub fn note(id: &str) {
    let _ = GATHERED.try_with(|ids| ids.borrow_mut().push(id.to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_are_gathered_per_scope() {
        let ((), ids) = gather(async {
            note("a");
            note("b");
        })
        .await;
        assert_eq!(ids, ["a", "b"]);
        note("lost");
        let ((), ids) = gather(async {}).await;
        assert!(ids.is_empty());
    }
}
