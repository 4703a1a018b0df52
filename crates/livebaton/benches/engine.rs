//! Engine benchmarks: the cost of presence and PubSub at 10,000 entries or subscribers on one topic, for comparison
//! with Phoenix.Presence (see `BENCHMARKS.md` at the workspace root for the reference numbers and the latest results).
//!
//! - `presence/track_10k`: track 10,000 distinct keys (meta `{"user_id": i}`) on one topic of a fresh tracker.
//! - `presence/list_10k`: `Presence::list` of a topic with 10,000 entries (building and dropping the list).
//! - `presence/untrack_10k`: `TrackGuard::leave` on all 10,000 entries of a topic.
//! - `presence/subscriber_receives_10k_joins`: from the first `track` until one concurrently draining subscriber has
//!   received all 10,000 joins (Phoenix's "a subscriber receives all 10k join diffs").
//! - `presence/diff_fanout_10k_subscribers`: one `track` plus each of 10,000 subscribers receiving its diff.
//! - `pubsub/broadcast_10k_subscribers`: one `PubSub::broadcast` plus each of 10,000 subscribers receiving it.
//!
//! Only the operation is timed (`iter_custom`): building trackers, keys and metas, subscribing, and tearing down
//! afterwards are not. Trackers use `leave_grace = 0` and no coalescing, so every change is applied and published at
//! once. Samples are few (10 per benchmark, ~4 s of measurement each) so the whole run takes a few minutes.
//!
//! Run (release build) from the workspace root:
//!
//! ```text
//! cargo bench -p livebaton --bench engine                  # everything
//! cargo bench -p livebaton --bench engine -- presence/list # one benchmark (criterion's name filter)
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use livebaton::presence::{Meta, Presence, PresenceConfig, PresenceDiff, TrackGuard};
use livebaton::pubsub::{Broadcast, JsonMessage, PubSub, PubSubConfig, Subscription};
use tokio::runtime::{Builder, Runtime};

/// Entries or subscribers per benchmark.
const N: usize = 10_000;
const TOPIC: &str = "bench:room";

fn current_thread_runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// A tracker with no leave grace and no coalescing. Must be called inside a Tokio runtime.
fn new_presence(pubsub: PubSubConfig) -> Presence {
    Presence::new(
        PubSub::new(pubsub),
        PresenceConfig { leave_grace: Duration::ZERO, coalesce_window: Duration::ZERO, ..Default::default() },
    )
}

fn keys() -> Vec<String> {
    (0..N).map(|i| format!("user:{i}")).collect()
}

fn meta(i: usize) -> Meta {
    let mut meta = Meta::new();
    meta.insert("user_id".to_owned(), i.into());
    meta
}

fn metas() -> Vec<Meta> {
    (0..N).map(meta).collect()
}

/// Tracks `keys[i]` with `metas[i]` on [`TOPIC`], in order.
async fn track_all(presence: &Presence, keys: &[String], metas: Vec<Meta>) -> Vec<TrackGuard> {
    let mut guards = Vec::with_capacity(keys.len());
    for (key, meta) in keys.iter().zip(metas) {
        guards.push(presence.track(TOPIC, key, meta).await.expect("the local roster never fails"));
    }
    guards
}

/// Joined metas in a presence diff (0 for any other message).
fn joins_in(broadcast: &Broadcast) -> usize {
    broadcast.downcast::<PresenceDiff>().map_or(0, |diff| diff.joins.meta_count())
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    // Each iteration is milliseconds long: flat sampling keeps the iteration count (and so the untimed setup) small.
    group.sampling_mode(SamplingMode::Flat);
}

