//! Collaborative forms over the application's own types: the pieces a form needs around the engine's editing
//! sessions ([`livebaton::editing`]).
//!
//! - [`Baton`] and [`RoleUpdate`]: who holds the baton as one member sees it, and what an owner change means for it;
//! - [`FormNotice`]: `saved`, `deleted`, `restored`, told on a row's form topic after a write, on every node;
//! - [`Author`]: who wrote a change;
//! - [`SessionMember`]: one page's place in a session, and the editing bar that shows it;
//! - [`CollabForm`]: the whole form over the application's [`Editable`] type: owner and spectators, live drafts,
//!   promotion with the draft, "Edit here", form recovery, fenced saves with a per-field conflict panel, kept drafts
//!   offered back, a row deleted while the form is open;
//! - [`CollabView`]: a ready live view of such a form, for an application type that also says how a page finds its
//!   row and renders its inputs ([`FormView`]); with [`save_merged`] (for a type that can [`MergedSave`]) the
//!   application writes no save logic of its own.

mod author;
mod baton;
mod conflict;
mod editable;
mod form;
mod member;
mod notice;
mod view;

pub use author::Author;
pub use baton::{Baton, MemberRole, RoleReason, RoleUpdate, count_not_owner};
pub use conflict::{choices, panel};
pub use editable::{
    ConflictValues, DEFAULT_MAX_DRAFT_BYTES, Editable, MergedSave, RestoreError, SaveOutcome, VersionedRow,
    save_merged, value_html,
};
pub use form::{CollabForm, DRAFT_CHECK_AGE, Gone, SaveStatus, VERSION_FIELD, date_time, shown_version};
pub use member::{SessionEvent, SessionMember, people, refused};
pub use notice::{DeletedNotice, FormNotice, RestoredNotice, SavedNotice};
pub use view::{CollabView, FormView, Mounted};
