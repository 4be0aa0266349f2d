//! The built-in demo account: a user with a committed RSA key pair, a role and a database, so the demo
//! and quick experiments need no set-up. Every emulator has it unless the builder says
//! [`without_demo`](crate::EmulatorBuilder::without_demo).
//!
//! The private key is public on purpose: it only opens the emulator. Never register it with Snowflake.

/// The emulated account's name (also the default account of every emulator).
pub const ACCOUNT: &str = "DEMO";
/// The demo user.
pub const USER: &str = "DEMO_USER";
/// The demo user's role.
pub const ROLE: &str = "DEMO_ROLE";
/// The demo database (with its `PUBLIC` schema).
pub const DATABASE: &str = "DEMO_DB";
/// A warehouse name to put in configurations; the emulator accepts any.
pub const WAREHOUSE: &str = "DEMO_WH";
/// The demo user's private key, unencrypted PKCS#8 PEM.
pub const PRIVATE_KEY_PEM: &str = include_str!("../keys/demo_rsa_key.p8");
/// The same private key encrypted with [`PRIVATE_KEY_PASSPHRASE`] (PKCS#8, PBES2 with AES-256-CBC).
pub const ENCRYPTED_PRIVATE_KEY_PEM: &str = include_str!("../keys/demo_rsa_key_encrypted.p8");
/// The passphrase of [`ENCRYPTED_PRIVATE_KEY_PEM`].
pub const PRIVATE_KEY_PASSPHRASE: &str = "demo-passphrase";
/// The demo user's registered public key, PEM.
pub const PUBLIC_KEY_PEM: &str = include_str!("../keys/demo_rsa_key.pub");

/// A destination configuration (the manager's `{"account", "warehouse", ...}` object) for the demo user,
/// writing into schema `namespace`.
#[must_use]
pub fn destination_config(namespace: &str) -> serde_json::Value {
    serde_json::json!({
        "account": ACCOUNT,
        "warehouse": WAREHOUSE,
        "database": DATABASE,
        "user": USER,
        "role": ROLE,
        "privateKey": PRIVATE_KEY_PEM,
        "privateKeyPassphrase": "",
        "namespace": namespace,
        "enableIceberg": false,
    })
}
