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
    (
        Method::GET,
        "/api/agents/{agent_id}/api-keys",
        AtLeast(Member),
    ),
    (
        Method::POST,
        "/api/agents/{agent_id}/api-keys",
        AtLeast(Admin),
    ),
    (
        Method::GET,
        "/api/agents/{agent_id}/api-keys/{key_id}",
        AtLeast(Member),
    ),
    (
        Method::PATCH,
        "/api/agents/{agent_id}/api-keys/{key_id}",
        AtLeast(Admin),
    ),
    (
        Method::DELETE,
        "/api/agents/{agent_id}/api-keys/{key_id}",
        AtLeast(Admin),
    ),
    (
        Method::POST,
        "/api/agents/{agent_id}/api-keys/{key_id}/reveal",
        AtLeast(Admin),
    ),
    (Method::GET, "/api/members", AtLeast(Member)),
    (Method::POST, "/api/members", AtLeast(Admin)),
    (Method::PATCH, "/api/members/{member_id}", AtLeast(Admin)),
    (Method::DELETE, "/api/members/{member_id}", AtLeast(Admin)),
    (Method::POST, "/api/invites/accept", Public),
    (Method::GET, "/api/audit-logs", AtLeast(Admin)),
    (Method::GET, "/api/audit-logs/export", AtLeast(Admin)),
    (
        Method::GET,
        "/api/agents/{agent_id}/contacts",
        AtLeast(Member),
    ),
    (
        Method::GET,
        "/api/agents/{agent_id}/contacts/{contact_id}",
        AtLeast(Member),
    ),
];

pub fn required_access(method: &Method, route: &str) -> Option<Access> {
    API_ROUTES
        .iter()
        .find(|(m, path, _)| m == method && *path == route)
        .map(|(_, _, access)| *access)
}

/// The methods the table lists for `route`, for the `Allow` header of a 405.
pub fn allowed_methods(route: &str) -> Vec<&'static str> {
    API_ROUTES
        .iter()
        .filter(|(_, path, _)| *path == route)
        .map(|(method, _, _)| method.as_str())
        .collect()
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
        assert_eq!(
            required_access(&Method::GET, "/api/agents"),
            Some(AtLeast(Member))
        );
        assert_eq!(required_access(&Method::PUT, "/api/agents"), None);
        assert_eq!(allowed_methods("/api/agents"), ["GET", "POST"]);
        assert!(allowed_methods("/api/nothing").is_empty());
    }

    #[test]
    fn members_and_the_audit_log_follow_the_role_table() {
        let member = "/api/members/{member_id}";
        let cases = [
            (Method::GET, "/api/members", AtLeast(Member)),
            (Method::POST, "/api/members", AtLeast(Admin)),
            (Method::PATCH, member, AtLeast(Admin)),
            (Method::DELETE, member, AtLeast(Admin)),
            (Method::GET, "/api/audit-logs", AtLeast(Admin)),
            (Method::GET, "/api/audit-logs/export", AtLeast(Admin)),
        ];
        for (method, route, access) in cases {
            assert_eq!(required_access(&method, route), Some(access), "{route}");
        }
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let access = required_access(&method, "/api/audit-logs");
            assert_eq!(access, None, "{method}");
        }
    }
}
