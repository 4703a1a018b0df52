//! Channels that need nothing but the engine. Application channels (content events, editing) live with the app.

mod room;

pub use room::RoomRoute;

use livebaton::presence::{PresenceDiff, PresenceList};

use crate::channel::Pusher;

/// Most metas per `presence_state` frame: about 1.5 KiB for typical metas. Small on purpose: the WebSocket layer
/// (tungstenite's write buffer, snapview/tungstenite-rs#500) keeps the capacity of the largest frame a connection was
/// ever sent, for as long as the connection lives, and every member of a room is sent its state. Not smaller: a
/// client that falls behind a join storm is resent the whole list, and 4 metas per frame doubled the frames (and the
/// server CPU) of a 1,000-client storm while saving under 0.5 KiB per idle connection. The engine bounds its
/// published diffs by the same number, for the same reason.
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
