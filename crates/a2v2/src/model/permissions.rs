//! Permissions: an action in an area, held by a key as a bit set.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        RefOr, Schema,
        schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Type},
    },
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Contacts,
    Documents,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
}

pub const AREAS: [Area; 2] = [Area::Contacts, Area::Documents];
pub const ACTIONS: [Action; 4] = [Action::Create, Action::Read, Action::Update, Action::Delete];

impl Area {
    pub fn name(self) -> &'static str {
        match self {
            Area::Contacts => "contacts",
            Area::Documents => "documents",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        AREAS.into_iter().find(|area| area.name() == name)
    }
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        ACTIONS.into_iter().find(|action| action.name() == name)
    }
}

/// One permission, written `area:action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission(pub Area, pub Action);

impl Permission {
    const fn bit(self) -> u8 {
        1 << (self.0 as u8 * 4 + self.1 as u8)
    }

    pub fn name(self) -> String {
        format!("{}:{}", self.0.name(), self.1.name())
    }

    /// A dense index from 0 to [`COUNT`] - 1.
    pub const fn index(self) -> usize {
        self.0 as usize * 4 + self.1 as usize
    }

    /// Every permission, in index order.
    pub fn all() -> impl Iterator<Item = Permission> {
        AREAS.into_iter().flat_map(|area| {
            ACTIONS
                .into_iter()
                .map(move |action| Permission(area, action))
        })
    }
}

/// How many permissions there are.
pub const COUNT: usize = AREAS.len() * ACTIONS.len();

/// The set of permissions a key holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Permissions(u8);

impl Permissions {
    pub fn from_bits(bits: i64) -> Self {
        Self(u8::try_from(bits).unwrap_or_default())
    }

    pub fn bits(self) -> i64 {
        i64::from(self.0)
    }

    pub fn with(mut self, permission: Permission) -> Self {
        self.0 |= permission.bit();
        self
    }

    pub fn has(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    fn iter(self) -> impl Iterator<Item = Permission> {
        AREAS.into_iter().flat_map(move |area| {
            ACTIONS
                .into_iter()
                .map(move |action| Permission(area, action))
                .filter(move |p| self.has(*p))
        })
    }

    /// `{"contacts": [...], "documents": [...]}` as sent by clients; absent areas grant nothing.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let object = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(object) => object,
            _ => return Err("must be an object like {\"contacts\": [\"read\"]}".into()),
        };
        let mut set = Self::default();
        for (area_name, actions) in object {
            let area = Area::from_name(area_name).ok_or_else(|| {
                let shown: String = area_name.chars().take(40).collect();
                format!("has an unknown area {shown:?}; use contacts or documents")
            })?;
            let actions = match actions {
                Value::Null => continue,
                Value::Array(actions) => actions,
                _ => return Err(format!("{area_name} must be a list of actions")),
            };
            for action in actions {
                let action = action
                    .as_str()
                    .and_then(Action::from_name)
                    .ok_or_else(|| {
                        let shown: String = action.to_string().chars().take(40).collect();
                        format!(
                            "{area_name} has an unknown action {shown}; use create, read, update or delete"
                        )
                    })?;
                set = set.with(Permission(area, action));
            }
        }
        Ok(set)
    }

    pub fn to_json(self) -> Value {
        let mut object = Map::new();
        for area in AREAS {
            let actions: Vec<&str> = ACTIONS
                .into_iter()
                .filter(|action| self.has(Permission(area, *action)))
                .map(Action::name)
                .collect();
            object.insert(area.name().to_owned(), json!(actions));
        }
        Value::Object(object)
    }

    /// The access badges: the areas in which the key holds any permission.
    pub fn access(self) -> Vec<&'static str> {
        AREAS
            .into_iter()
            .filter(|area| ACTIONS.iter().any(|a| self.has(Permission(*area, *a))))
            .map(Area::name)
            .collect()
    }

    pub fn names(self) -> Vec<String> {
        self.iter().map(Permission::name).collect()
    }
}

/// `{"contacts": [actions…], "documents": [actions…]}`, built from the areas and actions
/// themselves so the document lists exactly what the parser accepts.
impl PartialSchema for Permissions {
    fn schema() -> RefOr<Schema> {
        let actions = || {
            ArrayBuilder::new().unique_items(true).items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(ACTIONS.map(Action::name))),
            )
        };
        AREAS
            .into_iter()
            .fold(ObjectBuilder::new(), |object, area| {
                object.property(area.name(), actions())
            })
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .examples([json!({"contacts": ["create", "read"], "documents": []})])
            .into()
    }
}

impl ToSchema for Permissions {}

impl Serialize for Permissions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_derives_badges() {
        let set = Permissions::from_json(
            &json!({"contacts": ["read", "create", "read"], "documents": []}),
        )
        .unwrap();
        assert_eq!(
            set.to_json(),
            json!({"contacts": ["create", "read"], "documents": []})
        );
        assert_eq!(set.access(), ["contacts"]);
        assert_eq!(set.names(), ["contacts:create", "contacts:read"]);
        assert!(set.has(Permission(Area::Contacts, Action::Read)));
        assert!(!set.has(Permission(Area::Documents, Action::Read)));
        assert_eq!(Permissions::from_bits(set.bits()), set);
    }

    #[test]
    fn no_permission_is_allowed_and_means_no_access() {
        let set = Permissions::from_json(&json!({})).unwrap();
        assert!(set.access().is_empty());
        assert_eq!(Permissions::from_json(&Value::Null).unwrap(), set);
    }

    #[test]
    fn unknown_areas_and_actions_are_rejected() {
        assert!(Permissions::from_json(&json!({"billing": ["read"]})).is_err());
        assert!(Permissions::from_json(&json!({"contacts": ["admin"]})).is_err());
        assert!(Permissions::from_json(&json!({"contacts": "read"})).is_err());
        assert!(Permissions::from_json(&json!(["contacts:read"])).is_err());
    }

    #[test]
    fn every_permission_has_its_own_bit() {
        let all: Vec<Permission> = AREAS
            .into_iter()
            .flat_map(|a| ACTIONS.into_iter().map(move |b| Permission(a, b)))
            .collect();
        for p in &all {
            let set = Permissions::default().with(*p);
            assert_eq!(all.iter().filter(|q| set.has(**q)).count(), 1);
        }
    }
}
