//! `Buffer`: the whole request body, within the layer's size limit and time limit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::Body;
use http_body_util::{LengthLimitError, Limited};
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::BoxError;
use super::response::Rejection;

pin_project! {
    /// The whole body, within the limit and the timeout. A body that arrives in one piece, as
    /// a small webhook does, is kept as that piece: no copy, no allocation, no timer.
    pub(crate) struct Buffer<B> {
        #[pin]
        body: Limited<B>,
        // Started the first time the body is not ready.
        #[pin]
        deadline: Option<Sleep>,
        timeout: Duration,
        first: Option<Bytes>,
        more: Option<BytesMut>,
    }
}

impl<B> Buffer<B> {
    pub(crate) fn new(body: B, limit: usize, timeout: Duration) -> Self {
        Self {
            body: Limited::new(body, limit),
            deadline: None,
            timeout,
            first: None,
            more: None,
        }
    }
}

impl<B> Future for Buffer<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    /// The body, or [`Rejection::PayloadTooLarge`] (the limit is filled in by the caller),
    /// [`Rejection::BodyUnreadable`] or [`Rejection::BodyTimeout`].
    type Output = Result<Bytes, Rejection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let frame = match this.body.as_mut().poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    if this.deadline.is_none() {
                        this.deadline.set(Some(tokio::time::sleep(*this.timeout)));
                    }
                    let deadline = this.deadline.as_mut().as_pin_mut().expect("set above");
                    ready!(deadline.poll(cx));
                    return Poll::Ready(Err(Rejection::BodyTimeout {
                        after: *this.timeout,
                    }));
                }
            };
            let Some(frame) = frame else {
                let bytes = match (this.more.take(), this.first.take()) {
                    (Some(more), _) => more.freeze(),
                    (None, first) => first.unwrap_or_default(),
                };
                return Poll::Ready(Ok(bytes));
            };
            let frame = frame.map_err(|error| {
                if error.is::<LengthLimitError>() {
                    Rejection::PayloadTooLarge { limit: 0 }
                } else {
                    Rejection::BodyUnreadable
                }
            })?;
            // Trailers are not part of what Twilio signs.
            let Ok(mut data) = frame.into_data() else {
                continue;
            };
            let bytes = data.copy_to_bytes(data.remaining());
            match (this.first.take(), this.more.as_mut()) {
                (None, None) => *this.first = Some(bytes),
                (Some(first), _) => {
                    let mut more = BytesMut::with_capacity(first.len() + bytes.len());
                    more.put(first);
                    more.put(bytes);
                    *this.more = Some(more);
                }
                (None, Some(more)) => more.put(bytes),
            }
        }
    }
}