fn presence_benches(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("presence");
    configure(&mut group);

    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("track_10k", |b| {
        let rt = current_thread_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let presence = new_presence(PubSubConfig::default());
                    let metas = metas();
                    let start = Instant::now();
                    let guards = track_all(&presence, &keys, metas).await;
                    total += start.elapsed();
                    assert_eq!(presence.count(TOPIC), N);
                    drop(guards);
                }
                total
            })
        });
    });

    group.bench_function("list_10k", |b| {
        let rt = current_thread_runtime();
        let _enter = rt.enter();
        let presence = new_presence(PubSubConfig::default());
        let guards = rt.block_on(track_all(&presence, &keys, metas()));
        assert_eq!(presence.list(TOPIC).len(), N);
        // Plain `iter`: dropping the returned list (10,000 keys) is timed too, as a caller would pay for it.
        b.iter(|| presence.list(black_box(TOPIC)));
        drop(guards);
    });

    group.bench_function("untrack_10k", |b| {
        let rt = current_thread_runtime();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (presence, guards) = rt.block_on(async {
                    let presence = new_presence(PubSubConfig::default());
                    let guards = track_all(&presence, &keys, metas()).await;
                    (presence, guards)
                });
                let start = Instant::now();
                for guard in guards {
                    guard.leave();
                }
                total += start.elapsed();
                assert_eq!(presence.count(TOPIC), 0);
            }
            total
        });
    });

    group.bench_function("subscriber_receives_10k_joins", |b| {
        // Two workers: the subscriber drains on a worker while `block_on`'s thread tracks.
        let rt = Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Every join is its own diff, and the tracker does not wait for subscribers: the topic's ring
                    // must hold all 10,000 (16384 slots) so a subscriber that falls behind never lags. With the
                    // default 128 it would lag and have to re-read the list, which is not what this measures.
                    let presence = new_presence(PubSubConfig { topic_capacity: 16_384 });
                    let mut subscription = presence.subscribe(TOPIC);
                    let drain = tokio::spawn(async move {
                        let mut joins = 0;
                        while joins < N {
                            let broadcast = subscription.recv().await.expect("the subscriber must not lag");
                            joins += joins_in(&broadcast);
                        }
                        Instant::now()
                    });
                    let metas = metas();
                    let start = Instant::now();
                    let guards = track_all(&presence, &keys, metas).await;
                    let received_all = drain.await.expect("subscriber task");
                    total += received_all.duration_since(start);
                    // The subscription ended with its task, so these leaves publish nothing.
                    drop(guards);
                }
                total
            })
        });
    });

    group.bench_function("diff_fanout_10k_subscribers", |b| {
        let rt = current_thread_runtime();
        let _enter = rt.enter();
        let presence = new_presence(PubSubConfig::default());
        let mut subscriptions: Vec<Subscription> = (0..N).map(|_| presence.subscribe(TOPIC)).collect();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let meta = meta(i as usize);
                    let start = Instant::now();
                    let guard = presence.track(TOPIC, "user:fanout", meta).await.expect("the local roster never fails");
                    let mut joins = 0;
                    for subscription in &mut subscriptions {
                        let broadcast = subscription.try_recv().expect("no lag").expect("the diff is waiting");
                        joins += joins_in(&broadcast);
                    }
                    total += start.elapsed();
                    assert_eq!(joins, N);
                    // Untimed: leave and let every subscriber consume the leave diff, so the next round starts empty.
                    guard.leave();
                    for subscription in &mut subscriptions {
                        subscription.try_recv().expect("no lag").expect("the leave diff is waiting");
                    }
                }
                total
            })
        });
    });

    group.finish();
}

fn pubsub_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("pubsub");
    configure(&mut group);
    group.throughput(Throughput::Elements(N as u64));

    group.bench_function("broadcast_10k_subscribers", |b| {
        let pubsub = PubSub::default();
        let mut subscriptions: Vec<Subscription> = (0..N).map(|_| pubsub.subscribe(TOPIC)).collect();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let message = JsonMessage::new("ping", serde_json::json!({ "n": i}));
                let start = Instant::now();
                let delivered = pubsub.broadcast(TOPIC, message).expect("local backend never fails");
                for subscription in &mut subscriptions {
                    let broadcast = subscription.try_recv().expect("no lag").expect("the message is waiting");
                    black_box(&broadcast);
                }
                total += start.elapsed();
                assert_eq!(delivered, N);
            }
            total
        });
    });

    group.finish();
}

criterion_group!(benches, presence_benches, pubsub_benches);
criterion_main!(benches);
