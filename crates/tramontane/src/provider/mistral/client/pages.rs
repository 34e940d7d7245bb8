//! A list read to its end: every page, at the size the server serves, and accepted only
//! whole.

use serde::de::DeserializeOwned;

use super::Client;
use crate::provider::mistral::error::ApiError;
use crate::provider::mistral::paging::{self, Collected, Listed, PAGES_PER_BATCH, Page};

impl Client {
    /// Reads every page of a list. The first page shows how many items the server puts on
    /// a page, which may be fewer than asked: the rest are asked at that size, at once (the
    /// semaphore bounds them), as many as the `total` needs. Without a total, pages are read
    /// until an empty one. The list is accepted only whole: as many items as the total, and
    /// none twice.
    pub(super) async fn all_pages<P, T>(
        &self,
        path: &str,
        extra: &[(&str, String)],
        size: usize,
        split: impl Fn(P) -> Page<T>,
    ) -> Result<Vec<T>, ApiError>
    where
        P: DeserializeOwned,
        T: Listed,
    {
        let query = |page: usize, size: usize| {
            let mut query = extra.to_vec();
            query.push(("page", page.to_string()));
            query.push(("page_size", size.to_string()));
            query
        };
        let mut list = Collected::new(format!("GET {path}"));
        let first = split(self.get(path, &query(1, size)).await?);
        let served = first.items.len();
        list.add(first.items)?;
        let Some(total) = first.total else {
            // A short page may be only the server's cap, so only an empty one ends the list.
            let mut page = 1;
            let mut last = served;
            while last > 0 {
                page += 1;
                let more = split(self.get(path, &query(page, served)).await?);
                last = more.items.len();
                list.add(more.items)?;
            }
            return list.finish(None);
        };
        if total > paging::MAX_LIST_ITEMS as u64 {
            return Err(list.too_long(total));
        }
        if served as u64 >= total {
            return list.finish(Some(total));
        }
        if served == 0 {
            return Err(list.changed(format!(
                "the first page is empty where the total is {total}"
            )));
        }
        // More items remain, so the first page was full: its size is the server's.
        let pages = (total as usize).div_ceil(served);
        for first_of_batch in (2..=pages).step_by(PAGES_PER_BATCH) {
            let batch = first_of_batch..=pages.min(first_of_batch + PAGES_PER_BATCH - 1);
            let answers = crate::provider::mistral::join_all(
                batch
                    .map(|page| {
                        let query = query(page, served);
                        async move { self.get::<P>(path, &query).await }
                    })
                    .collect(),
            )
            .await;
            for answer in answers {
                let page = split(answer?);
                if let Some(now) = page.total
                    && now != total
                {
                    return Err(list.changed(format!("the total went from {total} to {now}")));
                }
                list.add(page.items)?;
            }
        }
        list.finish(Some(total))
    }
}
