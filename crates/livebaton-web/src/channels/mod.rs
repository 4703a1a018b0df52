//! Channels that need nothing but the engine. Application channels (content events, editing) live with the app.

mod room;

pub use room::RoomRoute;

use livebaton::presence::{PresenceDiff, PresenceList};

use crate::channel::Pusher;

/// Most metas per `presence_state` frame (about 5 KiB for typical metas).
pub const PRESENCE_STATE_CHUNK: usize = 64;

/// Pushes a presence list as `presence_state` (the first [`PRESENCE_STATE_CHUNK`] metas) followed by
/// `presence_diff`s that join the rest, so no frame grows with the room: a connection's write buffer keeps the size of
/// the largest frame it ever sent, and one frame per whole room would also hit the buffer's limit in big rooms.
/// phoenix.js applies the diffs after the state, ending with the same list.
pub fn push_presence_state(pusher: &Pusher, list: &PresenceList) {
    let mut chunks = list.chunks(PRESENCE_STATE_CHUNK).into_iter();
    if let Some(first) = chunks.next() {
        pusher.push("presence_state", &first);
    }
    for rest in chunks {
        pusher.push("presence_diff", &PresenceDiff { joins: rest, leaves: PresenceList::default() });
    }
}
