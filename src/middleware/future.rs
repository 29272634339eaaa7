//! `ResponseFuture`: read the body, check it, claim it, then call the inner service or refuse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tokio::time::error::Elapsed;
use tower_service::Service;

use super::BoxError;
use super::buffer::Buffer;
use super::key_source::KeyLookup;
use super::layer::{Keys, Shared};
use super::replay_guard::{Bounded, HeldClaim};
use super::response::{Rejection, RejectionResponse, ResponseBody};
use super::service::{check, header_str, key_request};
use crate::http_auth::Unauthorized;
use crate::replay::{Claim, ClaimKey, ClaimOwner, ReplayCheck, StoreError};
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

/// A request whose body is read, on its way to the inner service.
struct Buffered<S, R> {
    parts: Parts,
    bytes: Bytes,
    inner: S,
    shared: Arc<Shared<R>>,
}

/// A verified request and the claim it is trying to take.
struct Claimant<S, R> {
    request: Buffered<S, R>,
    held: HeldClaim,
    /// When a copy waiting for the one in progress gives up, once it has started waiting.
    wait_until: Option<Instant>,
    /// How many times it has asked again.
    attempts: u32,
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
            request: Option<Buffered<S, R>>,
        },
        Claiming {
            #[pin]
            claim: Bounded<Claim>,
            claimant: Option<Claimant<S, R>>,
        },
        Waiting {
            #[pin]
            pause: Sleep,
            claimant: Option<Claimant<S, R>>,
        },
        Calling {
            #[pin]
            future: S::Future,
            guarded: Option<Guarded<R>>,
        },
        Completing {
            #[pin]
            complete: Bounded<bool>,
            guarded: Option<Guarded<R>>,
            response: Option<S::Response>,
        },
        Releasing {
            #[pin]
            release: Bounded<()>,
            guarded: Option<Guarded<R>>,
            response: Option<S::Response>,
        },
        Refused {
            response: Option<Response<Full<Bytes>>>,
        },
    }
}

/// The claim of a request whose handler runs, and its renewal.
struct Guarded<R> {
    held: HeldClaim,
    shared: Arc<Shared<R>>,
    /// When the lease is next renewed; `None` for a claim the store did not confirm.
    renew_at: Option<Pin<Box<Sleep>>>,
    renewing: Option<Pin<Box<Bounded<bool>>>>,
}

/// What a state's step leads to: the next state, or the answer.
enum Step<State, Output> {
    Next(State),
    Done(Output),
}

type Output<S, ResBody> =
    Result<Response<ResponseBody<ResBody>>, <S as Service<Request<Full<Bytes>>>>::Error>;
type StepOf<S, B, R, ResBody> = Step<State<S, B, R>, Output<S, ResBody>>;

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
    // Whatever the hook returned: Twilio is to retry, not give up.
    if let Rejection::InProgress = rejection {
        response
            .headers_mut()
            .entry(http::header::RETRY_AFTER)
            .or_insert(http::HeaderValue::from_static("1"));
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

/// The inner service's response, in the layer's response body.
fn inner_answer<B>(response: Response<B>) -> Response<ResponseBody<B>> {
    response.map(|body| ResponseBody::Inner { body })
}

/// The first pause of a copy waiting for the one in progress; each next one is twice as long,
/// up to [`MAX_PAUSE`]. A memory store answers in nanoseconds and a Redis in a fraction of a
/// millisecond, so asking again costs little, and a short first pause answers quickly the
/// copy of a handler that was about to finish.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const MAX_PAUSE: Duration = Duration::from_millis(50);

impl<S, R> Buffered<S, R>
where
    S: Service<Request<Full<Bytes>>>,
    R: RejectionResponse,
{
    fn refuse<B, ResBody>(self, rejection: Rejection) -> StepOf<S, B, R, ResBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        Step::Done(Ok(layer_answer(respond(&self.shared, rejection))))
    }

    /// The inner service called with the request as it arrived, marked.
    fn call<B>(mut self, guarded: Option<Guarded<R>>) -> State<S, B, R>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let request = Request::from_parts(self.parts, Full::new(self.bytes));
        State::Calling {
            future: self.inner.call(request),
            guarded,
        }
    }

    /// Calls the inner service with the request marked, claims it first when the replay guard
    /// is on, or refuses it.
    fn after_verdict<B, ResBody>(
        mut self,
        verdict: Result<Verified, ValidationError>,
    ) -> StepOf<S, B, R, ResBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        match verdict {
            Ok(verified) => match &self.shared.replay {
                Some(guard) => {
                    // Verified, so the header is there, once, and canonical.
                    let signature =
                        header_str(&self.parts.headers, &crate::twilio_headers::SIGNATURE, ())
                            .ok()
                            .flatten()
                            .unwrap_or_default();
                    let key = ClaimKey::for_request(&verified, signature);
                    self.parts.extensions.insert(verified);
                    let held = HeldClaim::new(guard, key, ClaimOwner::unique());
                    Step::Next(State::Claiming {
                        claim: held.claim(),
                        claimant: Some(Claimant {
                            request: self,
                            held,
                            wait_until: None,
                            attempts: 0,
                        }),
                    })
                }
                None => {
                    self.parts.extensions.insert(verified);
                    Step::Next(self.call(None))
                }
            },
            // Only verified requests are claimed: an unverified one cannot fill the store.
            Err(error) if self.shared.report_only => {
                self.parts.extensions.insert(Unverified(error));
                Step::Next(self.call(None))
            }
            Err(error) => self.refuse(Rejection::Invalid(error)),
        }
    }
}

