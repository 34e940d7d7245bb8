//! An upstream's error body on its way back to the caller, with the Mistral key the request
//! was sent with masked wherever the body repeats it: an upstream that echoes the
//! credential it refused ("invalid key sk-…") must not hand it to a caller who should never
//! see it. Streamed, never buffered whole: only the last `key length - 1` bytes are held
//! back between frames, in case a key straddles two of them. The mask has the key's length,
//! so a `Content-Length` stays true.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use secrecy::{ExposeSecret, SecretString};

use crate::upstream::{BodyError, UpstreamBody};

/// What a masked key becomes: one of these per byte.
const MASK: u8 = b'*';

pub struct ScrubbedBody {
    inner: UpstreamBody,
    secret: SecretString,
    pending: BytesMut,
    ready: VecDeque<Frame<Bytes>>,
    ended: bool,
}

impl ScrubbedBody {
    pub fn new(inner: UpstreamBody, secret: SecretString) -> ScrubbedBody {
        ScrubbedBody {
            inner,
            secret,
            pending: BytesMut::new(),
            ready: VecDeque::new(),
            ended: false,
        }
    }

    /// Masks every whole occurrence of the key in what is pending.
    fn mask(&mut self) {
        let key = self.secret.expose_secret().as_bytes();
        if key.is_empty() || self.pending.len() < key.len() {
            return;
        }
        let mut at = 0;
        while at + key.len() <= self.pending.len() {
            if &self.pending[at..at + key.len()] == key {
                self.pending[at..at + key.len()].fill(MASK);
                at += key.len();
            } else {
                at += 1;
            }
        }
    }

    /// Moves what can no longer be the start of a key to the ready frames; everything when
    /// `all`.
    fn release(&mut self, all: bool) {
        let held = if all {
            0
        } else {
            self.secret.expose_secret().len().saturating_sub(1)
        };
        if self.pending.len() > held {
            let out = self.pending.split_to(self.pending.len() - held);
            self.ready.push_back(Frame::data(out.freeze()));
        }
    }
}

impl Body for ScrubbedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            if let Some(frame) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.ended = true;
                    this.release(true);
                }
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.pending.extend_from_slice(&data);
                        this.mask();
                        this.release(false);
                    }
                    Err(other) => {
                        this.release(true);
                        this.ready.push_back(other);
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.ready.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        let buffered = self.pending.len()
            + self
                .ready
                .iter()
                .filter_map(|frame| frame.data_ref().map(Bytes::len))
                .sum::<usize>();
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + buffered as u64);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + buffered as u64);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    async fn scrubbed(chunks: &[&str], key: &str) -> String {
        let frames: Vec<Result<Frame<Bytes>, BodyError>> = chunks
            .iter()
            .map(|chunk| Ok(Frame::data(Bytes::from(chunk.to_string()))))
            .collect();
        let inner = StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync();
        let body = ScrubbedBody::new(inner, SecretString::from(key.to_owned()));
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_key_is_masked_even_across_frames_and_the_length_kept() {
        let key = "sk-abcdef123";
        let whole = r#"{"message":"invalid key sk-abcdef123, and again sk-abcdef123"}"#;
        let out = scrubbed(&[whole], key).await;
        assert!(!out.contains(key), "{out}");
        assert_eq!(out.len(), whole.len());
        assert!(out.contains("invalid key ************,"), "{out}");
        // Split at every point: the key straddles two frames.
        for split in 1..whole.len() {
            let out = scrubbed(&[&whole[..split], &whole[split..]], key).await;
            assert!(!out.contains("sk-abcdef"), "{split}: {out}");
            assert_eq!(out.len(), whole.len());
        }
        // A body without the key is untouched, however it is cut.
        let plain = r#"{"message":"sk-abcdef12 is not quite it"}"#;
        assert_eq!(scrubbed(&[&plain[..5], &plain[5..]], key).await, plain);
    }
}
