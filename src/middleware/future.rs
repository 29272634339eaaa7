//! `ResponseFuture`: read the body, check it, then call the inner service or refuse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use bytes::{Buf, BufMut, BytesMut};
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{Full, LengthLimitError, Limited};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::BoxError;
use std::time::Duration;

use tokio::time::Sleep;

use super::key_source::KeyLookup;
use super::layer::{Keys, Shared};
use super::rejection_log::Event;
use super::response::{Rejection, RejectionResponse, ResponseBody};
use super::service::{Unverified, check, key_request};
use crate::{ValidationError, Verified};

pin_project! {
    /// The future of [`TwilioWebhook`](super::TwilioWebhook): no boxing, one state at a time.
    pub struct ResponseFuture<S, B, R>
    where
        S: Service<Request<Full<Bytes>>>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        state: State<S, B, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, R>
    where
        S: Service<Request<Full<Bytes>>>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        Reading {
            #[pin]
            body: Buffer<B>,
            parts: Option<Parts>,
            inner: Option<S>,
            shared: Arc<Shared<R>>,
        },
        LookingUp {
            lookup: KeyLookup,
            account_sid: Option<String>,
            parts: Option<Parts>,
            bytes: Bytes,
            inner: Option<S>,
            shared: Arc<Shared<R>>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Refused {
            response: Option<Response<Full<Bytes>>>,
        },
    }
}

impl<S, B, R, ResBody> ResponseFuture<S, B, R>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
    R: RejectionResponse,
{
    pub(crate) fn reading(parts: Parts, body: Buffer<B>, inner: S, shared: Arc<Shared<R>>) -> Self {
        Self {
            state: State::Reading {
                body,
                parts: Some(parts),
                inner: Some(inner),
                shared,
            },
        }
    }

    pub(crate) fn rejected(shared: &Shared<R>, rejection: Rejection) -> Self {
        Self {
            state: State::Refused {
                response: Some(respond(shared, rejection)),
            },
        }
    }
}

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

/// The rejection response, with the reason in its extensions for outer layers.
fn respond<R: RejectionResponse>(
    shared: &Shared<R>,
    rejection: Rejection,
) -> Response<Full<Bytes>> {
    let mut response = shared
        .rejection
        .response(&rejection)
        .map(|body| Full::new(body.into()));
    if let Rejection::Invalid(error) = &rejection {
        response.extensions_mut().insert(error.clone());
    }
    response.extensions_mut().insert(rejection);
    response
}

/// A response the layer built, in the layer's response body.
fn layer_answer<B>(response: Response<Full<Bytes>>) -> Response<ResponseBody<B>> {
    response.map(|body| ResponseBody::Layer { body })
}

/// Calls the inner service with the request marked, or answers the rejection.
fn proceed<S, R, ResBody>(
    mut parts: Parts,
    bytes: Bytes,
    mut inner: S,
    verdict: Result<Verified, ValidationError>,
    shared: &Shared<R>,
) -> Result<S::Future, Rejection>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    R: RejectionResponse,
{
    match verdict {
        Ok(verified) => {
            parts.extensions.insert(verified);
        }
        Err(error) if shared.report_only => {
            parts.extensions.insert(Unverified(error));
        }
        Err(error) => return Err(Rejection::Invalid(error)),
    }
    Ok(inner.call(Request::from_parts(parts, Full::new(bytes))))
}

impl<S, B, R, ResBody> Future for ResponseFuture<S, B, R>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
    R: RejectionResponse,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Reading {
                    body,
                    parts,
                    inner,
                    shared,
                } => {
                    let collected = ready!(body.poll(cx));
                    let shared = Arc::clone(shared);
                    let (Some(parts), Some(inner)) = (parts.take(), inner.take()) else {
                        unreachable!("the Reading state is left as soon as the body is read")
                    };
                    let bytes = match collected {
                        Ok(bytes) => bytes,
                        Err(mut rejection) => {
                            if let Rejection::PayloadTooLarge { limit } = &mut rejection {
                                *limit = shared.body_limit;
                            }
                            shared.log.record(Event {
                                rejection: &rejection,
                                method: &parts.method,
                                url: None,
                                report_only: shared.report_only,
                            });
                            return Poll::Ready(Ok(layer_answer(respond(&shared, rejection))));
                        }
                    };
                    match &shared.keys {
                        Keys::Static(validator) => {
                            let verdict = check(&parts, &bytes, Some(validator), &shared);
                            match proceed(parts, bytes, inner, verdict, &shared) {
                                Ok(future) => state.set(State::Calling { future }),
                                Err(rejection) => {
                                    return Poll::Ready(Ok(layer_answer(respond(
                                        &shared, rejection,
                                    ))));
                                }
                            }
                        }
                        Keys::Source(source) => {
                            let request = match key_request(&parts, &bytes) {
                                Ok(request) => request,
                                Err(error) => {
                                    shared.log.record(Event {
                                        rejection: &Rejection::Invalid(error.clone()),
                                        method: &parts.method,
                                        url: None,
                                        report_only: shared.report_only,
                                    });
                                    match proceed(parts, bytes, inner, Err(error), &shared) {
                                        Ok(future) => state.set(State::Calling { future }),
                                        Err(response) => {
                                            return Poll::Ready(Ok(layer_answer(response)));
                                        }
                                    }
                                    continue;
                                }
                            };
                            let account_sid = request.account_sid.clone();
                            let lookup = source.validator(request);
                            state.set(State::LookingUp {
                                lookup,
                                account_sid,
                                parts: Some(parts),
                                bytes,
                                inner: Some(inner),
                                shared,
                            });
                        }
                    }
                }
                StateProj::LookingUp {
                    lookup,
                    account_sid,
                    parts,
                    bytes,
                    inner,
                    shared,
                } => {
                    let found = ready!(lookup.as_mut().poll(cx));
                    let shared = Arc::clone(shared);
                    let (Some(parts), Some(inner)) = (parts.take(), inner.take()) else {
                        unreachable!("the LookingUp state is left as soon as the lookup ends")
                    };
                    let validator = match found {
                        Ok(validator) => validator,
                        Err(error) => {
                            // The source's error is ours to show: it holds no request data.
                            tracing::error!(
                                target: "twilio_webhook",
                                %error,
                                "the key lookup failed"
                            );
                            let rejection = Rejection::KeyLookupFailed;
                            shared.log.record(Event {
                                rejection: &rejection,
                                method: &parts.method,
                                url: None,
                                report_only: shared.report_only,
                            });
                            return Poll::Ready(Ok(layer_answer(respond(&shared, rejection))));
                        }
                    };
                    let verdict =
                        check(&parts, bytes, validator.as_deref(), &shared).map(|verified| {
                            Verified {
                                account_sid: account_sid.take(),
                                ..verified
                            }
                        });
                    match proceed(parts, bytes.clone(), inner, verdict, &shared) {
                        Ok(future) => state.set(State::Calling { future }),
                        Err(rejection) => {
                            return Poll::Ready(Ok(layer_answer(respond(&shared, rejection))));
                        }
                    }
                }
                StateProj::Calling { future } => {
                    return future
                        .poll(cx)
                        .map_ok(|response| response.map(|body| ResponseBody::Inner { body }));
                }
                StateProj::Refused { response } => {
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(layer_answer(response)));
                }
            }
        }
    }
}
