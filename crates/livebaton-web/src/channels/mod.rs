//! Channels that need nothing but the engine. Application channels (content events, editing) live with the app.

mod room;

pub use room::RoomRoute;
