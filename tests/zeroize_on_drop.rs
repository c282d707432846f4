//! The plaintext token is wiped when it is dropped. This test binary's global
//! allocator inspects every heap block as it is freed; once armed, it must
//! never see the token's secret in freed memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use api_tokens::{
    Actor, ActorId, HashKey, IssueRequest, KeyId, Keyring, MemoryStore, OrganizationId, Role,
    Scope, TokenFormat, TokenService,
};

const SECRET_LEN: usize = 43;
const SECRET_AT: usize = "acmeo_".len() + 11;

static NEEDLE: [AtomicU8; SECRET_LEN] = [const { AtomicU8::new(0) }; SECRET_LEN];
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
        if ARMED.load(Ordering::SeqCst) && layout.size() >= SECRET_LEN {
            let needle: [u8; SECRET_LEN] =
                std::array::from_fn(|i| NEEDLE[i].load(Ordering::SeqCst));
            // SAFETY: `ptr` is a live block of `layout.size()` bytes until the
            // call below. (Bytes never written are read as whatever is there;
            // the system allocator hands out ordinary memory.)
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if block.windows(SECRET_LEN).any(|window| window == needle) {
                FREED_WITH_SECRET.fetch_add(1, Ordering::SeqCst);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: InspectingAllocator = InspectingAllocator;

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

    let secret = &issued.token.expose_secret().as_bytes()[SECRET_AT..SECRET_AT + SECRET_LEN];
    for (slot, &byte) in NEEDLE.iter().zip(secret) {
        slot.store(byte, Ordering::SeqCst);
    }

    // The detector works: an ordinary heap copy of the secret is seen when freed.
    let ordinary_copy = secret.to_vec();
    assert_eq!(freed_blocks_holding_secret(|| drop(ordinary_copy)), 1);

    // The token's own memory holds no secret by the time it is freed.
    assert_eq!(freed_blocks_holding_secret(|| drop(issued)), 0);
}
