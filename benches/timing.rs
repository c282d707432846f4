//! Does the time `verify` takes tell anything about a token? A dudect-style
//! test (Reparaz, Balasch, Verbauwhede, "Dude, is my code constant time?"):
//! time `verify` on inputs of two classes, interleaved at random, and run
//! Welch's t-test on the two sets of timings. |t| above 4.5 means the classes
//! can be told apart by timing alone; below it, this many samples found no
//! difference.
//!
//! `cargo bench --bench timing` runs each pair below at a store of 1K tokens
//! (all in cache: only the instructions differ) and of 1M tokens (far beyond
//! the caches: memory traffic shows too):
//!
//! - `secret_first` vs `secret_last`: a known id with a wrong secret,
//!   differing from the real one in its first or in its last character;
//! - the digest comparison alone, a digest against one differing in its
//!   first or in its last byte: a wrong secret compares unrelated digests,
//!   so only this shows a comparison that stops at the first difference;
//! - `unknown_id` vs `wrong_secret`: an id that does not exist vs a known id
//!   with a wrong secret.
//!
//! Each class draws its token from a pool of 64K spread over the store. As
//! dudect does, the test is also run on the fastest timings only (cropped at
//! several percentiles, which removes interrupts and other noise), and the
//! largest |t| is reported. `DUDECT_SAMPLES` sets the samples per class
//! (default 2,000,000). It is statistical and slow, so it runs here and never
//! in the test command.

mod support;

use std::hint::black_box;
use std::time::Instant;

use std::sync::Arc;

use api_tokens::testing::ManualClock;
use api_tokens::{Digest, IssueRequest, MemoryStore, TokenService};
use subtle::ConstantTimeEq;
use time::macros::datetime;

use support::*;

/// Timings above these percentiles are dropped in the cropped tests.
const CROPS: [f64; 5] = [0.50, 0.75, 0.90, 0.95, 0.99];
/// Tokens per class pool.
const POOL: usize = 1 << 16;
/// |t| above this: the classes are told apart.
const THRESHOLD: f64 = 4.5;

/// Welford's running mean and variance.
#[derive(Clone, Copy, Default)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn add(&mut self, x: f64) {
        self.n += 1.0;
        let delta = x - self.mean;
        self.mean += delta / self.n;
        self.m2 += delta * (x - self.mean);
    }

    fn variance(&self) -> f64 {
        self.m2 / (self.n - 1.0)
    }
}

/// Welch's t statistic of two samples.
fn welch_t(a: &Moments, b: &Moments) -> f64 {
    (a.mean - b.mean) / (a.variance() / a.n + b.variance() / b.n).sqrt()
}

/// A tiny deterministic generator for the class schedule and pool picks.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A service over `size` tokens and `POOL` of their texts, spread over the
/// store.
fn fixture(size: usize) -> (TokenService, Vec<String>) {
    let clock = ManualClock::new(datetime!(2030-01-01 00:00 UTC));
    let service = service(Arc::new(MemoryStore::new()), &clock);
    let admins = admins();
    let keep_one_in = (size / POOL).max(1);
    let mut kept = Vec::new();
    for i in 0..size {
        let request = IssueRequest::new(scope_of(i), format!("token {i:014}"));
        let issued = ready(service.issue(&admins[i % 1000], request)).unwrap();
        if i % keep_one_in == 0 {
            kept.push(issued.token.expose_secret().to_owned());
        }
    }
    shuffle(&mut kept);
    (service, kept)
}

/// Times `verify` on tokens of two classes (class 0 from `a`, 1 from `b`).
fn verify_pair(service: &TokenService, a: &[String], b: &[String], samples: usize) -> Verdict {
    // Every token is copied to the same place before it is timed, so where a
    // pool happens to sit in memory cannot tell the classes apart.
    let mut buffer = String::with_capacity(TOKEN_LEN);
    compare(samples, |class, random| {
        let pool = [a, b][class];
        buffer.clear();
        buffer.push_str(&pool[random.next() as usize % pool.len()]);
        let started = Instant::now();
        let result = ready(service.verify(black_box(&buffer)));
        let elapsed = started.elapsed().as_nanos() as f64;
        assert!(result.is_err(), "every class holds failing tokens");
        elapsed
    })
}

/// Times the digest comparison itself: a digest against one differing in
/// its first byte (class 0) or in its last (class 1). Tokens with a wrong
/// secret compare unrelated digests, so only this shows whether the
/// comparison stops at the first difference. Each timing covers `COMPARES`
/// comparisons, so neither the clock's cost nor its granularity drowns them.
fn digest_pair(samples: usize) -> Verdict {
    const COMPARES: usize = 1024;
    let digest = *blake3::keyed_hash(&KEY, b"a token's id and secret").as_bytes();
    let differing = |byte: usize| {
        let mut other = digest;
        other[byte] ^= 1;
        Digest::from_bytes(other)
    };
    let digest = Digest::from_bytes(digest);
    // Each class's digest on a cache line of its own: a copy from a slot
    // that straddled two lines would be slower for one class alone.
    #[repr(align(64))]
    struct Line(Digest);
    let classes = [Line(differing(0)), Line(differing(31))];
    // As with tokens, the digest compared sits in the same place for both
    // classes.
    let mut other = Box::new(Line(digest));
    compare(samples, |class, _| {
        other.0 = classes[class].0;
        let started = Instant::now();
        for _ in 0..COMPARES {
            black_box(black_box(&digest).ct_eq(black_box(&other.0)));
        }
        started.elapsed().as_nanos() as f64
    })
}

