//! `ResponseFuture`: read the body, check it, claim it, then call the inner service or refuse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use tokio::time::Timeout;
use tower_service::Service;

use super::BoxError;
use super::buffer::Buffer;
use super::key_source::KeyLookup;
use super::layer::{Keys, Shared};
use super::replay_guard::HeldClaim;
use super::response::{Rejection, RejectionResponse, ResponseBody};
use super::service::{check, header_str, key_request};
use crate::http_auth::Unauthorized;
use crate::replay::{Claim, ClaimKey, ClaimOwner, ReplayCheck, StoreError, StoreFuture};
use crate::{Unverified, ValidationError, Verified};

pin_project! {
    /// The future of [`TwilioWebhook`](super::TwilioWebhook): no boxing but the key source's
    /// and the replay store's own futures, one state at a time.
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
            parts: Option<Parts>,
            bytes: Bytes,
            inner: Option<S>,
            shared: Arc<Shared<R>>,
        },
        Claiming {
            #[pin]
            claim: Timeout<StoreFuture<Claim>>,
            held: Option<HeldClaim>,
            parts: Option<Parts>,
            bytes: Bytes,
            inner: Option<S>,
            shared: Arc<Shared<R>>,
        },
        Calling {
            #[pin]
            future: S::Future,
            held: Option<HeldClaim>,
        },
        Releasing {
            #[pin]
            release: Timeout<StoreFuture<()>>,
            response: Option<S::Response>,
        },
        Refused {
            response: Option<Response<Full<Bytes>>>,
        },
    }
}

/// What to do once the verdict is in. Moved into the state at once, so its size does not
/// matter.
#[allow(clippy::large_enum_variant)]
enum Next<S: Service<Request<Full<Bytes>>>> {
    Call(S::Future, Option<HeldClaim>),
    Claim {
        claim: Timeout<StoreFuture<Claim>>,
        held: HeldClaim,
        parts: Parts,
        bytes: Bytes,
        inner: S,
    },
    Refuse(Rejection),
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

    /// A 401 with one `WWW-Authenticate` per offered challenge: added whatever the rejection
    /// hook returns, since Twilio sends credentials only in answer to one.
    pub(crate) fn unauthorized(
        shared: &Shared<R>,
        unauthorized: &Unauthorized,
        version: http::Version,
    ) -> Self {
        let rejection = Rejection::Unauthorized(unauthorized.reason());
        let mut response = respond_unread(shared, rejection, version);
        for challenge in unauthorized.challenges() {
            if let Ok(value) = http::HeaderValue::from_str(challenge) {
                response
                    .headers_mut()
                    .append(http::header::WWW_AUTHENTICATE, value);
            }
        }
        Self::refused(response)
    }

    /// A rejection answered before the body was read.
    pub(crate) fn rejected_unread(
        shared: &Shared<R>,
        rejection: Rejection,
        version: http::Version,
    ) -> Self {
        Self::refused(respond_unread(shared, rejection, version))
    }

