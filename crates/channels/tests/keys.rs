//! Keys and tokens against values computed independently with `openssl` (see `fixtures/README.md`).

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use snowpipe_api::Secret;
use snowpipe_channels::{
    KeyError,
    sql_api::{
        SigningKey,
        jwt::{self, Claims},
    },
};

const PLAIN: &str = include_str!("fixtures/rsa_key.p8");
const AES256: &str = include_str!("fixtures/rsa_key_aes256.p8");
const DES3: &str = include_str!("fixtures/rsa_key_des3.p8");
const FINGERPRINT: &str = include_str!("fixtures/rsa_key.fingerprint");
const PUBLIC_DER: &[u8] = include_bytes!("fixtures/rsa_key.pkcs1.der");
const PASSPHRASE: &str = "fixture-passphrase";

#[test]
fn plain_and_encrypted_keys_give_openssls_fingerprint() {
    for (name, pem, passphrase) in [
        ("plain", PLAIN, ""),
        ("aes256", AES256, PASSPHRASE),
        ("des3", DES3, PASSPHRASE),
    ] {
        let key = SigningKey::from_pem(pem, &Secret::new(passphrase))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(key.fingerprint(), FINGERPRINT.trim(), "{name}");
        assert_eq!(
            key.public_key_der(),
            include_bytes!("fixtures/rsa_key.pub.der"),
            "{name}"
        );
    }
}

#[test]
fn a_wrong_or_missing_passphrase_is_named_without_quoting_secrets() {
    let wrong = SigningKey::from_pem(AES256, &Secret::new("not-it")).unwrap_err();
    assert_eq!(wrong, KeyError::WrongPassphrase);
    let message = wrong.to_string();
    assert!(message.contains("passphrase is wrong"), "{message}");
    assert!(
        !message.contains("not-it") && !message.contains("MII"),
        "{message}"
    );
    assert_eq!(
        SigningKey::from_pem(DES3, &Secret::default()).unwrap_err(),
        KeyError::PassphraseMissing
    );
}

#[test]
fn keys_that_are_not_pkcs8_pem_are_refused_clearly() {
    assert!(matches!(
        SigningKey::from_pem("not a key", &Secret::default()),
        Err(KeyError::NotPem(_))
    ));
    let pkcs1 = PLAIN.replace("PRIVATE KEY", "RSA PRIVATE KEY");
    let error = SigningKey::from_pem(&pkcs1, &Secret::default()).unwrap_err();
    assert_eq!(error, KeyError::WrongLabel("RSA PRIVATE KEY".into()));
    assert!(error.to_string().contains("openssl pkcs8 -topk8"));
    let debug = format!(
        "{:?}",
        SigningKey::from_pem(PLAIN, &Secret::default()).unwrap()
    );
    assert!(
        debug.contains(FINGERPRINT.trim()) && !debug.contains("MII"),
        "{debug}"
    );
}

#[test]
fn tokens_carry_snowflakes_claims_and_verify_with_the_public_key() {
    let key = SigningKey::from_pem(AES256, &Secret::new(PASSPHRASE)).unwrap();
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_750_000_000);
    let claims = Claims::new("myorg-acct.eu-west-1", "Loader", key.fingerprint(), now);
    let token = jwt::encode(&claims, &key).unwrap();

    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT"}));
    let body: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "iss": format!("MYORG-ACCT.LOADER.{}", FINGERPRINT.trim()),
            "sub": "MYORG-ACCT.LOADER",
            "iat": 1_750_000_000u64,
            "exp": 1_750_000_000u64 + 59 * 60,
        })
    );
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, PUBLIC_DER)
        .verify(signed.as_bytes(), &signature)
        .expect("the signature verifies with openssl's public key");
}
