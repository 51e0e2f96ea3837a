//! Roles and the table of which role each `/api` route requires.

use axum::http::Method;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No session needed (setup and sign-in).
    Public,
    /// A signed-in member with at least this role.
    AtLeast(Role),
}

use Access::{AtLeast, Public};
use Role::{Admin, Member};

/// Every `/api` route and who may call it (SPEC §1 roles). Finer rules — an admin acting on
/// an owner, the last owner — live with the members handlers.
pub const API_ROUTES: &[(Method, &str, Access)] = &[
    (Method::GET, "/api/setup", Public),
    (Method::POST, "/api/setup", Public),
    (Method::POST, "/api/session", Public),
    (Method::GET, "/api/session", AtLeast(Member)),
    (Method::DELETE, "/api/session", AtLeast(Member)),
    (Method::GET, "/api/agents", AtLeast(Member)),
    (Method::POST, "/api/agents", AtLeast(Admin)),
    (Method::GET, "/api/agents/{agent_id}", AtLeast(Member)),
    (Method::PATCH, "/api/agents/{agent_id}", AtLeast(Admin)),
    (Method::DELETE, "/api/agents/{agent_id}", AtLeast(Admin)),
    (Method::GET, "/api/agents/{agent_id}/api-keys", AtLeast(Member)),
    (Method::POST, "/api/agents/{agent_id}/api-keys", AtLeast(Admin)),
    (Method::GET, "/api/agents/{agent_id}/api-keys/{key_id}", AtLeast(Member)),
    (Method::PATCH, "/api/agents/{agent_id}/api-keys/{key_id}", AtLeast(Admin)),
    (Method::DELETE, "/api/agents/{agent_id}/api-keys/{key_id}", AtLeast(Admin)),
    (Method::POST, "/api/agents/{agent_id}/api-keys/{key_id}/reveal", AtLeast(Admin)),
    (Method::GET, "/api/agents/{agent_id}/contacts", AtLeast(Member)),
    (Method::GET, "/api/agents/{agent_id}/contacts/{contact_id}", AtLeast(Member)),
];

pub fn required_access(method: &Method, route: &str) -> Option<Access> {
    API_ROUTES
        .iter()
        .find(|(m, path, _)| m == method && *path == route)
        .map(|(_, _, access)| *access)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        for role in [Role::Member, Role::Admin, Role::Owner] {
            assert_eq!(Role::from_name(role.name()), Some(role));
        }
        assert_eq!(Role::from_name("root"), None);
    }

    #[test]
    fn management_of_keys_needs_an_admin() {
        let route = "/api/agents/{agent_id}/api-keys/{key_id}/reveal";
        assert_eq!(required_access(&Method::POST, route), Some(AtLeast(Admin)));
        assert_eq!(required_access(&Method::GET, "/api/agents"), Some(AtLeast(Member)));
        assert_eq!(required_access(&Method::PUT, "/api/agents"), None);
    }
}
