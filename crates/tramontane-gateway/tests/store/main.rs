//! The limit stores against one specification: every assertion in `conformance` holds for
//! the in-process store and for Redis alike, and `redis_faults` covers what only a shared
//! store can suffer (races between replicas, lapsed leases, a flushed script cache, a server
//! that goes away and comes back).
//!
//! Redis is `TRAMONTANE_TEST_REDIS_URL` when set (each test under a key prefix of its own),
//! otherwise a private redis-server started per test; when neither is available the tests
//! fail and say what to install, they never skip.

mod claims;
mod conformance;
mod redis_faults;
mod support;
