//! Who may manage whom (SPEC §1): pure decisions, so the whole table is tested without HTTP.
//!
//! The route table already keeps plain members away from every change; these rules add what a
//! route cannot know: the role of the member acted on, the role asked for, and how many owners
//! would be left.

use crate::model::member::Role;

/// A change to the members of the workspace, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Add a member with this role.
    Create { role: Role },
    /// Change the role of a member who has `from`.
    SetRole { from: Role, to: Role },
    /// Set a new password for a member with this role.
    ResetPassword { target: Role },
    /// Remove a member with this role.
    Remove { target: Role },
}

/// Why a change is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 403 `forbidden`, with a sentence saying why.
    Forbidden(&'static str),
    /// 409 `last_owner`.
    LastOwner,
}

impl From<Refusal> for crate::error::DomainError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Forbidden(why) => Self::Forbidden(why.to_owned()),
            Refusal::LastOwner => Self::LastOwner,
        }
    }
}

const NEEDS_ADMIN: &str = "Only owners and admins may manage members.";
const ADMIN_ON_OWNER: &str = "Admins may not change, reset or remove an owner; ask an owner.";
const ADMIN_TO_OWNER: &str = "Only an owner may make someone an owner.";

/// May a member with role `actor` make `change`? Checked before anything is written.
pub fn authorize(actor: Role, change: Change) -> Result<(), Refusal> {
    if actor < Role::Admin {
        return Err(Refusal::Forbidden(NEEDS_ADMIN));
    }
    if actor == Role::Owner {
        return Ok(());
    }
    let acts_on_owner = match change {
        Change::Create { .. } => false,
        Change::SetRole { from, .. } => from == Role::Owner,
        Change::ResetPassword { target } | Change::Remove { target } => target == Role::Owner,
    };
    if acts_on_owner {
        return Err(Refusal::Forbidden(ADMIN_ON_OWNER));
    }
    let makes_owner = matches!(
        change,
        Change::Create { role: Role::Owner }
            | Change::SetRole {
                to: Role::Owner,
                ..
            }
    );
    if makes_owner {
        return Err(Refusal::Forbidden(ADMIN_TO_OWNER));
    }
    Ok(())
}

/// Would `change` leave the workspace without an owner, given `owners` owners before it?
/// Checked inside the transaction that makes the change, with the owner rows locked.
pub fn keeps_an_owner(change: Change, owners: i64) -> Result<(), Refusal> {
    let loses_an_owner = match change {
        Change::SetRole { from, to } => from == Role::Owner && to != Role::Owner,
        Change::Remove { target } => target == Role::Owner,
        Change::Create { .. } | Change::ResetPassword { .. } => false,
    };
    if loses_an_owner && owners <= 1 {
        return Err(Refusal::LastOwner);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::{Admin, Member, Owner};

    #[test]
    fn who_may_manage_whom() {
        let forbidden = |why| Err(Refusal::Forbidden(why));
        let cases: &[(Role, Change, Result<(), Refusal>)] = &[
            // Owners may do anything the rules allow.
            (Owner, Change::Create { role: Owner }, Ok(())),
            (
                Owner,
                Change::SetRole {
                    from: Member,
                    to: Owner,
                },
                Ok(()),
            ),
            (
                Owner,
                Change::SetRole {
                    from: Owner,
                    to: Admin,
                },
                Ok(()),
            ),
            (Owner, Change::ResetPassword { target: Owner }, Ok(())),
            (Owner, Change::Remove { target: Owner }, Ok(())),
            // Admins manage admins and members…
            (Admin, Change::Create { role: Admin }, Ok(())),
            (Admin, Change::Create { role: Member }, Ok(())),
            (
                Admin,
                Change::SetRole {
                    from: Member,
                    to: Admin,
                },
                Ok(()),
            ),
            (
                Admin,
                Change::SetRole {
                    from: Admin,
                    to: Member,
                },
                Ok(()),
            ),
            (Admin, Change::ResetPassword { target: Admin }, Ok(())),
            (Admin, Change::Remove { target: Member }, Ok(())),
            // …but never act on an owner or make one.
            (
                Admin,
                Change::Create { role: Owner },
                forbidden(ADMIN_TO_OWNER),
            ),
            (
                Admin,
                Change::SetRole {
                    from: Member,
                    to: Owner,
                },
                forbidden(ADMIN_TO_OWNER),
            ),
            (
                Admin,
                Change::SetRole {
                    from: Admin,
                    to: Owner,
                },
                forbidden(ADMIN_TO_OWNER),
            ),
            (
                Admin,
                Change::SetRole {
                    from: Owner,
                    to: Member,
                },
                forbidden(ADMIN_ON_OWNER),
            ),
            (
                Admin,
                Change::SetRole {
                    from: Owner,
                    to: Owner,
                },
                forbidden(ADMIN_ON_OWNER),
            ),
            (
                Admin,
                Change::ResetPassword { target: Owner },
                forbidden(ADMIN_ON_OWNER),
            ),
            (
                Admin,
                Change::Remove { target: Owner },
                forbidden(ADMIN_ON_OWNER),
            ),
            // Members manage nobody.
            (
                Member,
                Change::Create { role: Member },
                forbidden(NEEDS_ADMIN),
            ),
            (
                Member,
                Change::SetRole {
                    from: Member,
                    to: Member,
                },
                forbidden(NEEDS_ADMIN),
            ),
            (
                Member,
                Change::ResetPassword { target: Member },
                forbidden(NEEDS_ADMIN),
            ),
            (
                Member,
                Change::Remove { target: Member },
                forbidden(NEEDS_ADMIN),
            ),
        ];
        for (actor, change, expected) in cases {
            assert_eq!(
                &authorize(*actor, *change),
                expected,
                "{actor:?} {change:?}"
            );
        }
    }

    #[test]
    fn the_last_owner_stays() {
        let cases: &[(Change, i64, bool)] = &[
            (Change::Remove { target: Owner }, 1, false),
            (Change::Remove { target: Owner }, 2, true),
            (
                Change::SetRole {
                    from: Owner,
                    to: Admin,
                },
                1,
                false,
            ),
            (
                Change::SetRole {
                    from: Owner,
                    to: Member,
                },
                1,
                false,
            ),
            (
                Change::SetRole {
                    from: Owner,
                    to: Member,
                },
                2,
                true,
            ),
            (
                Change::SetRole {
                    from: Owner,
                    to: Owner,
                },
                1,
                true,
            ),
            (
                Change::SetRole {
                    from: Admin,
                    to: Member,
                },
                1,
                true,
            ),
            (Change::Remove { target: Admin }, 1, true),
            (Change::Remove { target: Member }, 0, true),
            (Change::ResetPassword { target: Owner }, 1, true),
            (Change::Create { role: Member }, 0, true),
        ];
        for (change, owners, allowed) in cases {
            let result = keeps_an_owner(*change, *owners);
            assert_eq!(result.is_ok(), *allowed, "{change:?} with {owners} owners");
            if !allowed {
                assert_eq!(result, Err(Refusal::LastOwner));
            }
        }
    }
}
