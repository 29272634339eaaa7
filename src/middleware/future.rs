//! `ResponseFuture`: read the body, check it, then call the inner service or refuse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use http_body_util::combinators::Collect;
use http_body_util::{Full, LengthLimitError, Limited};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::BoxError;
use super::layer::Shared;
use super::response::{Rejection, RejectionResponse};
use super::service::{Unverified, check};

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
            body: Collect<Limited<B>>,
            parts: Option<Parts>,
            inner: Option<S>,
            shared: Arc<Shared<R>>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Refused {
            response: Option<S::Response>,
        },
    }
}

impl<S, B, R, ResBody> ResponseFuture<S, B, R>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
    R: RejectionResponse<ResBody>,
{
    pub(crate) fn reading(
        parts: Parts,
        body: Collect<Limited<B>>,
        inner: S,
        shared: Arc<Shared<R>>,
    ) -> Self {
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

/// The rejection response, with the reason in its extensions for outer layers.
fn respond<R: RejectionResponse<ResBody>, ResBody>(
    shared: &Shared<R>,
    rejection: Rejection,
) -> Response<ResBody> {
    let mut response = shared.rejection.response(&rejection);
    if let Rejection::Invalid(error) = &rejection {
        response.extensions_mut().insert(error.clone());
    }
    response.extensions_mut().insert(rejection);
    response
}

impl<S, B, R, ResBody> Future for ResponseFuture<S, B, R>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
    R: RejectionResponse<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

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
                    let bytes = match collected {
                        Ok(collected) => collected.to_bytes(),
                        Err(error) => {
                            let rejection = if error.is::<LengthLimitError>() {
                                Rejection::PayloadTooLarge {
                                    limit: shared.body_limit,
                                }
                            } else {
                                Rejection::BodyUnreadable
                            };
                            tracing::warn!(
                                target: "twilio_webhook",
                                reason = %rejection,
                                "rejected Twilio webhook"
                            );
                            return Poll::Ready(Ok(respond(&shared, rejection)));
                        }
                    };
                    let (Some(mut parts), Some(mut inner)) = (parts.take(), inner.take()) else {
                        unreachable!("the Reading state is left as soon as the body is read")
                    };
                    match check(&parts, &bytes, &shared) {
                        Ok(verified) => {
                            parts.extensions.insert(verified);
                        }
                        Err(error) if shared.report_only => {
                            parts.extensions.insert(Unverified(error));
                        }
                        Err(error) => {
                            return Poll::Ready(Ok(respond(&shared, Rejection::Invalid(error))));
                        }
                    }
                    let request = Request::from_parts(parts, Full::new(bytes));
                    let future = inner.call(request);
                    state.set(State::Calling { future });
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Refused { response } => {
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}
