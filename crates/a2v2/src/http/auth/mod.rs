//! The two principals and their guards, never mixed: API keys on `/v1`, dashboard sessions on
//! `/api`. Each route carries its guard with the permission or role it needs, from the route
//! tables in `http::routes`.

pub mod api_key;
pub mod session;
