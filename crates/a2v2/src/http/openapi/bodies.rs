//! The schemas of the JSON request bodies. Bodies are validated field by field
//! (`validate::FromBody`), not deserialised, so each gets a schema here; a test checks that
//! each schema names exactly the fields its parser accepts.

use serde_json::{Value, json};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        RefOr, Schema,
        schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type},
    },
};

use crate::model::{member::Role, permissions::Permissions};

/// IP addresses or CIDR ranges: a JSON array, or one comma-separated string. Empty or null
/// means any address.
pub struct IpAddresses;

impl PartialSchema for IpAddresses {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        OneOfBuilder::new()
            .item(ArrayBuilder::new().items(string()).max_items(Some(100)))
            .item(string())
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .examples([
                json!(["192.168.1.1", "10.0.0.0/8"]),
                json!("192.168.1.1, 10.0.0.1"),
            ])
            .into()
    }
}

impl ToSchema for IpAddresses {}

/// A key's settings (`POST …/api-keys` requires `name`; `PATCH` changes what it names).
#[derive(ToSchema)]
#[schema(example = json!({
    "name": "Zapier sync",
    "description": "Writes new leads into the CRM",
    "ip_addresses": "192.168.1.1, 10.0.0.1",
    "permissions": {"contacts": ["create", "read"], "documents": []},
    "expires_at": "2030-01-31T00:00:00Z"
}))]
pub struct KeyInput {
    /// 1–100 characters after trimming.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    #[schema(
        max_length = 500,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub description: Option<String>,
    #[schema(value_type = Option<IpAddresses>)]
    pub ip_addresses: Option<Value>,
    pub permissions: Option<Permissions>,
    /// In the future; null for no expiry.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<String>,
    /// At most `requests` in any `per_seconds` window (429 beyond); null for no limit.
    pub rate_limit: Option<crate::model::key::RateLimit>,
    /// `false` pauses the key (401) until set back to `true`.
    pub enabled: Option<bool>,
}

/// `{name}` of an agent.
#[derive(ToSchema)]
#[schema(example = json!({"name": "Sales assistant"}))]
pub struct AgentInput {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
}

/// A contact's fields. A create needs one of first_name, last_name, email, phone; a patch
/// changes only what it names, and `null` clears a field.
#[derive(ToSchema)]
#[schema(example = json!({
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone": "+44 20 7946 0958",
    "company": "Analytical Engines Ltd",
    "tags": ["lead"],
    "attributes": {"source": "webinar", "score": 42}
}))]
pub struct ContactInput {
    #[schema(
        max_length = 255,
        pattern = "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F]*$"
    )]
    pub first_name: Option<String>,
    #[schema(
        max_length = 255,
        pattern = "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F]*$"
    )]
    pub last_name: Option<String>,
    #[schema(max_length = 254, format = Email)]
    pub email: Option<String>,
    /// A phone number; international form (`+44 20 7946 0958`) is safest.
    #[schema(max_length = 255, pattern = "^\\+?[0-9][0-9 ()./-]{3,40}$")]
    pub phone: Option<String>,
    #[schema(
        max_length = 255,
        pattern = "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F]*$"
    )]
    pub company: Option<String>,
    #[schema(
        max_length = 255,
        pattern = "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F]*$"
    )]
    pub job_title: Option<String>,
    #[schema(
        max_length = 10000,
        pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"
    )]
    pub notes: Option<String>,
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
    /// String, number or boolean values; at most 100.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
}

/// `POST /api/setup`: the first owner and the workspace's name.
#[derive(ToSchema)]
#[schema(example = json!({"email": "owner@example.com", "password": "correct horse battery", "workspace_name": "Acme"}))]
pub struct SetupInput {
    #[schema(format = Email)]
    pub email: String,
    /// At least 12 characters.
    #[schema(min_length = 12)]
    pub password: String,
    #[schema(max_length = 100)]
    pub workspace_name: Option<String>,
}

/// `POST /api/session`.
#[derive(ToSchema)]
#[schema(example = json!({"email": "owner@example.com", "password": "correct horse battery"}))]
pub struct SignInInput {
    pub email: String,
    pub password: String,
}

