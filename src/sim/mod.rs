//! Simulated desk phones that behave on the wire as docs/vendors.md says real ones do.
//!
//! A simulated phone starts with nothing but the agent's address. Like a real phone it fetches
//! its provisioning file from the agent, reads the Action URLs out of it, and fires them with the
//! values pasted in verbatim (raw spaces, raw `+`) over a plain TCP socket, exactly as phones do.
//! It serves its vendor's Action URI API with the vendor's authentication and access rules,
//! keeps a call state machine, and answers commands the way a phone does (dial fires
//! `outgoing_call`, answer fires `call_established`...).
//!
//! What is the same for every vendor is split by job:
//! - `personality`: what a vendor personality is made of, and the table of them;
//! - `phone`: a running phone, its options and state;
//! - `start`: starting a phone: its port, its Action URL queue, its boot;
//! - `calls`: the call state machine, and how an Action URI request is carried out;
//! - `provisioning`: fetching provisioning files as a phone does (credentials, challenges);
//! - `callbacks`: Action URLs filled in and fired as raw request lines;
//! - `server`: the phone's HTTP port (the vendor's API plus `/sim/...` to play the people);
//! - `access`: Basic and Digest credentials; `query`: query strings as phones' CGIs read them;
//! - `xml` and `settings`: the one XML reader and the settings read from provisioning files.
//!
//! `sim/<vendor>.rs` holds one personality: how that vendor's requests, replies, provisioning
//! files and variables look. `fleet` is a lightweight mode of thousands of phones in one process.
//!
//! The simulators are a tool on top of the gateway: they use the core (model, vendor tables)
//! and nothing of the agent or the bench.

mod access;
mod callbacks;
mod calls;
mod personality;
mod phone;
mod provisioning;
mod query;
mod server;
pub mod settings;
mod start;
#[cfg(test)]
mod testing;
mod xml;

pub mod fanvil;
pub mod fleet;
pub mod grandstream;
pub mod htek;
pub mod snom;
pub mod yealink;

pub use access::{basic_auth_ok, check_credentials, DIGEST_NONCE};
pub use callbacks::{raw_get, send_raw_get, substitute};
pub use personality::{
    personality, AccessCtx, Action, Identity, LogoSeen, Personality, Provisioned, Reply, Request,
    Snapshot, PERSONALITIES,
};
pub use phone::{SimOptions, SimPhone};
pub use provisioning::agent_and_credentials;
pub use query::{decode, form_decode, query_pairs, split_target};
pub use start::spawn_many;
pub use xml::{xml_leaves, Attrs, Leaf};
