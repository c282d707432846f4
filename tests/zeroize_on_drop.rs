//! The plaintext token and hashing keys are wiped when they are dropped.
//! This test binary's global allocator inspects every heap block as it is
//! freed; once armed, it must never see the secret in freed memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use api_tokens::{
    Actor, ActorId, HashKey, IssueRequest, KeyId, Keyring, MemoryStore, OrganizationId, Role,
    Scope, TokenFormat, TokenService,
};

const SECRET_LEN: usize = 43;
const SECRET_AT: usize = "acmeo_".len() + 11;

/// The bytes looked for: the first `NEEDLE_LEN` of `NEEDLE`.
static NEEDLE: [AtomicU8; SECRET_LEN] = [const { AtomicU8::new(0) }; SECRET_LEN];
static NEEDLE_LEN: AtomicUsize = AtomicUsize::new(SECRET_LEN);
/// The tests share the allocator's needle: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
static ARMED: AtomicBool = AtomicBool::new(false);
static FREED_WITH_SECRET: AtomicUsize = AtomicUsize::new(0);

struct InspectingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; `dealloc`
// only reads the block it is about to free.
unsafe impl GlobalAlloc for InspectingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let len = NEEDLE_LEN.load(Ordering::SeqCst);
        if ARMED.load(Ordering::SeqCst) && layout.size() >= len {
            let needle: [u8; SECRET_LEN] =
                std::array::from_fn(|i| NEEDLE[i].load(Ordering::SeqCst));
            let needle = &needle[..len];
            // SAFETY: `ptr` is a live block of `layout.size()` bytes until the
            // call below. (Bytes never written are read as whatever is there;
            // the system allocator hands out ordinary memory.)
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if block.windows(len).any(|window| window == needle) {
                FREED_WITH_SECRET.fetch_add(1, Ordering::SeqCst);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: InspectingAllocator = InspectingAllocator;

/// Looks for `secret` in freed blocks from now on.
fn look_for(secret: &[u8]) {
    for (slot, &byte) in NEEDLE.iter().zip(secret) {
        slot.store(byte, Ordering::SeqCst);
    }
    NEEDLE_LEN.store(secret.len(), Ordering::SeqCst);
}

/// Runs `drop_it` with the inspection armed; returns how many freed blocks
/// held the secret.
fn freed_blocks_holding_secret(drop_it: impl FnOnce()) -> usize {
    FREED_WITH_SECRET.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    drop_it();
    ARMED.store(false, Ordering::SeqCst);
    FREED_WITH_SECRET.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "current_thread")]
async fn the_plaintext_token_is_wiped_when_dropped() {
    let org = Scope::organization(OrganizationId::new("acme").unwrap());
    let admin = Actor::new(ActorId::new("alice").unwrap()).with_grant(org.clone(), Role::Admin);
    let service = TokenService::new(
        TokenFormat::new("acme").unwrap(),
        Keyring::new(KeyId::new(1), HashKey::generate().unwrap()),
        Arc::new(MemoryStore::new()),
    );
    let issued = service
        .issue(&admin, IssueRequest::new(org, "ci"))
        .await
        .unwrap();

    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let secret = &issued.token.expose_secret().as_bytes()[SECRET_AT..SECRET_AT + SECRET_LEN];
    look_for(secret);

    // The detector works: an ordinary heap copy of the secret is seen when freed.
    let ordinary_copy = secret.to_vec();
    assert_eq!(freed_blocks_holding_secret(|| drop(ordinary_copy)), 1);

    // The token's own memory holds no secret by the time it is freed.
    assert_eq!(freed_blocks_holding_secret(|| drop(issued)), 0);
}

#[test]
fn hashing_keys_are_wiped_when_dropped() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Key material as a service decodes it, in a buffer that wipes itself.
    let material = zeroize::Zeroizing::new(std::array::from_fn::<u8, 32, _>(|i| 0xA0 ^ i as u8));
    look_for(&material[..]);
    let keys = Keyring::from_keys([
        (KeyId::new(1), HashKey::from_bytes(&material)),
        (KeyId::new(2), HashKey::generate().unwrap()),
    ])
    .unwrap();

    // The detector works: an ordinary heap copy of the key is seen when freed.
    let ordinary_copy = material.to_vec();
    assert_eq!(freed_blocks_holding_secret(|| drop(ordinary_copy)), 1);

    // Neither the caller's boxed buffer nor the keyring's key leaves the
    // bytes behind in freed memory.
    let boxed = Box::new(material);
    assert_eq!(freed_blocks_holding_secret(|| drop(boxed)), 0);
    assert_eq!(freed_blocks_holding_secret(|| drop(keys)), 0);
}
