//! Who holds the baton, as one member of a session sees it: derived from the engine's [`EditingRole`] when the
//! member looks, and from an [`OwnerChanged`] when the owner changes. A channel words these for its clients (the
//! admin's `edit:*` channel), a collaborative form for its bar; neither decides anything of its own.

use livebaton::editing::{EditingPresence, EditingRole, OwnerChangeReason, OwnerChanged, RoleChange};

/// A member's role in an editing session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    /// Holds the baton: may change the draft and save.
    Owner,
    /// Watches, read-only.
    Spectator,
}

impl MemberRole {
    /// As docs/protocol.md §5.4 names it (`role` of the join reply and of `role` pushes).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Owner => "owner",
            MemberRole::Spectator => "spectator",
        }
    }
}

/// The session as one member sees it now.
#[derive(Clone, Debug, PartialEq)]
pub struct Baton {
    /// This member's role.
    pub role: MemberRole,
    /// Who holds the baton: the first *eligible* member in sequence order (a viewer may be ahead of it), if any.
    pub owner: Option<EditingPresence>,
    /// Every member in sequence order, this one included.
    pub queue: Vec<EditingPresence>,
    /// Whether this member may take the baton here: another tab of the same user holds it.
    pub can_take_here: bool,
}

impl From<EditingRole> for Baton {
    fn from(role: EditingRole) -> Self {
        match role {
            EditingRole::Owner { presences } => Baton {
                role: MemberRole::Owner,
                owner: presences.iter().find(|presence| presence.can_edit).cloned(),
                queue: presences,
                can_take_here: false,
            },
            EditingRole::Spectator { owner, presences, can_take_here } => {
                Baton { role: MemberRole::Spectator, owner, queue: presences, can_take_here }
            }
        }
    }
}

/// Why a member's role was (re)told after the owner changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleReason {
    /// This member is the session's first owner.
    First,
    /// This member is the next in line after the owner left (or reclaimed its place under a new connection).
    Promoted,
    /// The baton moved between two tabs of one user: to this one (owner) or away from it (spectator).
    TakenHere,
    /// Someone else's role changed; this member's did not.
    OwnerChanged,
}

impl RoleReason {
    /// As docs/protocol.md §5.4 names it (`reason` of a `role` push).
    pub fn as_str(self) -> &'static str {
        match self {
            RoleReason::First => "first",
            RoleReason::Promoted => "promoted",
            RoleReason::TakenHere => "taken_here",
            RoleReason::OwnerChanged => "owner_changed",
        }
    }
}

/// What an owner change means for one member: its role now, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleUpdate {
    /// The member's role after the change.
    pub role: MemberRole,
    /// Why it is told.
    pub reason: RoleReason,
}

impl RoleUpdate {
    /// What `change` means for the member `view_id` (a live page's view id or a channel's connection id). A hand-over
    /// to this member (not a session's first owner) is measured in `livebaton_owner_handoff_seconds`, once per
    /// promoted member.
    pub fn of(change: &OwnerChanged, view_id: &str) -> Self {
        let update = Self::without_metrics(change, view_id);
        if let Some(observed_at) = change.observed_at
            && update.promoted()
            && update.reason != RoleReason::First
        {
            metrics::histogram!("livebaton_owner_handoff_seconds").record(observed_at.elapsed().as_secs_f64());
        }
        update
    }

    fn without_metrics(change: &OwnerChanged, view_id: &str) -> Self {
        let (role, reason) = match change.role_change_for(view_id) {
            RoleChange::Promoted => {
                let reason = match change.reason {
                    OwnerChangeReason::First => RoleReason::First,
                    OwnerChangeReason::Handover => RoleReason::TakenHere,
                    OwnerChangeReason::Promoted | OwnerChangeReason::Vacated => RoleReason::Promoted,
                };
                (MemberRole::Owner, reason)
            }
            RoleChange::Demoted => (MemberRole::Spectator, RoleReason::TakenHere),
            RoleChange::Unchanged => {
                let mine = change.owner.as_ref().is_some_and(|owner| &*owner.view_id == view_id);
                (if mine { MemberRole::Owner } else { MemberRole::Spectator }, RoleReason::OwnerChanged)
            }
        };
        RoleUpdate { role, reason }
    }

    /// Whether this member was just given the baton.
    pub fn promoted(&self) -> bool {
        self.role == MemberRole::Owner && self.reason != RoleReason::OwnerChanged
    }
}

/// Counts an event refused because its member does not hold the baton (`livebaton_events_refused_total`).
pub fn count_not_owner() {
    metrics::counter!("livebaton_events_refused_total", "reason" => "not_owner").increment(1);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use livebaton::editing::EditTarget;

    use super::*;

    fn member(view_id: &str, user_id: &str, can_edit: bool) -> EditingPresence {
        EditingPresence {
            view_id: Arc::from(view_id),
            seq: 0,
            user_id: user_id.into(),
            user_name: format!("User {user_id}"),
            can_edit,
            rank: 0,
            yielded: false,
            tab_id: None,
            joined_at: 0,
        }
    }

    fn change(owner: Option<&str>, previous: Option<&str>, reason: OwnerChangeReason) -> OwnerChanged {
        OwnerChanged {
            target: EditTarget::new("article", 1).unwrap(),
            owner: owner.map(|view| member(view, "1", true)),
            previous_owner: previous.map(str::to_owned),
            reason,
            epoch: 1,
            draft: None,
            observed_at: None,
        }
    }

    /// The owner a member sees is the first eligible member, not the first in the queue.
    #[test]
    fn the_owner_is_the_first_eligible_member() {
        let queue = vec![member("viewer", "1", false), member("editor", "2", true)];
        let baton = Baton::from(EditingRole::Owner { presences: queue.clone() });
        assert_eq!((baton.role, baton.owner.map(|owner| owner.view_id)), (MemberRole::Owner, Some("editor".into())));
        let baton = Baton::from(EditingRole::Spectator { owner: None, presences: queue, can_take_here: false });
        assert_eq!((baton.role, baton.owner), (MemberRole::Spectator, None));
    }

    /// Every owner change maps to one role and reason per member, as docs/protocol.md §5.4 lists them.
    #[test]
    fn owner_changes_map_to_roles_and_reasons() {
        use MemberRole::{Owner, Spectator};
        use OwnerChangeReason as Why;
        let cases = [
            (change(Some("a"), None, Why::First), "a", Owner, RoleReason::First),
            (change(Some("b"), Some("a"), Why::Promoted), "b", Owner, RoleReason::Promoted),
            (change(Some("b"), Some("a"), Why::Handover), "b", Owner, RoleReason::TakenHere),
            (change(Some("b"), Some("a"), Why::Handover), "a", Spectator, RoleReason::TakenHere),
            (change(Some("b"), Some("a"), Why::Promoted), "c", Spectator, RoleReason::OwnerChanged),
            (change(None, Some("a"), Why::Vacated), "c", Spectator, RoleReason::OwnerChanged),
            // A reclaim on the same connection: the owner is still this member, and it is told so.
            (change(Some("a"), Some("a"), Why::Promoted), "a", Owner, RoleReason::OwnerChanged),
        ];
        for (change, me, role, reason) in cases {
            let update = RoleUpdate::of(&change, me);
            assert_eq!(update, RoleUpdate { role, reason }, "{me} after {change:?}");
            assert_eq!(update.promoted(), role == Owner && reason != RoleReason::OwnerChanged);
        }
        assert_eq!((Owner.as_str(), RoleReason::TakenHere.as_str()), ("owner", "taken_here"));
    }
}