impl<S, R> Claimant<S, R>
where
    S: Service<Request<Full<Bytes>>>,
    R: RejectionResponse,
{
    /// The store answered the claim (or failed to in time).
    fn claimed<B, ResBody>(mut self, outcome: Result<Claim, StoreError>) -> StepOf<S, B, R, ResBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let shared = Arc::clone(&self.request.shared);
        let guard = shared.replay.as_ref().expect("claims are made by a guard");
        match outcome {
            Ok(Claim::Claimed) => {
                self.request.parts.extensions.insert(ReplayCheck::Claimed);
                let guarded = Guarded::new(self.held, shared, true);
                Step::Next(self.request.call(Some(guarded)))
            }
            Ok(Claim::Handled) => {
                self.held.finish();
                shared.log.record_duplicate(&self.request.parts);
                self.request.refuse(Rejection::Duplicate)
            }
            Ok(Claim::InProgress) => {
                // Not "done" before the outcome is known: wait for the first copy.
                let now = Instant::now();
                let until = *self.wait_until.get_or_insert(now + guard.wait);
                if now >= until {
                    self.held.finish();
                    shared.log_rejection(&Rejection::InProgress, &self.request.parts.method, None);
                    return self.request.refuse(Rejection::InProgress);
                }
                let pause = FIRST_PAUSE
                    .saturating_mul(1 << self.attempts.min(16))
                    .min(MAX_PAUSE)
                    .min(until - now);
                self.attempts += 1;
                Step::Next(State::Waiting {
                    pause: tokio::time::sleep(pause),
                    claimant: Some(self),
                })
            }
            Err(error) => {
                let unchecked = if guard.fail_closed {
                    guard.unchecked.load(Ordering::Relaxed)
                } else {
                    guard.unchecked.fetch_add(1, Ordering::Relaxed) + 1
                };
                shared
                    .log
                    .record_store_failure(&*error, guard.fail_closed, unchecked);
                if guard.fail_closed {
                    // Dropping the claim releases whatever the store may have kept.
                    drop(self.held);
                    self.request.refuse(Rejection::ReplayStoreFailed)
                } else {
                    // Kept: if the claim did land, it is completed or released like any
                    // other, by the handler's answer; it is not renewed.
                    self.request
                        .parts
                        .extensions
                        .insert(ReplayCheck::NotChecked);
                    let guarded = Guarded::new(self.held, shared, false);
                    Step::Next(self.request.call(Some(guarded)))
                }
            }
        }
    }
}

impl<R> Guarded<R> {
    fn new(mut held: HeldClaim, shared: Arc<Shared<R>>, checked: bool) -> Self {
        held.checked = checked;
        let renew_at = checked.then(|| Box::pin(tokio::time::sleep(held.renew_every())));
        Self {
            held,
            shared,
            renew_at,
            renewing: None,
        }
    }

    /// Keeps the lease alive while the handler runs: renews it every third of a lease. Never
    /// ready; it only registers the wake-ups it needs.
    fn poll_renewal(&mut self, cx: &mut Context<'_>) {
        let Some(renew_at) = &mut self.renew_at else {
            return;
        };
        loop {
            if let Some(renewing) = &mut self.renewing {
                let Poll::Ready(outcome) = renewing.as_mut().poll(cx) else {
                    return;
                };
                self.renewing = None;
                match outcome {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => self.shared.log.record_claim_trouble(
                        "a claim in progress was lost (its lease ran out before it was renewed): a copy may be handled twice",
                        None,
                    ),
                    Ok(Err(error)) => self
                        .shared
                        .log
                        .record_claim_trouble("a lease could not be renewed", Some(&*error)),
                    Err(elapsed) => self
                        .shared
                        .log
                        .record_claim_trouble("a lease could not be renewed", Some(&elapsed)),
                }
            }
            if renew_at.as_mut().poll(cx).is_pending() {
                return;
            }
            let next = tokio::time::Instant::now() + self.held.renew_every();
            renew_at.as_mut().reset(next);
            self.renewing = Some(Box::pin(self.held.renew()));
        }
    }

