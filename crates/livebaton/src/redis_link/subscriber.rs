//! The subscriber loop every Redis subscription runs: deliver each message, `PING` the connection every
//! `ping_interval` so that a silently dead one is noticed, and after a lost connection subscribe again with backoff.
//! What a message means, and what must happen after resubscribing, is the [`Listener`]'s.

use std::future::Future;

use ::redis::aio::{PubSubSink, PubSubStream};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

use super::{Link, LinkConfig, within};

/// A connection subscribed to a channel, with the timer of its pings.
pub(crate) struct Subscription {
    sink: PubSubSink,
    stream: PubSubStream,
    ping: Interval,
}

impl Subscription {
    pub(super) fn new(sink: PubSubSink, stream: PubSubStream, config: &LinkConfig) -> Self {
        let start = tokio::time::Instant::now() + config.ping_interval;
        let mut ping = tokio::time::interval_at(start, config.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Subscription { sink, stream, ping }
    }
}

/// What a listener tells the loop after handling something.
pub(crate) enum Flow {
    /// Go on serving the connection.
    Continue,
    /// Stop for good: whoever the listener delivers to is gone.
    Stop,
    /// Treat the connection as lost (subscribe again and resync), for this reason.
    Lost(String),
}

/// What a subscriber does with its subscription. The loop calls it from one task, one call at a time.
pub(crate) trait Listener: Send + Sync {
    /// Work besides messages that the listener waits for, e.g. reload requests.
    type Chore: Send;

    /// Waits for the next chore. Must be cancel-safe: the loop drops it whenever a message comes first. By default
    /// there is never one.
    fn next_chore(&mut self) -> impl Future<Output = Self::Chore> + Send {
        std::future::pending()
    }

    /// Does a chore.
    fn do_chore(&mut self, chore: Self::Chore) -> impl Future<Output = Flow> + Send {
        drop(chore);
        async { Flow::Continue }
    }

    /// Handles one message of the channel.
    fn on_message(&mut self, payload: &[u8]) -> impl Future<Output = Flow> + Send;

    /// Whether the subscription is still wanted; asked before every ping (false stops the loop).
    fn is_wanted(&self) -> bool;

    /// Called on every new connection, after it subscribed and before it is served: whatever was missed while
    /// unsubscribed must be caught up on here. An error counts as a failed attempt to reconnect.
    fn resubscribed(&self) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }

    /// The subscription was lost after `reconnects` resubscriptions (the loop logs why).
    fn lost(&mut self, reconnects: u64);

    /// The subscription was made again: `reconnects` resubscriptions so far.
    fn reconnected(&mut self, reconnects: u64);

    /// The loop stopped, after `reconnects` resubscriptions.
    fn stopped(&mut self, reconnects: u64);
}

/// Why the loop stopped serving one connection.
enum Ended {
    Stop,
    Lost(String),
}

/// Serves `subscription` (on `channel`, made with `link`) with `listener` until `stopped` changes, its sender is
/// dropped or the listener stops it, subscribing again with backoff whenever the connection is lost. `node` names the
/// subscriber in logs.
pub(crate) async fn listen<L: Listener>(
    link: &Link,
    node: &str,
    channel: &str,
    mut subscription: Subscription,
    mut listener: L,
    mut stopped: watch::Receiver<bool>,
) {
    let mut reconnects = 0;
    loop {
        let reason = match serve(link.config(), &mut subscription, &mut listener, &mut stopped).await {
            Ended::Stop => break,
            Ended::Lost(reason) => reason,
        };
        listener.lost(reconnects);
        tracing::warn!(node, redis = %link.redis(), channel, %reason, "lost the Redis subscription; reconnecting");
        let resubscribe = {
            let listener = &listener;
            link.reconnect(node, "subscriber", &mut stopped, move || async move {
                let subscription = link.subscribe(channel).await.map_err(|error| error.to_string())?;
                listener.resubscribed().await?;
                Ok::<_, String>(subscription)
            })
            .await
        };
        match resubscribe {
            Some(new) => {
                subscription = new;
                reconnects += 1;
                listener.reconnected(reconnects);
            }
            None => break,
        }
    }
    listener.stopped(reconnects);
    tracing::debug!(node, channel, "Redis subscriber stopped");
}

/// Serves one subscribed connection until it is lost or no longer needed.
async fn serve<L: Listener>(
    config: &LinkConfig,
    subscription: &mut Subscription,
    listener: &mut L,
    stopped: &mut watch::Receiver<bool>,
) -> Ended {
    loop {
        let flow = tokio::select! {
            biased;
            _ = stopped.changed() => return Ended::Stop,
            chore = listener.next_chore() => listener.do_chore(chore).await,
            message = subscription.stream.next() => match message {
                Some(message) => listener.on_message(message.get_payload_bytes()).await,
                None => Flow::Lost("connection closed".to_owned()),
            },
            _ = subscription.ping.tick() => {
                if !listener.is_wanted() {
                    return Ended::Stop;
                }
                match within(config.command_timeout, subscription.sink.ping::<::redis::Value>()).await {
                    Ok(_) => Flow::Continue,
                    Err(error) => Flow::Lost(format!("PING failed: {error}")),
                }
            }
        };
        match flow {
            Flow::Continue => {}
            Flow::Stop => return Ended::Stop,
            Flow::Lost(reason) => return Ended::Lost(reason),
        }
    }
}
