//! Keys and key-pair tokens against values computed independently with `openssl` (see `fixtures/README.md`).

use std::time::{Duration, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use snowpipe_auth::{
    Claims, KeyError, Secret, SigningKey, TOKEN_LIFETIME, account_for_jwt, expiry_of_jwt, jwt,
    key_pair_jwt,
};

const PLAIN: &str = include_str!("fixtures/rsa_key.p8");
const AES256: &str = include_str!("fixtures/rsa_key_aes256.p8");
const DES3: &str = include_str!("fixtures/rsa_key_des3.p8");
const PKCS1: &str = include_str!("fixtures/rsa_key.pkcs1.pem");
const LEGACY_AES256: &str = include_str!("fixtures/rsa_key_legacy_aes256.pem");
const FINGERPRINT: &str = include_str!("fixtures/rsa_key.fingerprint");
const PUBLIC_DER: &[u8] = include_bytes!("fixtures/rsa_key.pub.der");
const PUBLIC_PEM: &str = include_str!("fixtures/rsa_key.pub.pem");
const PASSPHRASE: &str = "fixture-passphrase";

fn plain_key() -> SigningKey {
    SigningKey::from_pem(PLAIN, &Secret::default()).unwrap()
}

/// Asserts that `message` quotes neither the passphrase nor any key material.
fn assert_no_secrets(message: &str) {
    for secret in [PASSPHRASE, "not-it", "MII", "BEGIN"] {
        assert!(!message.contains(secret), "{message} quotes {secret}");
    }
}

#[test]
fn every_accepted_format_gives_openssls_fingerprint_and_public_key() {
    for (name, pem, passphrase) in [
        ("plain PKCS#8", PLAIN, ""),
        ("AES-256 PKCS#8", AES256, PASSPHRASE),
        ("3DES PKCS#8", DES3, PASSPHRASE),
        ("PKCS#1", PKCS1, ""),
        // A passphrase configured for an unencrypted key is not an error.
        ("PKCS#1 with a passphrase", PKCS1, PASSPHRASE),
        ("CRLF line ends", &PLAIN.replace('\n', "\r\n"), ""),
    ] {
        let key = SigningKey::from_pem(pem, &Secret::new(passphrase))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(key.fingerprint(), FINGERPRINT.trim(), "{name}");
        assert_eq!(key.public_key_der(), PUBLIC_DER, "{name}");
    }
}

#[test]
fn the_public_key_is_given_as_alter_user_takes_it() {
    let body: String = PUBLIC_PEM
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    assert_eq!(plain_key().public_key_base64(), body);
}

#[test]
fn a_wrong_or_missing_passphrase_is_named_without_quoting_secrets() {
    for pem in [AES256, DES3] {
        let wrong = SigningKey::from_pem(pem, &Secret::new("not-it")).unwrap_err();
        assert_eq!(wrong, KeyError::WrongPassphrase);
        let message = wrong.to_string();
        assert!(message.contains("passphrase is wrong"), "{message}");
        assert_no_secrets(&message);

        let missing = SigningKey::from_pem(pem, &Secret::default()).unwrap_err();
        assert_eq!(missing, KeyError::PassphraseMissing);
        assert_no_secrets(&missing.to_string());
    }
}

#[test]
fn legacy_encrypted_pem_is_refused_with_the_conversion_to_run() {
    for passphrase in [PASSPHRASE, ""] {
        let error = SigningKey::from_pem(LEGACY_AES256, &Secret::new(passphrase)).unwrap_err();
        assert_eq!(error, KeyError::EncryptedLegacyPem);
        let message = error.to_string();
        assert_eq!(
            message,
            "the destination's private key uses OpenSSL's legacy PEM encryption \
             (`Proc-Type: 4,ENCRYPTED`), which is not supported; convert it with \
             `openssl pkcs8 -topk8 -v2 aes256 -in key.pem -out key.p8`"
        );
        assert_no_secrets(&message);
    }
}

#[test]
fn text_that_is_not_a_pem_private_key_is_refused_clearly() {
    let error = SigningKey::from_pem("not a key", &Secret::default()).unwrap_err();
    assert!(matches!(error, KeyError::NotPem(_)), "{error:?}");
    assert!(
        error.to_string().contains("openssl pkcs8 -topk8"),
        "{error}"
    );

    // A PKCS#8 body is not a PKCS#1 key, whatever the label says.
    let relabelled = PLAIN.replace("PRIVATE KEY", "RSA PRIVATE KEY");
    let error = SigningKey::from_pem(&relabelled, &Secret::default()).unwrap_err();
    assert!(matches!(error, KeyError::NotRsa(_)), "{error:?}");
    assert_no_secrets(&error.to_string());

    // A base64 body that is not DER.
    let garbled = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let error = SigningKey::from_pem(garbled, &Secret::default()).unwrap_err();
    assert!(matches!(error, KeyError::NotPem(_)), "{error:?}");
    assert_no_secrets(&error.to_string());

    assert_eq!(
        KeyError::WrongLabel("PUBLIC KEY".to_owned()).to_string(),
        "the destination's private key is a `PUBLIC KEY` PEM block, not a private key; give a \
         `PRIVATE KEY`, `ENCRYPTED PRIVATE KEY` or `RSA PRIVATE KEY` block"
    );
    for label in ["PUBLIC KEY", "CERTIFICATE"] {
        let other = PUBLIC_PEM.replace("PUBLIC KEY", label);
        let error = SigningKey::from_pem(&other, &Secret::default()).unwrap_err();
        assert_eq!(error, KeyError::WrongLabel(label.to_owned()));
        let message = error.to_string();
        assert!(
            message.contains(label) && message.contains("RSA PRIVATE KEY"),
            "{message}"
        );
        assert_no_secrets(&message);
    }
}

#[test]
fn debug_of_a_key_shows_its_fingerprint_only() {
    let debug = format!("{:?}", plain_key());
    assert!(debug.contains(FINGERPRINT.trim()), "{debug}");
    assert_no_secrets(&debug);
}

#[test]
fn account_identifiers_follow_snowflakes_rules() {
    let check = |input: &str, expect: &str| assert_eq!(account_for_jwt(input), expect, "{input}");
    check("myorg-myaccount", "MYORG-MYACCOUNT");
    check("xy12345.us-east-2.aws", "XY12345");
    check("xy12345-ab.global", "XY12345");
    check("xy12345-ab.global.snowflakecomputing.com", "XY12345");
    check("myorg-myaccount.snowflakecomputing.com", "MYORG-MYACCOUNT");
    check("xy12345.us-east-2.aws.snowflakecomputing.com", "XY12345");
}

#[test]
fn tokens_carry_snowflakes_claims_and_verify_with_the_public_key() {
    let key = SigningKey::from_pem(AES256, &Secret::new(PASSPHRASE)).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
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

#[test]
fn a_pkcs1_key_signs_tokens_that_verify_with_the_same_public_key() {
    let key = SigningKey::from_pem(PKCS1, &Secret::default()).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let token = key_pair_jwt(&key, "xy12345.us-east-2.aws", "loader", now).unwrap();
    let (signed, signature) = token.value().rsplit_once('.').unwrap();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, PUBLIC_DER)
        .verify(
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
        .expect("the signature verifies with openssl's public key");
}

#[test]
fn a_key_pair_token_expires_with_its_exp_claim() {
    // Mid-second: the claims count whole seconds, and the token must not outlive its `exp`.
    let now = UNIX_EPOCH + Duration::from_millis(1_750_000_000_750);
    let token = key_pair_jwt(&plain_key(), "myorg-myaccount", "loader", now).unwrap();
    let exp = UNIX_EPOCH + Duration::from_secs(1_750_000_000) + TOKEN_LIFETIME;
    assert_eq!(token.expires_at(), exp);
    assert_eq!(expiry_of_jwt(token.value()), Some(exp));
}