/// `POST /api/members`: `{email, password, role}`, or `{email, role, invite: true}` to get a
/// one-time invite link instead of setting a password.
#[derive(ToSchema)]
#[schema(example = json!({"email": "new@example.com", "role": "member", "invite": true}))]
pub struct MemberInput {
    #[schema(format = Email)]
    pub email: String,
    /// At least 12 characters; left out with an invite.
    #[schema(min_length = 12)]
    pub password: Option<String>,
    pub role: Role,
    pub invite: Option<bool>,
}

/// `PATCH /api/members/{member_id}`: a new role and/or password.
#[derive(ToSchema)]
#[schema(example = json!({"role": "admin"}))]
pub struct MemberPatchInput {
    pub role: Option<Role>,
    #[schema(min_length = 12)]
    pub password: Option<String>,
}

/// `POST …/api-keys/{key_id}/roll`: how long the old secret keeps working.
#[derive(ToSchema)]
#[schema(example = json!({"grace_seconds": 3600}))]
pub struct RollInput {
    /// 0 (default) to 604800 (a week).
    #[schema(minimum = 0, maximum = 604_800)]
    pub grace_seconds: Option<u64>,
}

/// `POST …/api-keys/{key_id}/simulate`: a request to try against the key.
#[derive(ToSchema)]
#[schema(example = json!({"method": "GET", "path": "/v1/contacts", "ip": "203.0.113.7"}))]
pub struct SimulateInput {
    pub method: String,
    /// Starts with `/`; a query string is ignored.
    #[schema(max_length = 2000)]
    pub path: String,
    /// The client's IPv4 or IPv6 address.
    pub ip: String,
}

/// `POST /v1/leaked-keys`: a secret found where it should not be.
#[derive(ToSchema)]
#[schema(example = json!({"key": "a2v2_…"}))]
pub struct LeakInput {
    pub key: String,
}

/// `POST /api/session/confirm`: the member's password again.
#[derive(ToSchema)]
pub struct ConfirmInput {
    pub password: String,
}

/// `POST /api/invites/accept`: the invite token and the new member's password.
#[derive(ToSchema)]
pub struct AcceptInviteInput {
    pub token: String,
    #[schema(min_length = 12)]
    pub password: String,
}

/// `POST /v1/documents/{id}/extract`: the schema to extract with from now on.
#[derive(ToSchema)]
#[schema(example = json!({"schema": {"fields": [
    {"name": "invoice_number", "type": "string", "labels": ["Invoice No", "Invoice #"]},
    {"name": "total", "type": "money"}
]}}))]
pub struct ExtractInput {
    /// `{"fields": [{"name", "type", "labels"}]}` with types `string`, `number`, `date`,
    /// `money`, `email`, `phone`; `null` extracts without a schema.
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        agents, contacts::validation as contacts, keys::input as keys, members::input as members,
        validate::FromBody,
    };
    use utoipa::openapi::schema::Schema;

    fn properties<S: PartialSchema>() -> Vec<String> {
        match S::schema() {
            RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
            _ => panic!("a body schema is an object"),
        }
    }

    fn same_fields<S: PartialSchema, B: FromBody>() {
        let mut documented = properties::<S>();
        let mut accepted: Vec<String> = B::FIELDS.iter().map(|f| (*f).to_owned()).collect();
        documented.sort();
        accepted.sort();
        assert_eq!(
            documented,
            accepted,
            "{} documents other fields than {} accepts",
            std::any::type_name::<S>(),
            std::any::type_name::<B>()
        );
    }

    #[test]
    fn each_body_schema_names_the_fields_its_parser_accepts() {
        same_fields::<KeyInput, keys::CreateKey>();
        same_fields::<KeyInput, keys::KeyPatch>();
        same_fields::<AgentInput, agents::AgentInput>();
        same_fields::<ContactInput, contacts::NewContact>();
        same_fields::<ContactInput, contacts::ContactPatch>();
        same_fields::<SetupInput, members::Setup>();
        same_fields::<SignInInput, members::SignIn>();
        same_fields::<MemberInput, members::CreateMember>();
        same_fields::<MemberPatchInput, members::MemberPatch>();
        same_fields::<AcceptInviteInput, members::AcceptInvite>();
        same_fields::<RollInput, keys::RollKey>();
        same_fields::<SimulateInput, crate::http::keys::SimulatedRequest>();
        same_fields::<LeakInput, keys::LeakReport>();
        same_fields::<ConfirmInput, members::Confirm>();
        same_fields::<ExtractInput, crate::documents::input::ExtractAgain>();
    }
}
