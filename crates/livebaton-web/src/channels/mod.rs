//! Channels that need nothing but the engine: `room:*` with presence, and the engine's resource events. Channels of
//! an application's own (its editing sessions, its rules for who may listen) live with the application.

mod events;
mod room;

pub use events::{EventsRoute, ListenOnly};
pub use room::RoomRoute;

use livebaton::presence::{PresenceDiff, PresenceList};

use crate::channel::Pusher;

/// Most metas per `presence_state` frame: about 1.5 KiB for typical metas. Small so that a frame queued for a slow
/// client stays small (the outbound queue bounds frames, not bytes) and a client applies a big room in steps; not
/// smaller, because a client that falls behind a join storm is resent the whole list and fewer metas per frame mean
/// more frames and more server CPU (BENCHMARKS.md). The engine bounds its published diffs by the same number.
pub const PRESENCE_STATE_CHUNK: usize = livebaton::presence::MAX_DIFF_METAS;

/// Pushes a presence list as `presence_state` (the first [`PRESENCE_STATE_CHUNK`] metas) followed by
/// `presence_diff`s that join the rest, so no frame grows with the room: a connection's write buffer keeps the size of
/// the largest frame it ever sent, and one frame per whole room would also hit the buffer's limit in big rooms.
/// phoenix.js applies the diffs after the state, ending with the same list. Waits for queue space between frames, so
/// a big room does not make a healthy joiner look like a slow consumer.
pub async fn push_presence_state(pusher: &Pusher, list: &PresenceList) {
    let mut chunks = list.chunks(PRESENCE_STATE_CHUNK).into_iter();
    if let Some(first) = chunks.next() {
        pusher.push_waiting("presence_state", &first).await;
    }
    for rest in chunks {
        pusher.push_waiting("presence_diff", &PresenceDiff { joins: rest, leaves: PresenceList::default() }).await;
    }
}