/// What a pair's timings showed: the largest |t| over the raw and cropped
/// tests, the crop that gave it, and each class's median.
struct Verdict {
    t: f64,
    crop: String,
    medians: [f64; 2],
}

/// Takes `samples` timings of each class, in random order, and returns the
/// largest |t| over the raw and cropped tests, with the crop that gave it.
fn compare(samples: usize, mut time_one: impl FnMut(usize, &mut XorShift) -> f64) -> Verdict {
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);

    // Warm up, and learn the crop thresholds from timings of both classes.
    let mut warm: Vec<f64> = (0..20_000).map(|n| time_one(n % 2, &mut random)).collect();
    warm.sort_by(f64::total_cmp);
    let limits: Vec<f64> = CROPS
        .iter()
        .map(|p| warm[((warm.len() as f64) * p) as usize])
        .collect();

    // [test][class]: test 0 takes every timing, test i+1 those below limits[i].
    let mut moments = vec![[Moments::default(); 2]; 1 + CROPS.len()];
    // Each class's timings, for its median (a few MB at the default count).
    let mut timings: [Vec<f64>; 2] = [Vec::with_capacity(samples), Vec::with_capacity(samples)];
    let (mut left_a, mut left_b) = (samples, samples);
    while left_a + left_b > 0 {
        let class = if left_b == 0 || (left_a > 0 && random.next() & 1 == 0) {
            left_a -= 1;
            0
        } else {
            left_b -= 1;
            1
        };
        let elapsed = time_one(class, &mut random);
        timings[class].push(elapsed);
        moments[0][class].add(elapsed);
        for (limit, test) in limits.iter().zip(&mut moments[1..]) {
            if elapsed < *limit {
                test[class].add(elapsed);
            }
        }
    }

    if std::env::var_os("DUDECT_VERBOSE").is_some() {
        let all = std::iter::once(&f64::INFINITY).chain(&limits);
        for (test, limit) in moments.iter().zip(all) {
            eprintln!(
                "  below {limit:.0} ns: means {:.2} / {:.2} ns, t = {:.2}",
                test[0].mean,
                test[1].mean,
                welch_t(&test[0], &test[1])
            );
        }
    }
    let names =
        std::iter::once("all".to_owned()).chain(CROPS.iter().map(|p| format!("< p{}", p * 100.0)));
    let (t, crop) = moments
        .iter()
        .zip(names)
        .map(|(test, name)| (welch_t(&test[0], &test[1]).abs(), name))
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .expect("at least one test");
    let medians = timings.map(|mut class| {
        class.sort_by(f64::total_cmp);
        class[class.len() / 2]
    });
    Verdict { t, crop, medians }
}

fn main() {
    let samples = std::env::var("DUDECT_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000_000);
    println!("dudect: Welch's t-test over {samples} timings per class; |t| < {THRESHOLD} passes\n");
    println!("CPU: {}\n", cpu_model());
    println!("| store | pair (a vs b) | max abs(t) | at | verdict | median a / b | a ÷ b |");
    println!("|---|---|---|---|---|---|---|");
    let print = |store: &str, pair: &str, verdict: Verdict| {
        let Verdict { t, crop, medians } = verdict;
        let pass = if t < THRESHOLD { "pass" } else { "FAIL" };
        let [a, b] = medians;
        println!(
            "| {store} | {pair} | {t:.2} | {crop} | {pass} | {a:.1} / {b:.1} ns | {:.3} |",
            a / b
        );
    };
    print(
        "—",
        "digest compare: first vs last byte differs",
        digest_pair(samples),
    );
    for (size, label) in [(1_000, "1K"), (1_000_000, "1M")] {
        let (service, tokens) = fixture(size);
        let last_secret_char = CHECKSUM_AT - 1;
        let secret_first: Vec<String> = tokens.iter().map(|t| altered(t, SECRET_AT)).collect();
        let secret_last: Vec<String> = tokens
            .iter()
            .map(|t| altered(t, last_secret_char))
            .collect();
        // The last id character: a random place in the store (see verify.rs).
        let unknown_id: Vec<String> = tokens.iter().map(|t| altered(t, SECRET_AT - 1)).collect();
        for (pair, a, b) in [
            ("secret_first vs secret_last", &secret_first, &secret_last),
            ("unknown_id vs wrong_secret", &unknown_id, &secret_last),
        ] {
            print(label, pair, verify_pair(&service, a, b, samples));
        }
    }
}
