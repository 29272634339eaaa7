//! `validate_body` on a typical webhook makes no heap allocation.
//!
//! A counting global allocator sees every allocation in this test binary; the counted section
//! runs on one thread and the counter is per-thread, so the test harness does not disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use twilio_webhook::{Validator, compute_signature};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// The inbound-SMS webhook Twilio sends: 20 parameters, ~560 bytes.
fn sms(extra: usize) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", "SM8d2f4a6c9e1b3d5f7a9c2e4b6d8f0a1c"),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
        ("SmsSid", "SM8d2f4a6c9e1b3d5f7a9c2e4b6d8f0a1c"),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", "Hello from Twilio! Reply STOP to opt out. café ☕"),
        ("FromCountry", "US"),
        ("To", "+14155550100"),
        ("MessagingServiceSid", "MG1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b"),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", "SM8d2f4a6c9e1b3d5f7a9c2e4b6d8f0a1c"),
        ("AccountSid", "AC3f9a7c2e5b8d1f4a6c9e2b5d8f1a4c7e"),
        ("From", "+14155550123"),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for i in 0..extra {
        params.push((
            format!("MediaUrl{i}"),
            format!("https://api.twilio.com/m/{i}"),
        ));
    }
    params
}

fn form_body(params: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

#[test]
fn validate_body_allocates_nothing_for_an_sms_webhook_up_to_64_params() {
    let validator = Validator::new("7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60");
    let url = "https://api.example.com/twilio/sms?route=main";
    for extra in [0, 12, 44] {
        let params = sms(extra);
        let body = form_body(&params);
        let good = compute_signature("7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60", url, &params);
        let bad = compute_signature("another", url, &params);
        let form = Some("application/x-www-form-urlencoded");

        let mut verdict = Err(twilio_webhook::ValidationError::MissingSignature);
        let n = allocations_during(|| {
            verdict = validator.validate_body(url, form, body.as_bytes(), &good)
        });
        assert_eq!(verdict, Ok(()));
        assert_eq!(n, 0, "valid, {} params", params.len());

        let n = allocations_during(|| {
            verdict = validator.validate_body(url, form, body.as_bytes(), &bad)
        });
        assert!(verdict.is_err());
        assert_eq!(n, 0, "rejected, {} params", params.len());

        let n = allocations_during(|| verdict = validator.validate(url, &params, &good));
        assert_eq!(verdict, Ok(()));
        assert_eq!(n, 0, "validate, {} params", params.len());
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);
}