    /// The store's answer to a completion or a release, said when it is not what it should be.
    /// A completion that failed is tried again in the background (dropping the claim does),
    /// until the lease would have ended.
    fn settled(self, what: &str, outcome: Result<Result<bool, StoreError>, Elapsed>) {
        let Self { held, shared, .. } = self;
        let checked = held.checked;
        if matches!(outcome, Ok(Ok(_))) || !checked {
            held.finish();
        } else {
            drop(held);
        }
        match outcome {
            // A claim the store never confirmed may well not be there, and the store's failure
            // was reported (and counted) when the claim failed.
            _ if !checked => {}
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => shared.log.record_claim_trouble(
                "a handled webhook's claim was lost before it was completed: a re-send may be \
                 handled again",
                None,
            ),
            Ok(Err(error)) => shared.log.record_claim_trouble(what, Some(&*error)),
            Err(elapsed) => shared.log.record_claim_trouble(what, Some(&elapsed)),
        }
    }
}

impl<S, B, R, ResBody> ResponseFuture<S, B, R>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
    R: RejectionResponse,
{
    /// Reading the body, then checking it with the layer's key, or asking the key source.
    fn read(
        body: Pin<&mut Buffer<B>>,
        parts: &mut Option<Parts>,
        inner: &mut Option<S>,
        shared: &Arc<Shared<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<StepOf<S, B, R, ResBody>> {
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
                return Poll::Ready(Step::Done(Ok(layer_answer(respond(&shared, rejection)))));
            }
        };
        let request = Buffered {
            parts,
            bytes,
            inner,
            shared,
        };
        Poll::Ready(match &request.shared.keys {
            Keys::Static(validator) => {
                let verdict = check(
                    &request.parts,
                    &request.bytes,
                    Some(validator),
                    &request.shared,
                );
                request.after_verdict(verdict)
            }
            Keys::Source(source) => match key_request(&request.parts, &request.bytes) {
                Ok(key_request) => Step::Next(State::LookingUp {
                    lookup: source.validator(key_request),
                    request: Some(request),
                }),
                Err(error) => {
                    request.shared.log_rejection(
                        &Rejection::Invalid(error.clone()),
                        &request.parts.method,
                        None,
                    );
                    request.after_verdict(Err(error))
                }
            },
        })
    }

    /// The key source's answer: the account's validator checks the request.
    fn look_up(
        lookup: &mut KeyLookup,
        request: &mut Option<Buffered<S, R>>,
        cx: &mut Context<'_>,
    ) -> Poll<StepOf<S, B, R, ResBody>> {
        let found = ready!(lookup.as_mut().poll(cx));
        let request = request
            .take()
            .expect("the LookingUp state is left as soon as the lookup ends");
        let validator = match found {
            Ok(validator) => validator,
            Err(error) => {
                // The source's error is ours to show: it holds no request data.
                tracing::error!(target: "twilio_webhook", %error, "the key lookup failed");
                let rejection = Rejection::KeyLookupFailed;
                request
                    .shared
                    .log_rejection(&rejection, &request.parts.method, None);
                return Poll::Ready(request.refuse(rejection));
            }
        };
        // The account is the validator's own (`Validator::account_sid`, which `AccountMap`
        // sets), never the request's unverified claim.
        let verdict = check(
            &request.parts,
            &request.bytes,
            validator.as_deref(),
            &request.shared,
        );
        Poll::Ready(request.after_verdict(verdict))
    }

    /// The store's answer to a claim.
    fn claim(
        claim: Pin<&mut Bounded<Claim>>,
        claimant: &mut Option<Claimant<S, R>>,
        cx: &mut Context<'_>,
    ) -> Poll<StepOf<S, B, R, ResBody>> {
        let outcome = ready!(claim.poll(cx));
        let claimant = claimant
            .take()
            .expect("the Claiming state is left as soon as the claim ends");
        let outcome = outcome.unwrap_or_else(|elapsed| Err(Box::new(elapsed)));
        Poll::Ready(claimant.claimed(outcome))
    }

    /// A copy waiting for the one in progress: after the pause, it asks again.
    fn wait(
        pause: Pin<&mut Sleep>,
        claimant: &mut Option<Claimant<S, R>>,
        cx: &mut Context<'_>,
    ) -> Poll<StepOf<S, B, R, ResBody>> {
        ready!(pause.poll(cx));
        let claimant = claimant
            .take()
            .expect("the Waiting state is left as soon as the pause ends");
        Poll::Ready(Step::Next(State::Claiming {
            claim: claimant.held.claim(),
            claimant: Some(claimant),
        }))
    }

    /// The handler runs (its lease renewed); its answer completes or releases the claim.
    fn call(
        future: Pin<&mut S::Future>,
        guarded: &mut Option<Guarded<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<StepOf<S, B, R, ResBody>> {
        if let Some(guarded) = guarded {
            guarded.poll_renewal(cx);
        }
        let response = match ready!(future.poll(cx)) {
            Ok(response) => response,
            // Dropping the claim releases it: the re-send will be handled.
            Err(error) => return Poll::Ready(Step::Done(Err(error))),
        };
        let Some(mut guarded) = guarded.take() else {
            return Poll::Ready(Step::Done(Ok(inner_answer(response))));
        };
        guarded.renew_at = None;
        guarded.renewing = None;
        // Awaited before answering: a copy waiting for this one learns the outcome from the
        // store, and Twilio's re-send finds the key free (released) or handled (completed).
        Poll::Ready(Step::Next(if response.status().is_success() {
            State::Completing {
                complete: guarded.held.complete(),
                guarded: Some(guarded),
                response: Some(response),
            }
        } else {
            State::Releasing {
                release: guarded.held.release(),
                guarded: Some(guarded),
                response: Some(response),
            }
        }))
    }

    /// The handler's answer, once the store has kept its claim as handled.
    fn complete(
        complete: Pin<&mut Bounded<bool>>,
        guarded: &mut Option<Guarded<R>>,
        response: &mut Option<S::Response>,
        cx: &mut Context<'_>,
    ) -> Poll<StepOf<S, B, R, ResBody>> {
        let outcome = ready!(complete.poll(cx));
        Poll::Ready(Self::settled(
            guarded,
            response,
            "a handled webhook's claim could not be completed yet: tried again until its lease \
             ends",
            outcome,
        ))
    }

    /// The handler's answer, once the store has released its claim.
    fn release(
        release: Pin<&mut Bounded<()>>,
        guarded: &mut Option<Guarded<R>>,
        response: &mut Option<S::Response>,
        cx: &mut Context<'_>,
    ) -> Poll<StepOf<S, B, R, ResBody>> {
        let outcome = ready!(release.poll(cx));
        Poll::Ready(Self::settled(
            guarded,
            response,
            "a release failed: the claim's lease ends it",
            outcome.map(|released| released.map(|()| true)),
        ))
    }

    /// The handler's answer, its claim settled by the store (`outcome`; `what` says what a
    /// failure means).
    fn settled(
        guarded: &mut Option<Guarded<R>>,
        response: &mut Option<S::Response>,
        what: &str,
        outcome: Result<Result<bool, StoreError>, Elapsed>,
    ) -> StepOf<S, B, R, ResBody> {
        if let Some(guarded) = guarded.take() {
            guarded.settled(what, outcome);
        }
        let response = response.take().expect("polled after completion");
        Step::Done(Ok(inner_answer(response)))
    }
}