    fn refused(response: Response<Full<Bytes>>) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
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

/// The rejection response for a request whose body was left unread. Its connection cannot
/// carry another request: the response says so (HTTP/1.x), or a client that re-sends on it
/// (curl answering a 401 challenge) gets an empty reply. HTTP/2 streams end on their own and
/// forbid the header.
fn respond_unread<R: RejectionResponse>(
    shared: &Shared<R>,
    rejection: Rejection,
    version: http::Version,
) -> Response<Full<Bytes>> {
    let mut response = respond(shared, rejection);
    if version < http::Version::HTTP_2 {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// A response the layer built, in the layer's response body.
fn layer_answer<B>(response: Response<Full<Bytes>>) -> Response<ResponseBody<B>> {
    response.map(|body| ResponseBody::Layer { body })
}

/// The request marked as it is handed on.
fn request(parts: Parts, bytes: Bytes) -> Request<Full<Bytes>> {
    Request::from_parts(parts, Full::new(bytes))
}

/// Calls the inner service with the request marked, claims it first when the replay guard is
/// on, or refuses it.
fn after_verdict<S, R>(
    mut parts: Parts,
    bytes: Bytes,
    mut inner: S,
    verdict: Result<Verified, ValidationError>,
    shared: &Shared<R>,
) -> Next<S>
where
    S: Service<Request<Full<Bytes>>>,
{
    match verdict {
        Ok(verified) => match &shared.replay {
            Some(guard) => {
                // Verified, so the header is there, once, and canonical.
                let signature = header_str(&parts.headers, &crate::twilio_headers::SIGNATURE, ())
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let key = ClaimKey::for_request(&verified, signature);
                parts.extensions.insert(verified);
                let owner = ClaimOwner::unique();
                let claim = guard.store.claim(key, owner, guard.ttl);
                Next::Claim {
                    claim: tokio::time::timeout(guard.timeout, claim),
                    held: HeldClaim::new(guard, key, owner),
                    parts,
                    bytes,
                    inner,
                }
            }
            None => {
                parts.extensions.insert(verified);
                Next::Call(inner.call(request(parts, bytes)), None)
            }
        },
        // Only verified requests are claimed: an unverified one cannot fill the store.
        Err(error) if shared.report_only => {
            parts.extensions.insert(Unverified(error));
            Next::Call(inner.call(request(parts, bytes)), None)
        }
        Err(error) => Next::Refuse(Rejection::Invalid(error)),
    }
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
            let next = match state.as_mut().project() {
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
                            shared.log_rejection(&rejection, &parts.method, None);
                            return Poll::Ready(Ok(layer_answer(respond(&shared, rejection))));
                        }
                    };
                    match &shared.keys {
                        Keys::Static(validator) => {
                            let verdict = check(&parts, &bytes, Some(validator), &shared);
                            (after_verdict(parts, bytes, inner, verdict, &shared), shared)
                        }
                        Keys::Source(source) => match key_request(&parts, &bytes) {
                            Ok(request) => {
                                let lookup = source.validator(request);
                                state.set(State::LookingUp {
                                    lookup,
                                    parts: Some(parts),
                                    bytes,
                                    inner: Some(inner),
                                    shared,
                                });
                                continue;
                            }
                            Err(error) => {
                                shared.log_rejection(
                                    &Rejection::Invalid(error.clone()),
                                    &parts.method,
                                    None,
                                );
                                (
                                    after_verdict(parts, bytes, inner, Err(error), &shared),
                                    shared,
                                )
                            }
                        },
                    }
                }
                StateProj::LookingUp {
                    lookup,
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
                            shared.log_rejection(&rejection, &parts.method, None);
                            return Poll::Ready(Ok(layer_answer(respond(&shared, rejection))));
                        }
                    };
                    // The account is the validator's own (`Validator::account_sid`, which
                    // `AccountMap` sets), never the request's unverified claim.
                    let verdict = check(&parts, bytes, validator.as_deref(), &shared);
                    let bytes = core::mem::take(bytes);
                    (after_verdict(parts, bytes, inner, verdict, &shared), shared)
                }
                StateProj::Claiming {
                    claim,
                    held,
                    parts,
                    bytes,
                    inner,
                    shared,
                } => {
                    let outcome = ready!(claim.poll(cx));
                    let shared = Arc::clone(shared);
                    let (Some(mut parts), Some(mut inner), Some(held)) =
                        (parts.take(), inner.take(), held.take())
                    else {
                        unreachable!("the Claiming state is left as soon as the claim ends")
                    };
                    let outcome: Result<Claim, StoreError> = match outcome {
                        Ok(outcome) => outcome,
                        Err(elapsed) => Err(Box::new(elapsed)),
                    };
                    match outcome {
                        Ok(Claim::Claimed) => {
                            parts.extensions.insert(ReplayCheck::Claimed);
                            let future = inner.call(request(parts, core::mem::take(bytes)));
                            (Next::Call(future, Some(held)), shared)
                        }
                        Ok(Claim::AlreadyClaimed) => {
                            held.disarm();
                            shared.log.record_duplicate(&parts);
                            (Next::Refuse(Rejection::Duplicate), shared)
                        }
                        Err(error) => {
                            shared
                                .log
                                .record_store_failure(&*error, guard_fails_closed(&shared));
                            if guard_fails_closed(&shared) {
                                // Dropping the claim releases whatever the store may have kept.
                                drop(held);
                                (Next::Refuse(Rejection::ReplayStoreFailed), shared)
                            } else {
                                // Kept armed: if the claim did land, it is released or kept
                                // like any other, by the handler's answer.
                                parts.extensions.insert(ReplayCheck::NotChecked);
                                let future = inner.call(request(parts, core::mem::take(bytes)));
                                (Next::Call(future, Some(held)), shared)
                            }
                        }
                    }
                }
                StateProj::Calling { future, held } => {
                    let response = match ready!(future.poll(cx)) {
                        Ok(response) => response,
                        // Dropping the claim releases it: the re-send will be handled.
                        Err(error) => return Poll::Ready(Err(error)),
                    };
                    match held.take() {
                        Some(held) if response.status().is_success() => held.keep(),
                        // Released before answering, so Twilio's re-send finds the key free.
                        Some(held) => {
                            state.set(State::Releasing {
                                release: held.release(),
                                response: Some(response),
                            });
                            continue;
                        }
                        None => {}
                    }
                    return Poll::Ready(Ok(response.map(|body| ResponseBody::Inner { body })));
                }
                StateProj::Releasing { release, response } => {
                    let failure: Option<StoreError> = match ready!(release.poll(cx)) {
                        Ok(Ok(())) => None,
                        Ok(Err(error)) => Some(error),
                        Err(elapsed) => Some(Box::new(elapsed)),
                    };
                    if let Some(error) = failure {
                        tracing::error!(
                            target: "twilio_webhook",
                            %error,
                            "replay guard: a release failed; the claim expires with its TTL"
                        );
                    }
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(response.map(|body| ResponseBody::Inner { body })));
                }
                StateProj::Refused { response } => {
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(layer_answer(response)));
                }
            };
            let (next, shared) = next;
            match next {
                Next::Call(future, held) => state.set(State::Calling { future, held }),
                Next::Claim {
                    claim,
                    held,
                    parts,
                    bytes,
                    inner,
                } => state.set(State::Claiming {
                    claim,
                    held: Some(held),
                    parts: Some(parts),
                    bytes,
                    inner: Some(inner),
                    shared,
                }),
                Next::Refuse(rejection) => {
                    return Poll::Ready(Ok(layer_answer(respond(&shared, rejection))));
                }
            }
        }
    }
}

fn guard_fails_closed<R>(shared: &Shared<R>) -> bool {
    shared
        .replay
        .as_ref()
        .is_some_and(|guard| guard.fail_closed)
}