impl<S, B, R, ResBody> Future for ResponseFuture<S, B, R>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
    R: RejectionResponse,
{
    type Output = Output<S, ResBody>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let step = match state.as_mut().project() {
                StateProj::Reading {
                    body,
                    parts,
                    inner,
                    shared,
                } => ready!(Self::read(body, parts, inner, shared, cx)),
                StateProj::LookingUp { lookup, request } => {
                    ready!(Self::look_up(lookup, request, cx))
                }
                StateProj::Claiming { claim, claimant } => ready!(Self::claim(claim, claimant, cx)),
                StateProj::Waiting { pause, claimant } => ready!(Self::wait(pause, claimant, cx)),
                StateProj::Calling { future, guarded } => ready!(Self::call(future, guarded, cx)),
                StateProj::Completing {
                    complete,
                    guarded,
                    response,
                } => ready!(Self::complete(complete, guarded, response, cx)),
                StateProj::Releasing {
                    release,
                    guarded,
                    response,
                } => ready!(Self::release(release, guarded, response, cx)),
                StateProj::Refused { response } => {
                    let response = response.take().expect("polled after completion");
                    Step::Done(Ok(layer_answer(response)))
                }
            };
            match step {
                Step::Next(next) => state.set(next),
                Step::Done(output) => return Poll::Ready(output),
            }
        }
    }
}
